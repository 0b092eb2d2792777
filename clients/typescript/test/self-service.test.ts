import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { uniqueEmail, useTestApp } from '../../../test/support/test-app';
import { createAuthClient } from '../src';

/** Sessions, app tokens and deleting the account, through the client against the live service. */
const t = useTestApp({ RATE_LIMIT_ENABLED: 'false' });
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = t.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

async function signedIn(email = uniqueEmail('self')) {
  const client = createAuthClient({ baseUrl });
  await client.register(email, 'correct-horse-battery');
  await client.login(email, 'correct-horse-battery');
  return { client, email };
}

test('when a user lists and ends sessions, then the other login stops working and this one goes on', async () => {
  const { client, email } = await signedIn();
  const laptop = createAuthClient({ baseUrl });
  await laptop.login(email, 'correct-horse-battery');

  const sessions = await client.sessions.list();
  expect(sessions).toHaveLength(2);
  expect(sessions.filter((s) => s.current)).toHaveLength(1);

  await client.sessions.endOthers();
  await expect(laptop.me()).rejects.toMatchObject({ status: 401 });
  expect((await client.me()).email).toBe(email);
  const [mine] = await client.sessions.list();
  await client.sessions.end(mine!.id);
  await expect(client.me()).rejects.toMatchObject({ status: 401 });
});

test('when a user creates an app token, then a script reads the account with it until it is deleted', async () => {
  const { client, email } = await signedIn();
  const created = await client.appTokens.create('backup script', 30);
  expect(created.token).toMatch(/^ast_/);
  expect((await client.appTokens.list()).map((a) => a.id)).toEqual([created.id]);

  const script = createAuthClient({ baseUrl, appToken: created.token });
  expect((await script.me()).email).toBe(email);
  // App tokens cannot manage sessions.
  await expect(script.sessions.list()).rejects.toMatchObject({
    status: 403,
    code: 'app_token_not_allowed',
  });

  await client.appTokens.delete(created.id);
  await expect(script.me()).rejects.toMatchObject({ status: 401 });
});

test('when a user deletes the account, then its tokens fail and the email can register again', async () => {
  const { client, email } = await signedIn();
  await expect(client.deleteAccount('wrong-password')).rejects.toMatchObject({
    status: 403,
    code: 'invalid_current_password',
  });
  const tokens = client.tokens.get()!;
  await client.deleteAccount('correct-horse-battery');
  const stale = createAuthClient({ baseUrl });
  stale.tokens.set(tokens);
  await expect(stale.me()).rejects.toMatchObject({ status: 401 });
  await expect(
    createAuthClient({ baseUrl }).register(email, 'correct-horse-battery'),
  ).resolves.toMatchObject({
    email,
  });
});
