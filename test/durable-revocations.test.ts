import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Express } from 'express';
import request from 'supertest';
import { startPrivateRedis, type PrivateRedis } from './support/redis-server';
import { signedInUser, startTestApp, type TestApp } from './support/test-app';

const TOKEN = '/api/v1/auth/token';
const ME = '/api/v1/auth/me';
const LOGOUT = '/api/v1/auth/logout';

interface Pair {
  access_token: string;
  refresh_token: string;
}

/** Redis of this file only: it is flushed and restarted empty below. */
let redis: PrivateRedis;
/** Two instances on one database and one (private) Redis. */
let a: TestApp;
let b: TestApp;
/** REFRESH_TOKEN_REUSE_GRACE_SECONDS=0 on the same database, so that any replay is reuse. */
let strict: TestApp;

beforeAll(async () => {
  redis = await startPrivateRedis();
  a = await startTestApp({ REDIS_URL: redis.url });
  [b, strict] = await Promise.all([
    startTestApp({ REDIS_URL: redis.url }, { database: a.dbName }),
    startTestApp(
      { REDIS_URL: redis.url, REFRESH_TOKEN_REUSE_GRACE_SECONDS: '0' },
      { database: a.dbName },
    ),
  ]);
});
afterAll(async () => {
  await Promise.all([b, strict].map((x) => x?.close()));
  await a?.close();
  await redis?.stop();
});

function me(app: Express, token: string) {
  return request(app).get(ME).set('Authorization', `Bearer ${token}`);
}

function refresh(app: Express, refreshToken: string) {
  return request(app)
    .post(TOKEN)
    .send({ grant_type: 'refresh_token', refresh_token: refreshToken });
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
    string,
    unknown
  >;
}

describe('revocations survive the loss of Redis data', () => {
  test('when a token is logged out and Redis is flushed, then it stays refused on both instances', async () => {
    const { token } = await signedInUser(a.app);
    await me(b.app, token).expect(200);
    await request(a.app).post(LOGOUT).set('Authorization', `Bearer ${token}`).expect(204);
    await redis.flush();
    for (const app of [a.app, b.app]) {
      const res = await me(app, token).expect(401);
      expect(res.body.code).toBe('invalid_token');
    }
  });

  test('when a token is logged out and Redis restarts empty, then it stays refused', async () => {
    const { token, tokens } = await signedInUser(a.app);
    await request(b.app).post(LOGOUT).set('Authorization', `Bearer ${token}`).expect(204);
    await redis.restart();
    await me(a.app, token).expect(401);
    await me(b.app, token).expect(401);
    await refresh(a.app, tokens.refresh_token!).expect(401);
  });

  test('when a family is revoked for reuse and Redis is flushed, then its access tokens stay refused', async () => {
    const { tokens, email } = await signedInUser(strict.app);
    const first = tokens as Pair;
    const other = (
      await request(a.app)
        .post(TOKEN)
        .send({ email, password: 'correct-horse-battery' })
        .expect(200)
    ).body as Pair;
    const second = (await refresh(strict.app, first.refresh_token).expect(200)).body as Pair;
    const reuse = await refresh(strict.app, first.refresh_token).expect(401);
    expect(reuse.body.code).toBe('refresh_token_reused');
    await redis.flush();
    for (const token of [first.access_token, second.access_token]) {
      await me(a.app, token).expect(401);
      await me(b.app, token).expect(401);
    }
    // Only the reused family ends: the user's other session is untouched.
    await me(b.app, other.access_token).expect(200);
  });

  test('when the password is changed and Redis is flushed, then the other sessions stay ended and the caller keeps working', async () => {
    const { token, email, password } = await signedInUser(a.app);
    const other = (await request(a.app).post(TOKEN).send({ email, password }).expect(200))
      .body as Pair;
    await request(b.app)
      .post('/api/v1/auth/password')
      .set('Authorization', `Bearer ${token}`)
      .send({ current_password: password, new_password: 'a-brand-new-password' })
      .expect(204);
    await redis.flush();
    await me(a.app, other.access_token).expect(401);
    await me(a.app, token).expect(200);
    await me(b.app, token).expect(200);
  });

  test('when a user is deactivated and reactivated and Redis is flushed, then old tokens stay refused', async () => {
    const { token, user } = await signedInUser(a.app);
    await a.sql('UPDATE users SET is_active = false WHERE id = $1', [user.id]);
    await a.sql('UPDATE users SET is_active = true WHERE id = $1', [user.id]);
    await redis.flush();
    await me(b.app, token).expect(401);
  });

  test('when a token is issued, then it names its session (the refresh-token family) in the sid claim', async () => {
    const { token, user } = await signedInUser(a.app);
    const { sid } = claimsOf(token);
    expect(sid).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
    const rows = await a.sql('SELECT id, user_id, ended_at FROM sessions WHERE id = $1', [sid]);
    expect(rows).toEqual([{ id: sid, user_id: user.id, ended_at: null }]);
    const families = await a.sql(
      'SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1',
      [user.id],
    );
    expect(families).toEqual([{ family_id: sid }]);
  });

  test('when a token is logged out, then its session is ended in PostgreSQL', async () => {
    const { token } = await signedInUser(a.app);
    const { sid } = claimsOf(token);
    await request(a.app).post(LOGOUT).set('Authorization', `Bearer ${token}`).expect(204);
    const rows = await a.sql('SELECT ended_at, end_reason FROM sessions WHERE id = $1', [sid]);
    expect(rows).toEqual([{ ended_at: expect.any(Date), end_reason: 'logout' }]);
  });

  test('when a session is ended in the database by an operator, then its access token is refused at once', async () => {
    const { token } = await signedInUser(a.app);
    await me(b.app, token).expect(200);
    await a.sql("UPDATE sessions SET ended_at = now(), end_reason = 'operator' WHERE id = $1", [
      claimsOf(token).sid,
    ]);
    await me(b.app, token).expect(401);
  });
});
