import { createHash } from 'node:crypto';
import { describe, expect, jest, test } from '@jest/globals';
import type { Express } from 'express';
import request from 'supertest';
import { currentRequestId } from '../src/logger';
import { tokenIn, useSmtpServer, type ReceivedMail } from './support/smtp';
import {
  GOOD_PASSWORD,
  login,
  register,
  signedInUser,
  uniqueEmail,
  useTestApp,
} from './support/test-app';

const REQUEST = '/api/v1/auth/password-reset/request';
const CONFIRM = '/api/v1/auth/password-reset/confirm';
const NEW_PASSWORD = 'staple-battery-horse-correct';
const BASE = 'https://app.example.test';

const smtp = useSmtpServer();
const t = useTestApp(() => ({
  SMTP_URL: smtp.url,
  MAIL_FROM: 'Catalogue <accounts@example.test>',
  PUBLIC_BASE_URL: `${BASE}/`,
  RATE_LIMIT_RESET_PER_HOUR: '100000',
}));

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function askReset(app: Express, email: string, expected = 202) {
  return request(app).post(REQUEST).send({ email }).expect(expected);
}

/** The n-th (from 1) reset mail to this address, waiting for it if need be. */
async function resetMail(email: string, n = 1): Promise<ReceivedMail> {
  let seen = 0;
  return smtp.waitFor((m) => m.to === email && m.subject === 'Reset your password' && ++seen === n);
}

function confirm(app: Express, token: string, newPassword = NEW_PASSWORD) {
  return request(app).post(CONFIRM).send({ token, new_password: newPassword });
}

describe('asking for a reset', () => {
  test('when an existing account asks, then 202 and a mail with the token in a link to the client page and on a line of its own, in text and HTML, without tracking', async () => {
    const { email } = await register(t.app);
    const res = await askReset(t.app, email);
    expect(res.text).toBe('');
    const mail = await resetMail(email);
    const token = tokenIn(mail);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(mail.from).toBe('"Catalogue" <accounts@example.test>');
    expect(mail.text).toContain(`${BASE}/reset-password#token=${token}`);
    expect(mail.text.split('\n')).toContain(token);
    expect(mail.html).toContain(`href="${BASE}/reset-password#token=${token}"`);
    expect(mail.html).toContain(token);
    // The only link is the client's page; no images, pixels or redirectors.
    expect(mail.html).not.toMatch(/<img|<script|src=/i);
    expect([...mail.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual([
      `${BASE}/reset-password#token=${token}`,
    ]);
  });

  test('when the token is stored, then only its SHA-256 is, with the configured lifetime', async () => {
    const { email, user } = await register(t.app);
    await askReset(t.app, email);
    const token = tokenIn(await resetMail(email));
    const rows = await t.sql(
      `SELECT token_hash, purpose, extract(epoch FROM expires_at - created_at) AS ttl
         FROM account_tokens WHERE user_id = $1 AND purpose = 'password_reset'`,
      [user.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(sha256(token));
    expect(Math.round(Number(rows[0]!.ttl) / 60)).toBe(30);
    expect(JSON.stringify(await t.sql('SELECT * FROM account_tokens'))).not.toContain(token);
  });

  test('when unknown, inactive and existing emails ask, then the answers are the same and so is the work on the request path; only the existing account gets mail', async () => {
    const existing = await register(t.app);
    const inactive = await register(t.app);
    await t.sql('UPDATE users SET is_active = false WHERE id = $1', [inactive.user.id]);
    const unknown = uniqueEmail('ghost');
    await t.deps.outbox.idle();

    let queries: string[] = [];
    t.deps.db.sequelize.addHook('afterQuery', 'count-request-queries', (_options, query) => {
      // The statement's shape: literals (a probe's id) differ from call to call.
      const sql = (query as unknown as { sql: string }).sql;
      // The replica cache's probe is sent only while its listener is trusted, which depends on
      // timing, not on the email: it is not part of the work compared here.
      if (currentRequestId() && !sql.includes('pg_notify')) {
        queries.push(sql.replace(/'[^']*'/g, "'…'"));
      }
    });
    const mint = jest.spyOn(t.deps.secretTokens, 'mint');
    const work: Record<string, { queries: string[]; mints: number }> = {};
    const answers: Record<string, unknown> = {};
    try {
      for (const [label, email] of [
        ['unknown', unknown],
        ['inactive', inactive.email],
        ['existing', existing.email],
      ] as const) {
        queries = [];
        mint.mockClear();
        const res = await askReset(t.app, email);
        work[label] = { queries, mints: mint.mock.calls.length };
        const { 'x-request-id': _id, date: _date, ...headers } = res.headers;
        answers[label] = { status: res.status, body: res.text, headers };
      }
    } finally {
      t.deps.db.sequelize.removeHook('afterQuery', 'count-request-queries');
      mint.mockRestore();
    }
    // The request path mints exactly one token and runs the same statements whatever the email;
    // none of them reads an account or a token.
    expect(work.unknown!.mints).toBe(1);
    expect(work.inactive).toEqual(work.unknown);
    expect(work.existing).toEqual(work.unknown);
    expect(work.unknown!.queries.filter((q) => /users|account_tokens/i.test(q))).toEqual([]);
    expect(answers.unknown).toEqual(answers.existing);
    expect(answers.inactive).toEqual(answers.existing);

    await resetMail(existing.email);
    await t.deps.outbox.idle();
    expect(smtp.to(unknown)).toEqual([]);
    expect(smtp.to(inactive.email).filter((m) => m.subject === 'Reset your password')).toEqual([]);
    expect(
      await t.sql(
        `SELECT 1 FROM account_tokens WHERE user_id = $1 AND purpose = 'password_reset'`,
        [inactive.user.id],
      ),
    ).toHaveLength(0);
  });

  test('when the email is not an email, then 202 all the same (nothing to tell apart), and a missing email is 422', async () => {
    await askReset(t.app, 'not-an-address');
    const res = await request(t.app).post(REQUEST).send({}).expect(422);
    expect(res.body.code).toBe('validation_failed');
  });
});

describe('confirming a reset', () => {
  test('when the token is confirmed, then 204, the new password works, the old does not, and every session and refresh token is revoked', async () => {
    const { email, token: access, tokens } = await signedInUser(t.app);
    const other = await login(t.app, email);
    await askReset(t.app, email);
    const res = await confirm(t.app, tokenIn(await resetMail(email))).expect(204);
    expect(res.text).toBe('');
    await login(t.app, email, GOOD_PASSWORD, 401);
    await login(t.app, email, NEW_PASSWORD, 200);
    for (const a of [access, other.access_token]) {
      await request(t.app).get('/api/v1/auth/me').set('Authorization', `Bearer ${a}`).expect(401);
    }
    for (const r of [tokens.refresh_token, other.refresh_token]) {
      const refused = await request(t.app)
        .post('/api/v1/auth/token')
        .send({ grant_type: 'refresh_token', refresh_token: r })
        .expect(401);
      expect(refused.body.code).toBe('invalid_refresh_token');
    }
  });

  test('when a token is used twice, then the second time is 400 invalid_reset_token and changes nothing', async () => {
    const { email } = await register(t.app);
    await askReset(t.app, email);
    const token = tokenIn(await resetMail(email));
    await confirm(t.app, token).expect(204);
    const res = await confirm(t.app, token, 'another-password-entirely').expect(400);
    expect(res.body.code).toBe('invalid_reset_token');
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    await login(t.app, email, NEW_PASSWORD, 200);
  });

  test('when two confirmations of one token race, then exactly one succeeds', async () => {
    const { email } = await register(t.app);
    await askReset(t.app, email);
    const token = tokenIn(await resetMail(email));
    const results = await Promise.all([
      confirm(t.app, token, 'first-racer-password'),
      confirm(t.app, token, 'second-racer-password'),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([204, 400]);
  });

  test('when a newer reset is asked for, then the older token is void and the newer works', async () => {
    const { email } = await register(t.app);
    await askReset(t.app, email);
    const older = tokenIn(await resetMail(email, 1));
    await askReset(t.app, email);
    const newer = tokenIn(await resetMail(email, 2));
    expect(newer).not.toBe(older);
    expect((await confirm(t.app, older).expect(400)).body.code).toBe('invalid_reset_token');
    await confirm(t.app, newer).expect(204);
  });

  test('when the token has expired, then 400 invalid_reset_token', async () => {
    const { email, user } = await register(t.app);
    await askReset(t.app, email);
    const token = tokenIn(await resetMail(email));
    await t.sql(
      `UPDATE account_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1`,
      [user.id],
    );
    expect((await confirm(t.app, token).expect(400)).body.code).toBe('invalid_reset_token');
    await login(t.app, email, GOOD_PASSWORD, 200);
  });

  test('when the token is unknown, then 400 invalid_reset_token', async () => {
    const res = await confirm(t.app, 'x'.repeat(43)).expect(400);
    expect(res.body).toMatchObject({ status: 400, code: 'invalid_reset_token' });
  });

  test.each([
    ['too short', 'short'],
    ['over 72 bytes', 'é'.repeat(37)],
    ['with a NUL character', 'correct\u0000horse-battery'],
  ])(
    'when the new password is %s, then 422 and the token is not spent',
    async (_what, password) => {
      const { email } = await register(t.app);
      await askReset(t.app, email);
      const token = tokenIn(await resetMail(email));
      const res = await confirm(t.app, token, password).expect(422);
      expect(res.body.code).toBe('validation_failed');
      await login(t.app, email, GOOD_PASSWORD, 200);
      await confirm(t.app, token).expect(204);
    },
  );

  test('when the mailed link is opened (a GET, as by a mail scanner), then nothing is spent: the API has no GET for it and the token still works', async () => {
    const { email } = await register(t.app);
    await askReset(t.app, email);
    const mail = await resetMail(email);
    const token = tokenIn(mail);
    // The link is the client's page, not an API address.
    expect(mail.text).toContain(`${BASE}/reset-password#token=`);
    expect(mail.text).not.toContain('/api/');
    await request(t.app).get(CONFIRM).query({ token }).expect(405);
    await request(t.app).get(`/reset-password`).query({ token }).expect(404);
    await confirm(t.app, token).expect(204);
  });

  test('when the account was deactivated after the mail, then the token is refused', async () => {
    const { email, user } = await register(t.app);
    await askReset(t.app, email);
    const token = tokenIn(await resetMail(email));
    await t.sql('UPDATE users SET is_active = false WHERE id = $1', [user.id]);
    expect((await confirm(t.app, token).expect(400)).body.code).toBe('invalid_reset_token');
  });
});

describe('rate limits', () => {
  const limited = useTestApp(() => ({
    SMTP_URL: smtp.url,
    RATE_LIMIT_RESET_PER_HOUR: '2',
    TRUST_PROXY: 'true',
  }));

  const from = (ip: string, email: string) =>
    request(limited.app).post(REQUEST).set('X-Forwarded-For', ip).send({ email });

  test('when one client asks more than RATE_LIMIT_RESET_PER_HOUR times, then 429 with Retry-After, whatever the emails', async () => {
    await from('198.51.100.1', uniqueEmail()).expect(202);
    await from('198.51.100.1', uniqueEmail()).expect(202);
    const res = await from('198.51.100.1', uniqueEmail()).expect(429);
    expect(res.body.code).toBe('rate_limited');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    await from('198.51.100.2', uniqueEmail()).expect(202);
  });

  test('when one email is asked for more than RATE_LIMIT_RESET_PER_HOUR times from many clients, then 429 for that email only', async () => {
    const { email } = await register(limited.app);
    await from('198.51.100.11', email).expect(202);
    await from('198.51.100.12', email.toUpperCase()).expect(202);
    await from('198.51.100.13', email).expect(429);
    await from('198.51.100.14', uniqueEmail()).expect(202);
  });
});
