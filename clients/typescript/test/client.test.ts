import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signedInAdmin, uniqueEmail, useTestApp } from '../../../test/support/test-app';
import { AuthApiError, createAuthClient, memoryTokenStore } from '../src';

/** The client's main flows against the live service (in-process, real PostgreSQL and Redis). */
const t = useTestApp();
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = t.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

test('when a user registers, logs in, reads their account, refreshes and logs out, then each step works', async () => {
  const client = createAuthClient({ baseUrl });
  const email = uniqueEmail('client');
  const user = await client.register(email, 'correct-horse-battery');
  expect(user).toMatchObject({ email, is_active: true, is_admin: false });

  const tokens = await client.login(email, 'correct-horse-battery');
  expect(tokens.token_type).toBe('bearer');
  expect((await client.me()).id).toBe(user.id);

  const refreshed = await client.refresh();
  expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  expect((await client.me()).email).toBe(email);

  await client.logout();
  expect(client.tokens.get()).toBeUndefined();
  // The old access token is revoked at once.
  const stale = createAuthClient({ baseUrl, tokens: memoryTokenStore(refreshed) });
  await expect(stale.me()).rejects.toMatchObject({ status: 401 });
});

test('when the access token is refused, then the client refreshes once and repeats the call', async () => {
  const client = createAuthClient({ baseUrl });
  const email = uniqueEmail('client');
  await client.register(email, 'correct-horse-battery');
  const tokens = await client.login(email, 'correct-horse-battery');
  client.tokens.set({ ...tokens, access_token: 'not.a.token' });

  expect((await client.me()).email).toBe(email);
  expect(client.tokens.get()?.refresh_token).not.toBe(tokens.refresh_token);
});

test('when the service answers with a problem, then AuthApiError carries its code', async () => {
  const client = createAuthClient({ baseUrl });
  const email = uniqueEmail('client');
  await client.register(email, 'correct-horse-battery');
  const taken = await client.register(email, 'correct-horse-battery').catch((e: unknown) => e);
  expect(taken).toBeInstanceOf(AuthApiError);
  expect(taken).toMatchObject({ status: 409, code: 'email_taken' });

  const wrong = await client.login(email, 'wrong-password').catch((e: unknown) => e);
  expect(wrong).toMatchObject({ status: 401, code: 'invalid_credentials' });
  expect((wrong as AuthApiError).problem?.error).toBe('invalid_grant');
});

test('when a user changes the password, then the new one logs in and the old one does not', async () => {
  const client = createAuthClient({ baseUrl });
  const email = uniqueEmail('client');
  await client.register(email, 'correct-horse-battery');
  await client.login(email, 'correct-horse-battery');
  await client.changePassword('correct-horse-battery', 'staple-battery-horse');
  await expect(
    createAuthClient({ baseUrl }).login(email, 'staple-battery-horse'),
  ).resolves.toBeTruthy();
  await expect(
    createAuthClient({ baseUrl }).login(email, 'correct-horse-battery'),
  ).rejects.toMatchObject({
    code: 'invalid_credentials',
  });
});

test('when an admin sets, reads and removes the Discogs app credentials and manages a user, then each step works', async () => {
  const { email, password } = await signedInAdmin(t);
  const admin = createAuthClient({ baseUrl });
  await admin.login(email, password);

  const saved = await admin.admin.putDiscogsConfig({
    consumer_key: 'AbCdEfGhIjKlMnOpWxYz',
    consumer_secret: 's3cr3tS3cr3tS3cr3tS3cr3t',
  });
  expect(saved).toMatchObject({
    configured: true,
    consumer_key: '****WxYz',
    consumer_secret_set: true,
  });
  expect(await admin.admin.getDiscogsConfig()).toEqual(saved);

  const member = createAuthClient({ baseUrl });
  const memberEmail = uniqueEmail('member');
  const user = await member.register(memberEmail, 'correct-horse-battery');
  const page = await admin.admin.listUsers({ email: memberEmail });
  expect(page.items.map((u) => u.id)).toEqual([user.id]);
  const updated = await admin.admin.updateUser(user.id, { is_active: false });
  expect(updated.is_active).toBe(false);

  const log = await admin.admin.listAuditLog({ target_id: user.id });
  expect(log.items[0]).toMatchObject({ action: 'user.update', actor_label: email });

  await admin.admin.deleteDiscogsConfig();
  expect(await admin.admin.getDiscogsConfig()).toMatchObject({ configured: false });

  // A user who is not an administrator gets 403 from the same call.
  const other = createAuthClient({ baseUrl });
  const otherEmail = uniqueEmail('other');
  await other.register(otherEmail, 'correct-horse-battery');
  await other.login(otherEmail, 'correct-horse-battery');
  await expect(other.admin.getDiscogsConfig()).rejects.toMatchObject({
    status: 403,
    code: 'forbidden',
  });
});
