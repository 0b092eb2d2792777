import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  requestTokenOf,
  startDiscogsStandIn,
  type DiscogsStandIn,
} from '../../../test/support/discogs-stand-in';
import { signedInAdmin, uniqueEmail, useTestApp } from '../../../test/support/test-app';
import { AuthApiError, createAuthClient } from '../src';

/** Connecting a Discogs account through the client, against the Discogs stand-in. */
let discogs: DiscogsStandIn;
const env: Record<string, string> = { RATE_LIMIT_ENABLED: 'false' };
// Registered before useTestApp's hook, so the stand-in's URLs are in env when the app starts.
beforeAll(async () => {
  discogs = await startDiscogsStandIn();
  Object.assign(env, { DISCOGS_API_URL: discogs.url, DISCOGS_AUTHORIZE_URL: discogs.authorizeUrl });
});
afterAll(() => discogs?.close());
const t = useTestApp(env);
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = t.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { email, password } = await signedInAdmin(t);
  const admin = createAuthClient({ baseUrl });
  await admin.login(email, password);
  await admin.admin.putDiscogsConfig({
    consumer_key: discogs.consumerKey,
    consumer_secret: discogs.consumerSecret,
  });
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

test('when a user connects, reads and disconnects a Discogs account, then each step works', async () => {
  const client = createAuthClient({ baseUrl });
  const email = uniqueEmail('discogs');
  await client.register(email, 'correct-horse-battery');
  await client.login(email, 'correct-horse-battery');
  expect(await client.discogs.connection()).toEqual({ connected: false });

  const started = await client.discogs.authorize();
  expect(started.callback_mode).toBe('oob');
  const { verifier } = discogs.approve(requestTokenOf(started.authorize_url), {
    id: 4242,
    username: 'vinyl_client',
  });
  const connected = await client.discogs.verify(started.state, verifier);
  expect(connected).toMatchObject({
    connected: true,
    discogs_username: 'vinyl_client',
    discogs_user_id: 4242,
  });
  expect(await client.discogs.connection()).toMatchObject({ connected: true });

  await client.discogs.disconnect();
  expect(await client.discogs.connection()).toEqual({ connected: false });
});

test('when the state is spent, then verify fails with the problem code', async () => {
  const client = createAuthClient({ baseUrl });
  const email = uniqueEmail('discogs');
  await client.register(email, 'correct-horse-battery');
  await client.login(email, 'correct-horse-battery');
  const started = await client.discogs.authorize();
  const { verifier } = discogs.approve(requestTokenOf(started.authorize_url));
  await client.discogs.verify(started.state, verifier);
  const again = await client.discogs.verify(started.state, verifier).catch((e: unknown) => e);
  expect(again).toBeInstanceOf(AuthApiError);
  expect(again).toMatchObject({ status: 400, code: 'invalid_oauth_state' });
});
