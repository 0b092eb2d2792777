import { describe, expect, test } from '@jest/globals';
import type { Express } from 'express';
import request from 'supertest';
import { tokenIn, useSmtpServer, type ReceivedMail } from './support/smtp';
import { GOOD_PASSWORD, login, register, signedInUser, useTestApp } from './support/test-app';

const VERIFY = '/api/v1/auth/email/verify';
const RESEND = '/api/v1/auth/email/verify/resend';
const ME = '/api/v1/auth/me';

const smtp = useSmtpServer();
const t = useTestApp(() => ({ SMTP_URL: smtp.url, PUBLIC_BASE_URL: 'https://app.example.test' }));

/** The n-th (from 1) verification mail to this address. */
function verificationMail(email: string, n = 1): Promise<ReceivedMail> {
  let seen = 0;
  return smtp.waitFor(
    (m) => m.to === email && m.subject === 'Verify your email address' && ++seen === n,
  );
}

const verify = (app: Express, token: string) => request(app).post(VERIFY).send({ token });
const me = (app: Express, access: string) =>
  request(app).get(ME).set('Authorization', `Bearer ${access}`).expect(200);

describe('verification at registration', () => {
  test('when an account registers, then it is unverified and a mail brings a token that verifies it (no Bearer needed)', async () => {
    const { email, token: access } = await signedInUser(t.app);
    expect((await me(t.app, access)).body).toMatchObject({
      email_verified: false,
      mfa_enabled: false,
    });
    const mail = await verificationMail(email);
    const token = tokenIn(mail);
    expect(mail.text).toContain(`https://app.example.test/verify-email#token=${token}`);
    expect(mail.html).toContain(token);
    await verify(t.app, token).expect(204);
    expect((await me(t.app, access)).body.email_verified).toBe(true);
    const [row] = await t.sql('SELECT email_verified_at FROM users WHERE email = $1', [email]);
    expect(row!.email_verified_at).toBeInstanceOf(Date);
  });

  test('when the token is used again, unknown or expired, then 400 invalid_verification_token', async () => {
    const { email, user } = await register(t.app);
    const token = tokenIn(await verificationMail(email));
    await verify(t.app, token).expect(204);
    for (const bad of [token, 'y'.repeat(43)]) {
      const res = await verify(t.app, bad).expect(400);
      expect(res.body.code).toBe('invalid_verification_token');
    }
    const second = await register(t.app);
    const expiring = tokenIn(await verificationMail(second.email));
    await t.sql(
      `UPDATE account_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1`,
      [second.user.id],
    );
    expect((await verify(t.app, expiring).expect(400)).body.code).toBe(
      'invalid_verification_token',
    );
    expect(user.id).not.toBe(second.user.id);
  });

  test('when the token lives, then it is valid for EMAIL_VERIFY_TTL_HOURS (48 by default)', async () => {
    const { user } = await register(t.app);
    await t.deps.outbox.idle();
    const [row] = await t.sql(
      `SELECT extract(epoch FROM expires_at - created_at) AS ttl FROM account_tokens
        WHERE user_id = $1 AND purpose = 'email_verify'`,
      [user.id],
    );
    expect(Math.round(Number(row!.ttl) / 3600)).toBe(48);
  });
});

describe('resending', () => {
  test('when a new mail is asked for, then 202, a new token works and the older one is void', async () => {
    const { email, token: access } = await signedInUser(t.app);
    const older = tokenIn(await verificationMail(email, 1));
    const res = await request(t.app)
      .post(RESEND)
      .set('Authorization', `Bearer ${access}`)
      .expect(202);
    expect(res.text).toBe('');
    const newer = tokenIn(await verificationMail(email, 2));
    expect((await verify(t.app, older).expect(400)).body.code).toBe('invalid_verification_token');
    await verify(t.app, newer).expect(204);
  });

  test('when the email is already verified, then 409 email_already_verified', async () => {
    const { email, token: access } = await signedInUser(t.app);
    await verify(t.app, tokenIn(await verificationMail(email))).expect(204);
    const res = await request(t.app)
      .post(RESEND)
      .set('Authorization', `Bearer ${access}`)
      .expect(409);
    expect(res.body.code).toBe('email_already_verified');
  });

  test('when no access token is sent, then 401', async () => {
    await request(t.app).post(RESEND).expect(401);
  });

  describe('with RATE_LIMIT_RESET_PER_HOUR=1', () => {
    const limited = useTestApp(() => ({ SMTP_URL: smtp.url, RATE_LIMIT_RESET_PER_HOUR: '1' }));

    test('when one account asks more than RATE_LIMIT_RESET_PER_HOUR times, then 429', async () => {
      const { token: access } = await signedInUser(limited.app);
      const resend = () =>
        request(limited.app).post(RESEND).set('Authorization', `Bearer ${access}`);
      await resend().expect(202);
      const res = await resend().expect(429);
      expect(res.headers['retry-after']).toBeDefined();
    });
  });
});

describe('REQUIRE_VERIFIED_EMAIL=true', () => {
  const strict = useTestApp(() => ({ SMTP_URL: smtp.url, REQUIRE_VERIFIED_EMAIL: 'true' }));

  test('when an unverified account gives the right password, then 403 email_not_verified in both grant forms; a wrong password is still 401', async () => {
    const { email } = await register(strict.app);
    const json = await request(strict.app)
      .post('/api/v1/auth/token')
      .send({ email, password: GOOD_PASSWORD })
      .expect(403);
    expect(json.body.code).toBe('email_not_verified');
    expect(json.body.access_token).toBeUndefined();
    const form = await request(strict.app)
      .post('/api/v1/auth/token')
      .type('form')
      .send({ grant_type: 'password', username: email, password: GOOD_PASSWORD })
      .expect(403);
    expect(form.body.code).toBe('email_not_verified');
    expect((await login(strict.app, email, 'wrong-password', 401)) as unknown).toBeDefined();
  });

  test('when the account verifies its email, then it logs in', async () => {
    const { email } = await register(strict.app);
    await verify(strict.app, tokenIn(await verificationMail(email))).expect(204);
    await login(strict.app, email, GOOD_PASSWORD, 200);
  });

  test('when the account resets its password, then receiving that mail verified the email too', async () => {
    const { email } = await register(strict.app);
    await request(strict.app)
      .post('/api/v1/auth/password-reset/request')
      .send({ email })
      .expect(202);
    const mail = await smtp.waitFor((m) => m.to === email && m.subject === 'Reset your password');
    await request(strict.app)
      .post('/api/v1/auth/password-reset/confirm')
      .send({ token: tokenIn(mail), new_password: 'staple-battery-horse-correct' })
      .expect(204);
    await login(strict.app, email, 'staple-battery-horse-correct', 200);
  });
});
