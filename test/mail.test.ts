import { beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { problemsOf } from './support/config';
import { TestSmtpServer, tokenIn, useSmtpServer } from './support/smtp';
import { register, signedInUser, uniqueEmail, useTestApp, type TestApp } from './support/test-app';

async function mailOutcomes(app: TestApp): Promise<Record<string, number>> {
  const m = await app.deps.metrics.mails.get();
  return Object.fromEntries(m.values.map((v) => [`${v.labels.kind}/${v.labels.outcome}`, v.value]));
}

interface LogLine {
  level: string;
  msg: string;
  userId?: string;
  attempt?: number;
  mail?: { to: string; subject: string; text: string };
}
const lines = (app: TestApp) => app.logs.map((l) => JSON.parse(l) as LogLine);

describe('over SMTP', () => {
  const credentials = { user: 'auth-service', pass: 'smtp-pass-4411' };
  const smtp = useSmtpServer(credentials);
  const t = useTestApp(() => {
    const url = new URL(smtp.url);
    url.username = credentials.user;
    url.password = credentials.pass;
    return { SMTP_URL: url.toString() };
  });

  test('when mail is configured with credentials, then mails are delivered over SMTP with them', async () => {
    const { email } = await register(t.app);
    const mail = await smtp.waitFor((m) => m.to === email);
    expect(mail.subject).toBe('Verify your email address');
    expect(mail.text).toContain('Verify this address');
    expect(mail.html).toMatch(/^<!doctype html>/);
    expect(t.logs.join('\n')).not.toContain(credentials.pass);
  });

  test('when the SMTP server refuses twice, then the request has already succeeded, the mail is retried with backoff and arrives, and the failures are logged with the user id only', async () => {
    await t.deps.outbox.idle();
    const before = await mailOutcomes(t);
    smtp.refuse(2);
    const { email, user } = await register(t.app);
    // The registration answered while the mail was still queued.
    expect(smtp.to(email)).toEqual([]);
    const mail = await smtp.waitFor((m) => m.to === email);
    await t.deps.outbox.idle();
    const after = await mailOutcomes(t);
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    expect([delta('email_verify/retried'), delta('email_verify/sent')]).toEqual([2, 1]);
    const failures = lines(t).filter((l) => l.msg === 'mail delivery failed; will retry');
    expect(failures.filter((l) => l.userId === user.id).map((l) => l.attempt)).toEqual([1, 2]);
    const token = tokenIn(mail);
    expect(t.logs.filter((l) => l.includes(token) || l.includes(email))).toEqual([]);
  });

  test('when the SMTP server keeps refusing, then the mail is given up after 4 attempts, logged, and the client never hears of it', async () => {
    await t.deps.outbox.idle();
    const before = await mailOutcomes(t);
    smtp.refuse(4);
    const { email, user } = await register(t.app);
    await request(t.app).post('/api/v1/auth/password-reset/request').send({ email }).expect(202);
    await t.deps.outbox.idle();
    const after = await mailOutcomes(t);
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    expect([delta('email_verify/retried'), delta('email_verify/failed')]).toEqual([3, 1]);
    // The reset mail queued behind it went out once the server accepted again.
    expect(delta('password_reset/sent')).toBe(1);
    expect(
      lines(t).filter((l) => l.msg === 'mail delivery failed; giving up' && l.userId === user.id),
    ).toHaveLength(1);
  });
});

describe('when the SMTP server cannot be reached', () => {
  let deadUrl = '';
  beforeAll(async () => {
    // A port that just had an SMTP server on it, and now has nothing.
    const gone = await TestSmtpServer.start();
    deadUrl = gone.url;
    await gone.close();
  });
  const t = useTestApp(() => ({ SMTP_URL: deadUrl }), { mail: { retryBaseMs: 5, attempts: 2 } });

  test('then registration and reset requests still succeed and the mails count as failed', async () => {
    const { email } = await register(t.app);
    await request(t.app).post('/api/v1/auth/password-reset/request').send({ email }).expect(202);
    await t.deps.outbox.idle();
    const outcomes = await mailOutcomes(t);
    expect(outcomes['email_verify/failed']).toBe(1);
    expect(outcomes['password_reset/failed']).toBe(1);
  });
});

describe('without SMTP_URL outside production', () => {
  const t = useTestApp({ PUBLIC_BASE_URL: 'http://localhost:5173' });

  test('when the service starts, then it warns that mails go to the log', () => {
    expect(
      lines(t).some(
        (l) =>
          l.level === 'warn' && /SMTP_URL is not set: mails are written to the log/.test(l.msg),
      ),
    ).toBe(true);
  });

  test('when a reset is asked for, then the mail is written to the log in full, token included, and the token works', async () => {
    const { email } = await register(t.app);
    await request(t.app).post('/api/v1/auth/password-reset/request').send({ email }).expect(202);
    await t.deps.outbox.idle();
    const logged = lines(t).find(
      (l) => l.mail?.to === email && l.mail.subject === 'Reset your password',
    );
    expect(logged?.mail?.text).toContain('http://localhost:5173/reset-password#token=');
    const token = tokenIn({ from: '', to: email, subject: '', html: '', text: logged!.mail!.text });
    await request(t.app)
      .post('/api/v1/auth/password-reset/confirm')
      .send({ token, new_password: 'staple-battery-horse-correct' })
      .expect(204);
  });
});

describe('without SMTP_URL in production', () => {
  const t = useTestApp({ NODE_ENV: 'production', BCRYPT_COST: '10' });

  test('when the service starts, then it warns that no mail can be sent', () => {
    expect(
      lines(t).some(
        (l) => l.level === 'warn' && /SMTP_URL is not set: no mail can be sent/.test(l.msg),
      ),
    ).toBe(true);
  });

  test('when a reset is asked for, then 503 mail_not_configured whatever the email', async () => {
    const { email } = await register(t.app);
    for (const address of [email, uniqueEmail('ghost')]) {
      const res = await request(t.app)
        .post('/api/v1/auth/password-reset/request')
        .send({ email: address })
        .expect(503);
      expect(res.body.code).toBe('mail_not_configured');
      expect(res.headers['retry-after']).toBeDefined();
    }
  });

  test('when registering, then it succeeds and the verification mail is skipped; a resend is 503 mail_not_configured', async () => {
    const before = (await mailOutcomes(t))['email_verify/skipped'] ?? 0;
    const { token } = await signedInUser(t.app);
    expect((await mailOutcomes(t))['email_verify/skipped']).toBe(before + 1);
    const res = await request(t.app)
      .post('/api/v1/auth/email/verify/resend')
      .set('Authorization', `Bearer ${token}`)
      .expect(503);
    expect(res.body.code).toBe('mail_not_configured');
  });
});

describe('mail configuration', () => {
  test('when SMTP_URL is not an smtp(s) URL, then start-up names it without echoing the value', () => {
    const problems = problemsOf({ SMTP_URL: 'http://user:hunter2secret@mail.example.com' });
    expect(problems).toEqual([expect.stringContaining('SMTP_URL')]);
    expect(problems.join()).not.toContain('hunter2secret');
  });

  test('when MAIL_FROM is not an address, or PUBLIC_BASE_URL is missing with SMTP_URL in production, then start-up names them', () => {
    expect(problemsOf({ MAIL_FROM: 'nobody' })).toEqual([expect.stringContaining('MAIL_FROM')]);
    expect(problemsOf({ MAIL_FROM: 'A <a@example.com>\r\nBcc: b@example.com' })).toEqual([
      expect.stringContaining('MAIL_FROM'),
    ]);
    const production = problemsOf({
      NODE_ENV: 'production',
      JWT_SECRET_KEY: 'x'.repeat(40),
      ENCRYPTION_MASTER_KEY: 'a'.repeat(64),
      SMTP_URL: 'smtps://u:p@mail.example.com',
    });
    expect(production).toEqual([expect.stringContaining('PUBLIC_BASE_URL')]);
  });

  test('when nothing is set, then the documented defaults apply', () => {
    expect(problemsOf({})).toEqual([]);
  });
});
