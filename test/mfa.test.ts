import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Express } from 'express';
import { Secret, TOTP } from 'otpauth';
import request from 'supertest';
import { totpSecretPurpose } from '../src/crypto/purposes';
import { tokenIn, useSmtpServer } from './support/smtp';
import {
  GOOD_PASSWORD,
  login,
  signedInAdmin,
  signedInUser,
  startTestApp,
  useTestApp,
  type TestApp,
} from './support/test-app';

const TOKEN = '/api/v1/auth/token';
const SETUP = '/api/v1/auth/mfa/totp/setup';
const CONFIRM = '/api/v1/auth/mfa/totp/confirm';
const DISABLE = '/api/v1/auth/mfa/totp/disable';
const VERIFY = '/api/v1/auth/mfa/verify';
const ME = '/api/v1/auth/me';

/** The clock TOTP codes are checked against, shared by both instances; tests move it. */
let now = Date.UTC(2026, 11, 1, 12, 0, 0);
const clock = () => now;
/** One 30-second step later: a fresh code that no earlier test has used. */
const tick = (steps = 1) => {
  now += steps * 30_000;
};
const codeFor = (secret: string, at = now) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at });

/** A second instance on the same database: another replica. */
let t2: TestApp | undefined;
// Declared first, so that it runs before the first instance drops the shared database.
afterAll(async () => {
  await t2?.close();
});
const smtp = useSmtpServer();
// Replicas of one deployment share the master key that seals TOTP secrets.
const masterKey = randomBytes(32).toString('base64');
const env = () => ({ SMTP_URL: smtp.url, ENCRYPTION_MASTER_KEY: masterKey });
const t = useTestApp(env, { clock });
let replica: TestApp;
beforeAll(async () => {
  replica = t2 = await startTestApp(env(), { database: t.dbName, clock });
});

const bearer = (access: string) => ({ Authorization: `Bearer ${access}` });

interface Enrolled {
  email: string;
  userId: string;
  access: string;
  secret: string;
  recoveryCodes: string[];
}

/** A user with an active factor; the clock is then moved past the confirming code's step. */
async function enrolled(app: Express = t.app): Promise<Enrolled> {
  const { email, user, token: access } = await signedInUser(app);
  const setup = await request(app).post(SETUP).set(bearer(access)).expect(200);
  const confirmed = await request(app)
    .post(CONFIRM)
    .set(bearer(access))
    .send({ code: codeFor(setup.body.secret) })
    .expect(200);
  tick();
  return {
    email,
    userId: user.id,
    access,
    secret: setup.body.secret,
    recoveryCodes: confirmed.body.recovery_codes,
  };
}

/** The password step; expects 403 mfa_required and returns the mfa_token. */
async function passwordStep(app: Express, email: string): Promise<string> {
  const res = await request(app).post(TOKEN).send({ email, password: GOOD_PASSWORD }).expect(403);
  expect(res.body.code).toBe('mfa_required');
  return res.body.mfa_token as string;
}

function verify(app: Express, body: Record<string, string>) {
  return request(app).post(VERIFY).send(body);
}

async function challengeOutcomes(): Promise<Record<string, number>> {
  const m = await t.deps.metrics.mfaChallenges.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.outcome), v.value]));
}

describe('setting up TOTP', () => {
  test('when setup is called, then 200 with a base32 secret and an otpauth URI (SHA-1, 6 digits, 30 s), and the factor is not active yet', async () => {
    const { email, token: access } = await signedInUser(t.app);
    const res = await request(t.app).post(SETUP).set(bearer(access)).expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(res.body.otpauth_uri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toContain(email);
    expect(Object.fromEntries(uri.searchParams)).toMatchObject({
      secret: res.body.secret,
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });
    expect((await request(t.app).get(ME).set(bearer(access)).expect(200)).body.mfa_enabled).toBe(
      false,
    );
    await login(t.app, email, GOOD_PASSWORD, 200);
  });

  test('when the secret is stored, then it is sealed under the master key for this user only', async () => {
    const { user, token: access } = await signedInUser(t.app);
    const res = await request(t.app).post(SETUP).set(bearer(access)).expect(200);
    const [row] = await t.sql('SELECT totp_secret FROM users WHERE id = $1', [user.id]);
    const sealed = row!.totp_secret as string;
    expect(sealed).toMatch(/^v1:/);
    expect(sealed).not.toContain(res.body.secret);
    expect(t.deps.secretBox.open(sealed, totpSecretPurpose(user.id))).toBe(res.body.secret);
    expect(() => t.deps.secretBox.open(sealed, totpSecretPurpose(crypto.randomUUID()))).toThrow();
  });

  test('when confirm gets a wrong code, then 403 invalid_mfa_code and the factor stays inactive', async () => {
    const { token: access } = await signedInUser(t.app);
    const setup = await request(t.app).post(SETUP).set(bearer(access)).expect(200);
    const wrong = String((Number(codeFor(setup.body.secret)) + 1) % 1_000_000).padStart(6, '0');
    const res = await request(t.app)
      .post(CONFIRM)
      .set(bearer(access))
      .send({ code: wrong })
      .expect(403);
    expect(res.body.code).toBe('invalid_mfa_code');
    expect((await request(t.app).get(ME).set(bearer(access))).body.mfa_enabled).toBe(false);
  });

  test('when confirm comes before setup, then 409 mfa_setup_required; setup while active is 409 mfa_already_enabled', async () => {
    const { token: access } = await signedInUser(t.app);
    const early = await request(t.app)
      .post(CONFIRM)
      .set(bearer(access))
      .send({ code: '123456' })
      .expect(409);
    expect(early.body.code).toBe('mfa_setup_required');
    const user = await enrolled();
    const again = await request(t.app).post(SETUP).set(bearer(user.access)).expect(409);
    expect(again.body.code).toBe('mfa_already_enabled');
  });

  test('when confirmed, then 10 distinct recovery codes are shown once and stored only as hashes, and the user shows mfa_enabled', async () => {
    const user = await enrolled();
    expect(user.recoveryCodes).toHaveLength(10);
    expect(new Set(user.recoveryCodes).size).toBe(10);
    for (const c of user.recoveryCodes) expect(c).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
    const rows = await t.sql('SELECT * FROM mfa_recovery_codes WHERE user_id = $1', [user.userId]);
    expect(rows).toHaveLength(10);
    const stored = JSON.stringify(rows);
    for (const c of user.recoveryCodes) {
      expect(stored).not.toContain(c);
      expect(stored).not.toContain(c.replace(/-/g, ''));
    }
    const me = await request(t.app).get(ME).set(bearer(user.access)).expect(200);
    expect(me.body).toMatchObject({ mfa_enabled: true, email_verified: false });
  });
});

describe('logging in with a second factor', () => {
  test('when the password is right, then both grant forms answer 403 mfa_required with an mfa_token and no access token', async () => {
    const user = await enrolled();
    const json = await request(t.app)
      .post(TOKEN)
      .send({ email: user.email, password: GOOD_PASSWORD })
      .expect(403);
    const form = await request(t.app)
      .post(TOKEN)
      .type('form')
      .send({ grant_type: 'password', username: user.email, password: GOOD_PASSWORD })
      .expect(403);
    for (const res of [json, form]) {
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 403, code: 'mfa_required', mfa_expires_in: 300 });
      expect(res.body.mfa_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(res.body.access_token).toBeUndefined();
      expect(res.body.refresh_token).toBeUndefined();
    }
    expect(json.body.mfa_token).not.toBe(form.body.mfa_token);
    // A wrong password is the same 401 as for any account.
    expect((await login(t.app, user.email, 'wrong-password', 401)) as unknown).toBeDefined();
  });

  test('when the mfa_token comes back with a current code, then 200 and a working token pair; refreshing needs no second factor', async () => {
    const user = await enrolled();
    const mfaToken = await passwordStep(t.app, user.email);
    const res = await verify(t.app, { mfa_token: mfaToken, code: codeFor(user.secret) }).expect(
      200,
    );
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({ token_type: 'bearer', expires_in: 1800 });
    await request(t.app).get(ME).set(bearer(res.body.access_token)).expect(200);
    const refreshed = await request(t.app)
      .post(TOKEN)
      .send({ grant_type: 'refresh_token', refresh_token: res.body.refresh_token })
      .expect(200);
    await request(t.app).get(ME).set(bearer(refreshed.body.access_token)).expect(200);
  });

  test('when the code is one step old or one step ahead, then it is accepted; two steps off, it is not', async () => {
    const user = await enrolled();
    tick(3);
    const late = await passwordStep(t.app, user.email);
    await verify(t.app, { mfa_token: late, code: codeFor(user.secret, now - 60_000) }).expect(401);
    await verify(t.app, { mfa_token: late, code: codeFor(user.secret, now - 30_000) }).expect(200);
    const early = await passwordStep(t.app, user.email);
    await verify(t.app, { mfa_token: early, code: codeFor(user.secret, now + 30_000) }).expect(200);
  });

  test('when a code that was accepted is sent again within its window, then 401 invalid_mfa_code', async () => {
    const user = await enrolled();
    const code = codeFor(user.secret);
    await verify(t.app, { mfa_token: await passwordStep(t.app, user.email), code }).expect(200);
    const replay = await verify(t.app, {
      mfa_token: await passwordStep(t.app, user.email),
      code,
    }).expect(401);
    expect(replay.body.code).toBe('invalid_mfa_code');
    expect(replay.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  test('when a code was accepted on one replica, then the other refuses it too', async () => {
    const user = await enrolled();
    const code = codeFor(user.secret);
    await verify(t.app, { mfa_token: await passwordStep(t.app, user.email), code }).expect(200);
    const res = await verify(replica.app, {
      mfa_token: await passwordStep(replica.app, user.email),
      code,
    });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('invalid_mfa_code');
  });

  test('when the password step ran on one replica, then the other finishes the login', async () => {
    const user = await enrolled();
    const mfaToken = await passwordStep(t.app, user.email);
    const res = await verify(replica.app, {
      mfa_token: mfaToken,
      code: codeFor(user.secret),
    }).expect(200);
    await request(t.app).get(ME).set(bearer(res.body.access_token)).expect(200);
  });

  test('when an mfa_token has been used, then it is spent: 401 invalid_mfa_token', async () => {
    const user = await enrolled();
    const mfaToken = await passwordStep(t.app, user.email);
    await verify(t.app, { mfa_token: mfaToken, code: codeFor(user.secret) }).expect(200);
    tick();
    const res = await verify(t.app, { mfa_token: mfaToken, code: codeFor(user.secret) }).expect(
      401,
    );
    expect(res.body.code).toBe('invalid_mfa_token');
  });

  test('when 5 wrong codes are sent across two replicas, then each is 401 invalid_mfa_code and the mfa_token dies, even for the right code', async () => {
    const user = await enrolled();
    const mfaToken = await passwordStep(t.app, user.email);
    const right = codeFor(user.secret);
    const wrong = String((Number(right) + 7) % 1_000_000).padStart(6, '0');
    for (const app of [t.app, replica.app, t.app, replica.app, t.app]) {
      const res = await verify(app, { mfa_token: mfaToken, code: wrong }).expect(401);
      expect(res.body.code).toBe('invalid_mfa_code');
    }
    for (const app of [t.app, replica.app]) {
      const res = await verify(app, { mfa_token: mfaToken, code: right }).expect(401);
      expect(res.body.code).toBe('invalid_mfa_token');
    }
    // A new login works with that same code: it was never accepted.
    await verify(t.app, { mfa_token: await passwordStep(t.app, user.email), code: right }).expect(
      200,
    );
  });

  test('when the mfa_token is older than 5 minutes or unknown, then 401 invalid_mfa_token', async () => {
    const user = await enrolled();
    const mfaToken = await passwordStep(t.app, user.email);
    const [row] = await t.sql(
      `SELECT extract(epoch FROM expires_at - created_at) AS ttl FROM mfa_challenges
        WHERE user_id = $1`,
      [user.userId],
    );
    expect(Math.round(Number(row!.ttl))).toBe(300);
    await t.sql(
      `UPDATE mfa_challenges SET expires_at = now() - interval '1 second' WHERE user_id = $1`,
      [user.userId],
    );
    const expired = await verify(t.app, { mfa_token: mfaToken, code: codeFor(user.secret) }).expect(
      401,
    );
    expect(expired.body.code).toBe('invalid_mfa_token');
    const unknown = await verify(t.app, { mfa_token: 'z'.repeat(43), code: '123456' }).expect(401);
    expect(unknown.body.code).toBe('invalid_mfa_token');
  });

  test('when a recovery code stands in for the TOTP code, then it works once, in any letter case, with or without dashes', async () => {
    const user = await enrolled();
    const [first, second] = user.recoveryCodes as [string, string];
    await verify(t.app, {
      mfa_token: await passwordStep(t.app, user.email),
      recovery_code: first.toUpperCase(),
    }).expect(200);
    const again = await verify(t.app, {
      mfa_token: await passwordStep(t.app, user.email),
      recovery_code: first,
    }).expect(401);
    expect(again.body.code).toBe('invalid_mfa_code');
    await verify(t.app, {
      mfa_token: await passwordStep(t.app, user.email),
      recovery_code: second.replace(/-/g, ''),
    }).expect(200);
    const [row] = await t.sql(
      'SELECT count(*)::int AS n FROM mfa_recovery_codes WHERE user_id = $1',
      [user.userId],
    );
    expect(row!.n).toBe(8);
  });

  test('when both a code and a recovery code, or neither, are sent, then 422', async () => {
    const user = await enrolled();
    const mfaToken = await passwordStep(t.app, user.email);
    await verify(t.app, {
      mfa_token: mfaToken,
      code: '123456',
      recovery_code: user.recoveryCodes[0]!,
    }).expect(422);
    await verify(t.app, { mfa_token: mfaToken }).expect(422);
    await verify(t.app, { mfa_token: mfaToken, code: '12345' }).expect(422);
  });

  test('when every session ends (password change) between the two steps, then the pending mfa_token is refused', async () => {
    const user = await enrolled();
    const mfaToken = await passwordStep(t.app, user.email);
    await request(t.app)
      .post('/api/v1/auth/password')
      .set(bearer(user.access))
      .send({ current_password: GOOD_PASSWORD, new_password: 'staple-battery-horse-correct' })
      .expect(204);
    const res = await verify(t.app, { mfa_token: mfaToken, code: codeFor(user.secret) }).expect(
      401,
    );
    expect(res.body.code).toBe('invalid_mfa_token');
  });

  test('when the password is rehashed at a raised BCRYPT_COST during the password step, then the mfa_token it gives still works', async () => {
    const user = await enrolled();
    const raised = await startTestApp(
      { ...env(), BCRYPT_COST: '5' },
      { database: t.dbName, clock },
    );
    try {
      const mfaToken = await passwordStep(raised.app, user.email);
      const [row] = await t.sql('SELECT hashed_password FROM users WHERE id = $1', [user.userId]);
      expect(row!.hashed_password).toMatch(/^\$2[aby]\$05\$/);
      await verify(raised.app, { mfa_token: mfaToken, code: codeFor(user.secret) }).expect(200);
    } finally {
      await raised.close();
    }
  });

  test('when the password is reset, then the factor stays: the new password still needs a code', async () => {
    const user = await enrolled();
    await request(t.app)
      .post('/api/v1/auth/password-reset/request')
      .send({ email: user.email })
      .expect(202);
    const mail = await smtp.waitFor(
      (m) => m.to === user.email && m.subject === 'Reset your password',
    );
    await request(t.app)
      .post('/api/v1/auth/password-reset/confirm')
      .send({ token: tokenIn(mail), new_password: 'staple-battery-horse-correct' })
      .expect(204);
    const step = await request(t.app)
      .post(TOKEN)
      .send({ email: user.email, password: 'staple-battery-horse-correct' })
      .expect(403);
    expect(step.body.code).toBe('mfa_required');
    await verify(t.app, { mfa_token: step.body.mfa_token, code: codeFor(user.secret) }).expect(200);
  });

  test('when challenges are issued and answered, then the metric counts them by outcome', async () => {
    const before = await challengeOutcomes();
    const user = await enrolled();
    const mfaToken = await passwordStep(t.app, user.email);
    await verify(t.app, {
      mfa_token: mfaToken,
      code: '000000' === codeFor(user.secret) ? '111111' : '000000',
    }).expect(401);
    await verify(t.app, { mfa_token: mfaToken, code: codeFor(user.secret) }).expect(200);
    await verify(t.app, { mfa_token: mfaToken, code: codeFor(user.secret) }).expect(401);
    const after = await challengeOutcomes();
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    expect([delta('issued'), delta('invalid_code'), delta('totp'), delta('invalid_token')]).toEqual(
      [1, 1, 1, 1],
    );
  });
});

describe('removing the factor', () => {
  test('when the password and a current code are given, then 204, and logins need no code again', async () => {
    const user = await enrolled();
    await request(t.app)
      .post(DISABLE)
      .set(bearer(user.access))
      .send({ password: GOOD_PASSWORD, code: codeFor(user.secret) })
      .expect(204);
    await login(t.app, user.email, GOOD_PASSWORD, 200);
    const [row] = await t.sql('SELECT mfa_enabled, totp_secret FROM users WHERE id = $1', [
      user.userId,
    ]);
    expect(row).toEqual({ mfa_enabled: false, totp_secret: null });
    expect(
      await t.sql('SELECT 1 FROM mfa_recovery_codes WHERE user_id = $1', [user.userId]),
    ).toEqual([]);
  });

  test('when the password or the code is wrong, or the code was already used, then 403 and the factor stays', async () => {
    const user = await enrolled();
    const code = codeFor(user.secret);
    const badPassword = await request(t.app)
      .post(DISABLE)
      .set(bearer(user.access))
      .send({ password: 'wrong-password', code })
      .expect(403);
    expect(badPassword.body.code).toBe('invalid_current_password');
    const wrong = String((Number(code) + 3) % 1_000_000).padStart(6, '0');
    const badCode = await request(t.app)
      .post(DISABLE)
      .set(bearer(user.access))
      .send({ password: GOOD_PASSWORD, code: wrong })
      .expect(403);
    expect(badCode.body.code).toBe('invalid_mfa_code');
    await verify(t.app, { mfa_token: await passwordStep(t.app, user.email), code }).expect(200);
    const replayed = await request(t.app)
      .post(DISABLE)
      .set(bearer(user.access))
      .send({ password: GOOD_PASSWORD, code })
      .expect(403);
    expect(replayed.body.code).toBe('invalid_mfa_code');
    await passwordStep(t.app, user.email);
  });

  test('when no factor is active, then 409 mfa_not_enabled', async () => {
    const { token: access } = await signedInUser(t.app);
    const res = await request(t.app)
      .post(DISABLE)
      .set(bearer(access))
      .send({ password: GOOD_PASSWORD, code: '123456' })
      .expect(409);
    expect(res.body.code).toBe('mfa_not_enabled');
  });

  test('when an admin sets mfa_enabled false, then the lost factor is gone and the audit log says so; true is refused', async () => {
    const user = await enrolled();
    const admin = await signedInAdmin(t);
    const pending = await passwordStep(t.app, user.email);
    const res = await request(t.app)
      .patch(`/api/v1/admin/users/${user.userId}`)
      .set(bearer(admin.token))
      .send({ mfa_enabled: false })
      .expect(200);
    expect(res.body).toMatchObject({ id: user.userId, mfa_enabled: false, is_active: true });
    await login(t.app, user.email, GOOD_PASSWORD, 200);
    // A login that was half-way through cannot be finished with the removed factor.
    await verify(t.app, { mfa_token: pending, code: codeFor(user.secret) }).expect(401);
    const [entry] = await t.sql(
      `SELECT actor_user_id, details FROM admin_audit_log
        WHERE action = 'user.update' AND target_id = $1`,
      [user.userId],
    );
    expect(entry).toMatchObject({
      actor_user_id: admin.user.id,
      details: { changes: { mfa_enabled: { from: true, to: false } } },
    });
    const refused = await request(t.app)
      .patch(`/api/v1/admin/users/${user.userId}`)
      .set(bearer(admin.token))
      .send({ mfa_enabled: true })
      .expect(422);
    expect(refused.body.code).toBe('validation_failed');
  });
});

describe('end to end from the generated client types', () => {
  test('when a client logs in with password then code, then it holds a working session (403 mfa_required, 200, 200)', async () => {
    const user = await enrolled();
    const client = await t.api();
    const step = await client.POST('/api/v1/auth/token', {
      body: { email: user.email, password: GOOD_PASSWORD },
    });
    expect(step.response.status).toBe(403);
    expect(step.error?.code).toBe('mfa_required');
    const mfaToken = step.error?.mfa_token;
    expect(typeof mfaToken).toBe('string');
    const done = await client.POST('/api/v1/auth/mfa/verify', {
      body: { mfa_token: mfaToken!, code: codeFor(user.secret) },
    });
    expect(done.response.status).toBe(200);
    const me = await (await t.api(done.data!.access_token)).GET('/api/v1/auth/me');
    expect(me.response.status).toBe(200);
    expect(me.data).toMatchObject({ email: user.email, mfa_enabled: true });
  });
});
