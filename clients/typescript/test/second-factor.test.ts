import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Secret, TOTP } from 'otpauth';
import { uniqueEmail, useTestApp } from '../../../test/support/test-app';
import { AuthApiError, createAuthClient } from '../src';

/** A TOTP second factor and account recovery through the client, against the live service. */
const t = useTestApp({ RATE_LIMIT_ENABLED: 'false' });
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = t.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const totpOf = (secret: string) =>
  new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });

test('when a user turns on TOTP, then login asks for the second factor and a recovery code finishes it', async () => {
  const client = createAuthClient({ baseUrl });
  const email = uniqueEmail('mfa');
  await client.register(email, 'correct-horse-battery');
  await client.login(email, 'correct-horse-battery');
  const { secret, otpauth_uri } = await client.totp.setup();
  expect(otpauth_uri).toMatch(/^otpauth:\/\/totp\//);
  const recoveryCodes = await client.totp.confirm(totpOf(secret).generate());
  expect(recoveryCodes).toHaveLength(10);

  const phone = createAuthClient({ baseUrl });
  const refused = await phone.login(email, 'correct-horse-battery').catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(AuthApiError);
  const problem = (refused as AuthApiError).problem!;
  expect(problem).toMatchObject({ code: 'mfa_required', status: 403, error: 'invalid_grant' });
  expect(phone.tokens.get()).toBeUndefined();

  // The confirm code's time step is spent (a code works once), so a recovery code finishes.
  await phone.verifyMfa(problem.mfa_token!, { recovery_code: recoveryCodes[0]! });
  expect((await phone.me()).email).toBe(email);
});

test('when a password reset is asked for, then the answer is the same for an unknown email', async () => {
  const client = createAuthClient({ baseUrl });
  const email = uniqueEmail('reset');
  await client.register(email, 'correct-horse-battery');
  await expect(client.requestPasswordReset(email)).resolves.toBeUndefined();
  await expect(client.requestPasswordReset(uniqueEmail('nobody'))).resolves.toBeUndefined();
  await expect(
    client.confirmPasswordReset('not-a-token', 'staple-battery-horse'),
  ).rejects.toMatchObject({
    status: 400,
    code: 'invalid_reset_token',
  });
});
