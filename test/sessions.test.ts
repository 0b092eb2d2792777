import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Express } from 'express';
import request from 'supertest';
import {
  GOOD_PASSWORD,
  login,
  register,
  signedInUser,
  startTestApp,
  type TestApp,
} from './support/test-app';

const TOKEN = '/api/v1/auth/token';
const ME = '/api/v1/auth/me';
const LOGOUT = '/api/v1/auth/logout';
const PASSWORD = '/api/v1/auth/password';

interface Pair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  token_type: string;
}

/** Default grace window (10 s). */
let t: TestApp;
/** REFRESH_TOKEN_REUSE_GRACE_SECONDS=0: any replay is reuse. */
let strict: TestApp;
/** A grace window far longer than any test. */
let lenient: TestApp;

beforeAll(async () => {
  [t, strict, lenient] = await Promise.all([
    startTestApp(),
    startTestApp({ REFRESH_TOKEN_REUSE_GRACE_SECONDS: '0' }),
    startTestApp({ REFRESH_TOKEN_REUSE_GRACE_SECONDS: '3600' }),
  ]);
});
afterAll(async () => {
  await Promise.all([t, strict, lenient].map((a) => a?.close()));
});

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function refresh(app: Express, refreshToken: string) {
  return request(app)
    .post(TOKEN)
    .send({ grant_type: 'refresh_token', refresh_token: refreshToken });
}

async function session(app: Express): Promise<{ pair: Pair; email: string; userId: string }> {
  const { email, user, tokens } = await signedInUser(app);
  return { pair: tokens as Pair, email, userId: user.id };
}

function me(app: Express, accessToken: string) {
  return request(app).get(ME).set('Authorization', `Bearer ${accessToken}`);
}

function sidOf(accessToken: string): string {
  const payload = accessToken.split('.')[1]!;
  return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sid: string }).sid;
}

function logout(app: Express, accessToken: string) {
  return request(app).post(LOGOUT).set('Authorization', `Bearer ${accessToken}`);
}

describe('refresh tokens', () => {
  test('when logging in, then a 256-bit base64url refresh token is returned and only its SHA-256 is stored', async () => {
    const { pair, userId } = await session(t.app);
    expect(pair.refresh_token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(Buffer.from(pair.refresh_token, 'base64url').length).toBeGreaterThanOrEqual(32);
    const rows = await t.sql('SELECT * FROM refresh_tokens WHERE user_id = $1', [userId]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(sha256(pair.refresh_token));
    expect(JSON.stringify(rows)).not.toContain(pair.refresh_token);
  });

  test('when refreshing with JSON, then 200 with a new pair whose access token works', async () => {
    const { pair } = await session(t.app);
    const res = await refresh(t.app, pair.refresh_token).expect(200);
    expect(res.body).toMatchObject({ token_type: 'bearer', expires_in: 1800 });
    expect(res.body.refresh_token).not.toBe(pair.refresh_token);
    expect(res.body.access_token).not.toBe(pair.access_token);
    expect(res.headers['cache-control']).toBe('no-store');
    await me(t.app, res.body.access_token).expect(200);
  });

  test('when refreshing with the OAuth2 form, then 200 with a new pair and no password needed', async () => {
    const { pair } = await session(t.app);
    const res = await request(t.app)
      .post(TOKEN)
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: pair.refresh_token })
      .expect(200);
    expect(res.body.refresh_token).toEqual(expect.any(String));
    await me(t.app, res.body.access_token).expect(200);
  });

  test('when a rotated refresh token is presented again after the grace window, then 401 refresh_token_reused', async () => {
    const { pair } = await session(strict.app);
    await refresh(strict.app, pair.refresh_token).expect(200);
    const res = await refresh(strict.app, pair.refresh_token).expect(401);
    expect(res.body.code).toBe('refresh_token_reused');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  test('when a spent refresh token is replayed after the grace window, then the newest token of its family is revoked too', async () => {
    const { pair } = await session(strict.app);
    const second = (await refresh(strict.app, pair.refresh_token).expect(200)).body as Pair;
    const third = (await refresh(strict.app, second.refresh_token).expect(200)).body as Pair;
    await refresh(strict.app, pair.refresh_token).expect(401);
    const res = await refresh(strict.app, third.refresh_token).expect(401);
    expect(res.body.code).toBe('invalid_refresh_token');
  });

  test('when a family is revoked for reuse, then every access token issued into it is refused too', async () => {
    const { pair, email } = await session(strict.app);
    const other = (await login(strict.app, email)) as Pair;
    const second = (await refresh(strict.app, pair.refresh_token).expect(200)).body as Pair;
    await refresh(strict.app, pair.refresh_token).expect(401);
    for (const token of [pair.access_token, second.access_token]) {
      const res = await me(strict.app, token).expect(401);
      expect(res.body.code).toBe('invalid_token');
    }
    await me(strict.app, other.access_token).expect(200);
  });

  test('when one family is revoked for reuse, then another session of the same user keeps working', async () => {
    const { pair, email } = await session(strict.app);
    const other = (await login(strict.app, email)) as Pair;
    await refresh(strict.app, pair.refresh_token).expect(200);
    await refresh(strict.app, pair.refresh_token).expect(401);
    await refresh(strict.app, other.refresh_token).expect(200);
  });

  test('when two tabs refresh the same token at once inside the grace window, then both keep a working session', async () => {
    const { pair } = await session(lenient.app);
    const [a, b] = await Promise.all([
      refresh(lenient.app, pair.refresh_token),
      refresh(lenient.app, pair.refresh_token),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.refresh_token).not.toBe(b.body.refresh_token);
    for (const tab of [a.body as Pair, b.body as Pair]) {
      await me(lenient.app, tab.access_token).expect(200);
      await refresh(lenient.app, tab.refresh_token).expect(200);
    }
  });

  test('when two refreshes of one token race with no grace window, then exactly one wins and the family is revoked', async () => {
    const { pair } = await session(strict.app);
    const results = await Promise.all([
      refresh(strict.app, pair.refresh_token),
      refresh(strict.app, pair.refresh_token),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 401]);
    const winner = results.find((r) => r.status === 200)!.body as Pair;
    const loser = results.find((r) => r.status === 401)!;
    expect(loser.body.code).toBe('refresh_token_reused');
    await refresh(strict.app, winner.refresh_token).expect(401);
  });

  test('when the refresh token has expired, then 401 invalid_refresh_token', async () => {
    const { pair } = await session(t.app);
    await t.sql(
      `UPDATE refresh_tokens SET expires_at = now() - interval '1 minute' WHERE token_hash = $1`,
      [sha256(pair.refresh_token)],
    );
    const res = await refresh(t.app, pair.refresh_token).expect(401);
    expect(res.body.code).toBe('invalid_refresh_token');
  });

  test('when the refresh token is unknown, then 401 invalid_refresh_token as problem+json', async () => {
    const res = await refresh(t.app, 'x'.repeat(43)).expect(401);
    expect(res.body.code).toBe('invalid_refresh_token');
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  test('when the account is deactivated, then its refresh token is refused', async () => {
    const { pair, userId } = await session(t.app);
    await t.sql('UPDATE users SET is_active = false WHERE id = $1', [userId]);
    const res = await refresh(t.app, pair.refresh_token).expect(401);
    expect(res.body.code).toBe('invalid_refresh_token');
  });

  test('when the account is deleted, then its refresh token is refused', async () => {
    const { pair, userId } = await session(t.app);
    await t.sql('DELETE FROM users WHERE id = $1', [userId]);
    const res = await refresh(t.app, pair.refresh_token).expect(401);
    expect(res.body.code).toBe('invalid_refresh_token');
  });

  test.each([
    ['form', { grant_type: 'refresh_token' }],
    ['json', { grant_type: 'refresh_token' }],
    ['json', { grant_type: 'refresh_token', refresh_token: '' }],
  ])('when a %s refresh grant lacks a refresh token, then 422', async (type, body) => {
    const res = await request(t.app).post(TOKEN).type(type).send(body).expect(422);
    expect(res.body.code).toBe('validation_failed');
  });
});

describe('logout', () => {
  test('when logging out, then 204 and the access token is refused afterwards', async () => {
    const { pair } = await session(t.app);
    await request(t.app)
      .post(LOGOUT)
      .set('Authorization', `Bearer ${pair.access_token}`)
      .expect(204);
    const res = await me(t.app, pair.access_token).expect(401);
    expect(res.body.code).toBe('invalid_token');
  });

  test("when logging out, then the session's refresh token stops working", async () => {
    const { pair } = await session(t.app);
    await request(t.app)
      .post(LOGOUT)
      .set('Authorization', `Bearer ${pair.access_token}`)
      .expect(204);
    const res = await refresh(t.app, pair.refresh_token).expect(401);
    expect(res.body.code).toBe('invalid_refresh_token');
  });

  test('when logging out with a refresh_token of another session of the same user, then it is revoked too', async () => {
    const { pair, email } = await session(t.app);
    const other = (await login(t.app, email)) as Pair;
    await request(t.app)
      .post(LOGOUT)
      .set('Authorization', `Bearer ${pair.access_token}`)
      .send({ refresh_token: other.refresh_token })
      .expect(204);
    await refresh(t.app, other.refresh_token).expect(401);
  });

  test("when the refresh_token in the body belongs to another user, then that user's session is untouched", async () => {
    const { pair } = await session(t.app);
    const victim = await session(t.app);
    await request(t.app)
      .post(LOGOUT)
      .set('Authorization', `Bearer ${pair.access_token}`)
      .send({ refresh_token: victim.pair.refresh_token })
      .expect(204);
    await refresh(t.app, victim.pair.refresh_token).expect(200);
  });

  test('when logging out with a refreshed pair, then the access tokens issued earlier in the session are refused too', async () => {
    const { pair, email } = await session(t.app);
    const other = (await login(t.app, email)) as Pair;
    const second = (await refresh(t.app, pair.refresh_token).expect(200)).body as Pair;
    await logout(t.app, second.access_token).expect(204);
    for (const token of [second.access_token, pair.access_token]) {
      const res = await me(t.app, token).expect(401);
      expect(res.body.code).toBe('invalid_token');
    }
    await me(t.app, other.access_token).expect(200);
  });

  test('when logging out, then the session and all its refresh tokens are ended in PostgreSQL and nothing is kept in Redis', async () => {
    const { pair } = await session(t.app);
    const second = (await refresh(t.app, pair.refresh_token).expect(200)).body as Pair;
    const sid = sidOf(second.access_token);
    expect(sidOf(pair.access_token)).toBe(sid);
    await logout(t.app, second.access_token).expect(204);
    const [row] = await t.sql('SELECT ended_at, end_reason FROM sessions WHERE id = $1', [sid]);
    expect(row).toEqual({ ended_at: expect.any(Date), end_reason: 'logout' });
    const live = await t.sql(
      'SELECT id FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NULL',
      [sid],
    );
    expect(live).toEqual([]);
    const keys = await t.deps.redis!.keys(`${t.deps.redisKeyPrefix}revoked:*`);
    expect(keys).toEqual([]);
  });

  test('when logging out without an access token, then 401', async () => {
    const res = await request(t.app).post(LOGOUT).expect(401);
    expect(res.body.code).toBe('missing_token');
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  test('when logging out on one instance, then another instance sharing the database and Redis refuses the token', async () => {
    const second = await startTestApp({}, { database: t.dbName });
    try {
      expect(second.deps.redisKeyPrefix).toBe(t.deps.redisKeyPrefix);
      const { pair } = await session(t.app);
      await me(second.app, pair.access_token).expect(200);
      await request(t.app)
        .post(LOGOUT)
        .set('Authorization', `Bearer ${pair.access_token}`)
        .expect(204);
      await me(second.app, pair.access_token).expect(401);
    } finally {
      await second.close();
    }
  });
});

describe('change password', () => {
  const NEW_PASSWORD = 'staple-battery-horse-correct';

  function change(app: Express, accessToken: string, current: string, next = NEW_PASSWORD) {
    return request(app)
      .post(PASSWORD)
      .set('Authorization', `Bearer ${accessToken}`)
      .send({ current_password: current, new_password: next });
  }

  test('when changing the password, then 204, the old password is refused and the new one works', async () => {
    const { pair, email } = await session(t.app);
    await change(t.app, pair.access_token, GOOD_PASSWORD).expect(204);
    await login(t.app, email, GOOD_PASSWORD, 401);
    const fresh = (await login(t.app, email, NEW_PASSWORD)) as Pair;
    await me(t.app, fresh.access_token).expect(200);
  });

  test("when changing the password, then the caller's access token keeps working and other access tokens are refused", async () => {
    const { pair, email } = await session(t.app);
    const other = (await login(t.app, email)) as Pair;
    await change(t.app, pair.access_token, GOOD_PASSWORD).expect(204);
    await me(t.app, pair.access_token).expect(200);
    const res = await me(t.app, other.access_token).expect(401);
    expect(res.body.code).toBe('invalid_token');
  });

  test("when changing the password, then other sessions' refresh tokens are revoked and the caller's own session's is not", async () => {
    const { pair, email } = await session(t.app);
    const other = (await login(t.app, email)) as Pair;
    await change(t.app, pair.access_token, GOOD_PASSWORD).expect(204);
    await refresh(t.app, other.refresh_token).expect(401);
    const mine = (await refresh(t.app, pair.refresh_token).expect(200)).body as Pair;
    await me(t.app, mine.access_token).expect(200);
  });

  test('when the current password is wrong, then 403 invalid_current_password and nothing changes', async () => {
    const { pair, email } = await session(t.app);
    const other = (await login(t.app, email)) as Pair;
    const res = await change(t.app, pair.access_token, 'not-the-password').expect(403);
    expect(res.body.code).toBe('invalid_current_password');
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    await login(t.app, email, NEW_PASSWORD, 401);
    await login(t.app, email, GOOD_PASSWORD, 200);
    await me(t.app, other.access_token).expect(200);
    await refresh(t.app, other.refresh_token).expect(200);
  });

  test('when the new password is longer than 72 bytes in UTF-8, then 422 on new_password', async () => {
    const { pair, email } = await session(t.app);
    const res = await change(t.app, pair.access_token, GOOD_PASSWORD, 'é'.repeat(40)).expect(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.errors).toEqual([{ path: '/body/new_password', message: expect.any(String) }]);
    await login(t.app, email, GOOD_PASSWORD, 200);
  });

  test('when the new password is too short, then 422', async () => {
    const { pair } = await session(t.app);
    const res = await change(t.app, pair.access_token, GOOD_PASSWORD, 'short').expect(422);
    expect(res.body.code).toBe('validation_failed');
  });

  test('when changing the password without an access token, then 401', async () => {
    await request(t.app)
      .post(PASSWORD)
      .send({ current_password: GOOD_PASSWORD, new_password: NEW_PASSWORD })
      .expect(401);
  });

  test("when the caller's token is exempted and the password changes again from another session, then the first caller's token is refused", async () => {
    const { pair, email } = await session(t.app);
    await change(t.app, pair.access_token, GOOD_PASSWORD).expect(204);
    const later = (await login(t.app, email, NEW_PASSWORD)) as Pair;
    await change(t.app, later.access_token, NEW_PASSWORD, 'third-password-here').expect(204);
    await me(t.app, later.access_token).expect(200);
    await me(t.app, pair.access_token).expect(401);
  });
});

describe('ending every session (password reset)', () => {
  test('when every session of a user is ended, then earlier tokens are refused and a login right after works', async () => {
    const { pair, email, userId } = await session(t.app);
    await t.deps.sessions.endAllSessions(userId);
    await me(t.app, pair.access_token).expect(401);
    await refresh(t.app, pair.refresh_token).expect(401);
    const fresh = (await login(t.app, email)) as Pair;
    await me(t.app, fresh.access_token).expect(200);
  });

  test('when tokens_valid_after is set in the database, then access tokens issued before it are refused', async () => {
    const { pair, userId } = await session(t.app);
    await t.sql("UPDATE users SET tokens_valid_after = now() + interval '1 second' WHERE id = $1", [
      userId,
    ]);
    await me(t.app, pair.access_token).expect(401);
  });
});

test('when a user registers, logs in and refreshes, then no token appears in the logs', async () => {
  const { email } = await register(t.app);
  const pair = (await login(t.app, email)) as Pair;
  const next = (await refresh(t.app, pair.refresh_token).expect(200)).body as Pair;
  const logs = t.logs.join('\n');
  for (const secret of [pair.access_token, pair.refresh_token, next.refresh_token, GOOD_PASSWORD]) {
    expect(logs).not.toContain(secret);
  }
});
