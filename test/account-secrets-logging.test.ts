import { expect, test } from '@jest/globals';
import { Secret, TOTP } from 'otpauth';
import request from 'supertest';
import { tokenIn, useSmtpServer } from './support/smtp';
import { GOOD_PASSWORD, uniqueEmail, useTestApp } from './support/test-app';

/**
 * Tokens, codes, TOTP secrets and recovery codes never reach a log line or an error body
 * (with mail over SMTP; the development log transport writes mails in full by design).
 */

let now = Date.UTC(2026, 11, 1, 9, 0, 0);
const smtp = useSmtpServer();
const t = useTestApp(() => ({ SMTP_URL: smtp.url, LOG_LEVEL: 'debug' }), { clock: () => now });

test('when every recovery, verification and second-factor flow runs, with failures, then no log line and no error body holds a token, code or secret', async () => {
  const secrets: string[] = [];
  const errorBodies: string[] = [];
  const keep = <T extends { status: number; text: string }>(res: T): T => {
    if (res.status >= 400) errorBodies.push(res.text);
    return res;
  };
  const api = () => request(t.app);
  const email = uniqueEmail('secrets');
  const newPassword = 'staple-battery-horse-correct';
  secrets.push(GOOD_PASSWORD, newPassword);

  keep(
    await api().post('/api/v1/auth/register').send({ email, password: GOOD_PASSWORD }).expect(201),
  );
  const verification = tokenIn(await smtp.waitFor((m) => m.to === email));
  secrets.push(verification);
  keep(await api().post('/api/v1/auth/email/verify').send({ token: verification }).expect(204));
  keep(await api().post('/api/v1/auth/email/verify').send({ token: verification }).expect(400));

  keep(await api().post('/api/v1/auth/password-reset/request').send({ email }).expect(202));
  const reset = tokenIn(
    await smtp.waitFor((m) => m.to === email && m.subject === 'Reset your password'),
  );
  secrets.push(reset);
  keep(
    await api()
      .post('/api/v1/auth/password-reset/confirm')
      .send({ token: reset, new_password: 'short' })
      .expect(422),
  );
  keep(
    await api()
      .post('/api/v1/auth/password-reset/confirm')
      .send({ token: reset, new_password: newPassword })
      .expect(204),
  );
  keep(
    await api()
      .post('/api/v1/auth/password-reset/confirm')
      .send({ token: reset, new_password: newPassword })
      .expect(400),
  );

  const pair = (
    await api().post('/api/v1/auth/token').send({ email, password: newPassword }).expect(200)
  ).body as { access_token: string; refresh_token: string };
  secrets.push(pair.access_token, pair.refresh_token);
  const auth = { Authorization: `Bearer ${pair.access_token}` };
  const setup = await api().post('/api/v1/auth/mfa/totp/setup').set(auth).expect(200);
  const secret = setup.body.secret as string;
  secrets.push(secret);
  const code = (at = now) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at });
  keep(
    await api()
      .post('/api/v1/auth/mfa/totp/confirm')
      .set(auth)
      .send({ code: '000000' === code() ? '111111' : '000000' })
      .expect(403),
  );
  secrets.push(code());
  const confirmed = await api()
    .post('/api/v1/auth/mfa/totp/confirm')
    .set(auth)
    .send({ code: code() })
    .expect(200);
  const recoveryCodes = confirmed.body.recovery_codes as string[];
  secrets.push(...recoveryCodes, ...recoveryCodes.map((c) => c.replace(/-/g, '')));
  now += 30_000;

  const step = keep(
    await api().post('/api/v1/auth/token').send({ email, password: newPassword }).expect(403),
  );
  const mfaToken = step.body.mfa_token as string;
  secrets.push(mfaToken);
  keep(
    await api()
      .post('/api/v1/auth/mfa/verify')
      .send({ mfa_token: mfaToken, code: code(now - 90_000) })
      .expect(401),
  );
  secrets.push(code());
  keep(
    await api()
      .post('/api/v1/auth/mfa/verify')
      .send({ mfa_token: mfaToken, code: code() })
      .expect(200),
  );
  keep(
    await api()
      .post('/api/v1/auth/mfa/verify')
      .send({ mfa_token: mfaToken, code: code() })
      .expect(401),
  );

  const second = keep(
    await api()
      .post('/api/v1/auth/token')
      .type('form')
      .send({ grant_type: 'password', username: email, password: newPassword })
      .expect(403),
  );
  secrets.push(second.body.mfa_token as string);
  keep(
    await api()
      .post('/api/v1/auth/mfa/verify')
      .send({ mfa_token: second.body.mfa_token, recovery_code: recoveryCodes[0] })
      .expect(200),
  );

  now += 30_000;
  secrets.push(code());
  keep(
    await api()
      .post('/api/v1/auth/mfa/totp/disable')
      .set(auth)
      .send({ password: 'wrong-password', code: code() })
      .expect(403),
  );
  keep(
    await api()
      .post('/api/v1/auth/mfa/totp/disable')
      .set(auth)
      .send({ password: newPassword, code: code() })
      .expect(204),
  );
  await t.deps.outbox.idle();

  const logs = t.logs.join('\n');
  expect(t.logs.length).toBeGreaterThan(10);
  // A 6-digit code counts only as a whole number, not inside a longer one (a pid, a port).
  const found = (text: string, s: string) =>
    /^\d{6}$/.test(s) ? new RegExp(`(?<!\\d)${s}(?!\\d)`).test(text) : text.includes(s);
  for (const s of new Set(secrets)) {
    expect({ secret: s, inLogs: found(logs, s) }).toEqual({ secret: s, inLogs: false });
  }
  // The error bodies say what went wrong and nothing more; the mfa_required one carries its own
  // mfa_token by design, so it is left out.
  const mfaRequired = errorBodies.filter((b) => b.includes('"mfa_required"'));
  expect(mfaRequired).toHaveLength(2);
  const others = errorBodies.filter((b) => !b.includes('"mfa_required"')).join('\n');
  for (const s of new Set(secrets)) expect(found(others, s)).toBe(false);
  expect(errorBodies.length).toBeGreaterThanOrEqual(8);
});
