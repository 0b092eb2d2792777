import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Express } from 'express';
import { Secret, TOTP } from 'otpauth';
import request from 'supertest';
import {
  GOOD_PASSWORD,
  login,
  register,
  signedInAdmin,
  signedInUser,
  startTestApp,
  useTestApp,
  type TestApp,
} from './support/test-app';
import { scrapeMetrics } from './support/metrics';

const ME = '/api/v1/auth/me';

/** A second replica of the same deployment: one database, one Redis key prefix. */
let other: TestApp;
// Registered before useTestApp's own: afterAll hooks run in order, and the replica must close
// before the first app drops the database under it.
afterAll(async () => {
  await other?.close();
});
/** The clock TOTP codes are checked against; tests move it, as the MFA tests do. */
let now = Date.UTC(2026, 11, 1, 12, 0, 0);
const clock = () => now;
/** One 30-second step later: a fresh code that no earlier test has used. */
const tick = () => {
  now += 30_000;
};
const codeFor = (secret: string) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: now });
const t = useTestApp({ RATE_LIMIT_ENABLED: 'false' }, { clock });
beforeAll(async () => {
  other = await startTestApp({ RATE_LIMIT_ENABLED: 'false' }, { database: t.dbName });
});

function bearer(token: string): [string, string] {
  return ['Authorization', `Bearer ${token}`];
}

function deleteAccount(app: Express, token: string, body: object = { password: GOOD_PASSWORD }) {
  return request(app)
    .delete(ME)
    .set(...bearer(token))
    .send(body);
}

function me(app: Express, token: string) {
  return request(app)
    .get(ME)
    .set(...bearer(token));
}

/** A signed-in user with a second session, an app token and a Discogs connection row. */
async function userWithEverything() {
  const u = await signedInUser(t.app);
  const second = await login(t.app, u.email);
  const appToken = (
    await request(t.app)
      .post('/api/v1/auth/app-tokens')
      .set(...bearer(u.token))
      .send({ name: 'script' })
      .expect(201)
  ).body.token as string;
  await t.sql(
    `INSERT INTO oauth_tokens (user_id, provider, access_token, access_token_secret)
     VALUES ($1, 'discogs', 'sealed', 'sealed')`,
    [u.user.id],
  );
  return { ...u, second, appToken };
}

/** A signed-in user whose TOTP factor is active (set up and confirmed), with its secret. */
async function userWithFactor() {
  const u = await signedInUser(t.app);
  const setup = await request(t.app)
    .post('/api/v1/auth/mfa/totp/setup')
    .set(...bearer(u.token))
    .expect(200);
  const secret = setup.body.secret as string;
  await request(t.app)
    .post('/api/v1/auth/mfa/totp/confirm')
    .set(...bearer(u.token))
    .send({ code: codeFor(secret) })
    .expect(200);
  tick();
  return { ...u, secret };
}

/** The user's factor and recovery-code rows, as counts. */
async function factorRows(userId: string) {
  const [row] = await t.sql(
    `SELECT (SELECT count(*)::int FROM users WHERE id = $1 AND mfa_enabled) AS factors,
            (SELECT count(*)::int FROM mfa_recovery_codes WHERE user_id = $1) AS "recoveryCodes"`,
    [userId],
  );
  return row;
}

/** Every table with a column that references users(id), from the catalogue itself. */
async function userForeignKeys() {
  return t.sql(
    `SELECT c.conrelid::regclass::text AS "table", a.attname AS "column",
            c.confdeltype AS "onDelete"
       FROM pg_constraint c
       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
      WHERE c.contype = 'f' AND c.confrelid = 'users'::regclass
      ORDER BY 1, 2`,
  );
}

describe('deleting the account', () => {
  test('when a user deletes the account, then 204 and every row that belonged to it is gone', async () => {
    const u = await userWithEverything();
    await deleteAccount(t.app, u.token).expect(204);
    for (const fk of await userForeignKeys()) {
      if (fk.onDelete !== 'c') continue;
      const rows = await t.sql(
        `SELECT 1 FROM ${fk.table as string} WHERE ${fk.column as string} = $1`,
        [u.user.id],
      );
      expect({ table: fk.table, rows }).toEqual({ table: fk.table, rows: [] });
    }
    expect(await t.sql('SELECT 1 FROM users WHERE id = $1', [u.user.id])).toEqual([]);
  });

  test('when the schema is read, then every reference to users cascades, except the audit log, which keeps its entries', async () => {
    const fks = await userForeignKeys();
    expect(fks.length).toBeGreaterThanOrEqual(4);
    const kept = fks.filter((fk) => fk.onDelete !== 'c');
    // 'n' = ON DELETE SET NULL: who did an admin action stays readable as actor_label.
    expect(kept).toEqual([{ table: 'admin_audit_log', column: 'actor_user_id', onDelete: 'n' }]);
  });

  test('when an account is deleted on one replica, then its access, refresh and app tokens are refused at once on the other', async () => {
    const u = await userWithEverything();
    await me(other.app, u.appToken).expect(200);
    await me(other.app, u.second.access_token).expect(200);
    await deleteAccount(t.app, u.token).expect(204);
    for (const token of [u.token, u.second.access_token, u.appToken]) {
      expect((await me(other.app, token).expect(401)).body.code).toBe('invalid_token');
      await me(t.app, token).expect(401);
    }
    const res = await request(other.app)
      .post('/api/v1/auth/token')
      .send({ grant_type: 'refresh_token', refresh_token: u.second.refresh_token })
      .expect(401);
    expect(res.body.code).toBe('invalid_refresh_token');
    await login(other.app, u.email, GOOD_PASSWORD, 401);
  });

  test('when an account is deleted, then its email can be registered again as a new account', async () => {
    const u = await signedInUser(t.app);
    await deleteAccount(t.app, u.token).expect(204);
    const again = await register(t.app, u.email);
    expect(again.user.id).not.toBe(u.user.id);
    const fresh = await login(t.app, u.email);
    expect((await me(t.app, fresh.access_token).expect(200)).body.id).toBe(again.user.id);
  });

  test('when an account is deleted, then the audit log keeps an account.delete entry with the id and not the email', async () => {
    const u = await signedInUser(t.app);
    const res = await deleteAccount(t.app, u.token).set('X-Request-Id', 'delete-req-1').expect(204);
    expect(res.headers['x-request-id']).toBe('delete-req-1');
    const rows = await t.sql(
      `SELECT actor_user_id, actor_label, action, target_type, target_id, details, request_id
         FROM admin_audit_log WHERE target_id = $1`,
      [u.user.id],
    );
    expect(rows).toEqual([
      {
        actor_user_id: null,
        actor_label: 'self',
        action: 'account.delete',
        target_type: 'user',
        target_id: u.user.id,
        details: {},
        request_id: 'delete-req-1',
      },
    ]);
    expect(JSON.stringify(rows)).not.toContain(u.email);
  });

  test('when an admin who made audit entries deletes the account, then those entries stay with no actor id', async () => {
    const admin = await signedInAdmin(t);
    await signedInAdmin(t); // so that the first is not the last one
    const target = await register(t.app);
    await request(t.app)
      .patch(`/api/v1/admin/users/${target.user.id}`)
      .set(...bearer(admin.token))
      .send({ is_active: false })
      .expect(200);
    await deleteAccount(t.app, admin.token).expect(204);
    const rows = await t.sql(
      `SELECT actor_user_id, actor_label FROM admin_audit_log
        WHERE action = 'user.update' AND target_id = $1`,
      [target.user.id],
    );
    expect(rows).toEqual([{ actor_user_id: null, actor_label: admin.email }]);
  });
});

describe('refusals', () => {
  test('when the password is wrong, then 403 invalid_current_password and nothing changes', async () => {
    const u = await userWithEverything();
    const res = await deleteAccount(t.app, u.token, { password: 'not-the-password' }).expect(403);
    expect(res.body.code).toBe('invalid_current_password');
    expect(JSON.stringify(res.body)).not.toContain('not-the-password');
    await me(other.app, u.token).expect(200);
    await me(other.app, u.appToken).expect(200);
    expect(await t.sql('SELECT 1 FROM oauth_tokens WHERE user_id = $1', [u.user.id])).toHaveLength(
      1,
    );
  });

  test('when the call carries an app token, then 403 app_token_not_allowed and the account stays', async () => {
    const u = await userWithEverything();
    const res = await deleteAccount(t.app, u.appToken).expect(403);
    expect(res.body.code).toBe('app_token_not_allowed');
    await me(t.app, u.token).expect(200);
  });

  test.each([
    ['no body', 415, undefined, undefined],
    ['no password', 422, {}, '/body/password'],
    ['an unknown member', 422, { password: GOOD_PASSWORD, force: true }, '/body/force'],
    ['a code that is not 6 digits', 422, { password: GOOD_PASSWORD, code: '12345' }, '/body/code'],
  ])(
    'when the request has %s, then %i problem+json and the account stays',
    async (_c, status, body, path) => {
      const u = await signedInUser(t.app);
      const req = request(t.app)
        .delete(ME)
        .set(...bearer(u.token));
      const res = body === undefined ? await req : await req.send(body);
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      if (path) expect(res.body.errors).toEqual([expect.objectContaining({ path })]);
      await me(t.app, u.token).expect(200);
    },
  );

  test('when the last active admin deletes the account, then 409 last_admin and the account stays', async () => {
    // Only this file's database: make the caller the one active admin.
    const admin = await signedInAdmin(t);
    await t.sql('UPDATE users SET is_admin = false WHERE id <> $1', [admin.user.id]);
    const res = await deleteAccount(t.app, admin.token).expect(409);
    expect(res.body.code).toBe('last_admin');
    await me(t.app, admin.token).expect(200);
    // With a second admin, the first may leave.
    await signedInAdmin(t);
    await deleteAccount(t.app, admin.token).expect(204);
  });

  test('when the two last admins delete their accounts at once on two replicas, then exactly one succeeds', async () => {
    const a = await signedInAdmin(t);
    const b = await signedInAdmin(t);
    await t.sql('UPDATE users SET is_admin = false WHERE id NOT IN ($1, $2)', [
      a.user.id,
      b.user.id,
    ]);
    const results = await Promise.all([
      deleteAccount(t.app, a.token),
      deleteAccount(other.app, b.token),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([204, 409]);
    const [left] = await t.sql('SELECT count(*)::int AS n FROM users WHERE is_admin AND is_active');
    expect(left!.n).toBe(1);
  });
});

describe('with a TOTP factor', () => {
  test('when a factor is active and no code is sent, then 403 invalid_mfa_code and nothing is deleted', async () => {
    const u = await userWithFactor();
    const res = await deleteAccount(t.app, u.token).expect(403);
    expect(res.body.code).toBe('invalid_mfa_code');
    await me(t.app, u.token).expect(200);
    expect(await factorRows(u.user.id)).toEqual({ factors: 1, recoveryCodes: 10 });
  });

  test('when a factor is active and the code is wrong, then 403 invalid_mfa_code and nothing is deleted', async () => {
    const u = await userWithFactor();
    const wrong = String((Number(codeFor(u.secret)) + 3) % 1_000_000).padStart(6, '0');
    const res = await deleteAccount(t.app, u.token, { password: GOOD_PASSWORD, code: wrong });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('invalid_mfa_code');
    expect(JSON.stringify(res.body)).not.toContain(wrong);
    await me(t.app, u.token).expect(200);
    expect(await factorRows(u.user.id)).toEqual({ factors: 1, recoveryCodes: 10 });
  });

  test('when the code was already accepted at a login, then 403 invalid_mfa_code and nothing is deleted', async () => {
    const u = await userWithFactor();
    const code = codeFor(u.secret);
    const step = await request(t.app)
      .post('/api/v1/auth/token')
      .send({ email: u.email, password: GOOD_PASSWORD })
      .expect(403);
    expect(step.body.code).toBe('mfa_required');
    await request(t.app)
      .post('/api/v1/auth/mfa/verify')
      .send({ mfa_token: step.body.mfa_token, code })
      .expect(200);
    const res = await deleteAccount(t.app, u.token, { password: GOOD_PASSWORD, code });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('invalid_mfa_code');
    await me(t.app, u.token).expect(200);
  });

  test('when the password is wrong and the code right, then 403 invalid_current_password and nothing is deleted', async () => {
    const u = await userWithFactor();
    const res = await deleteAccount(t.app, u.token, {
      password: 'not-the-password',
      code: codeFor(u.secret),
    }).expect(403);
    expect(res.body.code).toBe('invalid_current_password');
    await me(t.app, u.token).expect(200);
  });

  test("when a factor is active and the code is right, then 204 and the user's factor and recovery codes are gone", async () => {
    const u = await userWithFactor();
    await deleteAccount(t.app, u.token, {
      password: GOOD_PASSWORD,
      code: codeFor(u.secret),
    }).expect(204);
    await me(t.app, u.token).expect(401);
    expect(await factorRows(u.user.id)).toEqual({ factors: 0, recoveryCodes: 0 });
  });

  test('when no factor is active, then the password alone deletes the account, and a code sent anyway is not needed', async () => {
    const plain = await signedInUser(t.app);
    await deleteAccount(t.app, plain.token).expect(204);
    await me(t.app, plain.token).expect(401);
    const withCode = await signedInUser(t.app);
    await deleteAccount(t.app, withCode.token, { password: GOOD_PASSWORD, code: '000000' }).expect(
      204,
    );
    await me(t.app, withCode.token).expect(401);
  });
});

describe('metrics and logs', () => {
  test('when accounts are deleted or refused, then /metrics counts them by outcome and no password is logged', async () => {
    const u = await signedInUser(t.app);
    await deleteAccount(t.app, u.token, { password: 'wrong-password-xyz' }).expect(403);
    await deleteAccount(t.app, u.token).expect(204);
    const value = await scrapeMetrics(t.healthApp);
    expect(value('auth_account_deletions_total{outcome="deleted"}')).toBeGreaterThanOrEqual(1);
    expect(
      value('auth_account_deletions_total{outcome="invalid_password"}'),
    ).toBeGreaterThanOrEqual(1);
    const logs = [...t.logs, ...other.logs].join('\n');
    expect(logs).not.toContain('wrong-password-xyz');
    expect(logs).not.toContain(GOOD_PASSWORD);
  });
});
