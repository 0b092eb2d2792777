import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Express } from 'express';
import request from 'supertest';
import { startPrivateRedis, type PrivateRedis } from './support/redis-server';
import {
  GOOD_PASSWORD,
  register,
  signedInUser,
  startTestApp,
  type TestApp,
} from './support/test-app';
import { scrapeMetrics } from './support/metrics';

const SESSIONS = '/api/v1/auth/sessions';
const ME = '/api/v1/auth/me';
const TOKEN = '/api/v1/auth/token';

interface Pair {
  access_token: string;
  refresh_token: string;
}

interface Session {
  id: string;
  created_at: string;
  last_used_at: string;
  ip: string | null;
  user_agent: string | null;
  current: boolean;
}

/** Redis of this file only: it is flushed and restarted empty below. */
let redis: PrivateRedis;
/** Two replicas of one deployment: one database, one (private) Redis. */
let t: TestApp;
let other: TestApp;

beforeAll(async () => {
  redis = await startPrivateRedis();
  const env = { RATE_LIMIT_ENABLED: 'false', REDIS_URL: redis.url };
  t = await startTestApp(env);
  other = await startTestApp(env, { database: t.dbName });
});
afterAll(async () => {
  await other?.close();
  await t?.close();
  await redis?.stop();
});

function bearer(token: string): [string, string] {
  return ['Authorization', `Bearer ${token}`];
}

function me(app: Express, token: string) {
  return request(app)
    .get(ME)
    .set(...bearer(token));
}

async function loginAs(app: Express, email: string, userAgent?: string): Promise<Pair> {
  const req = request(app).post(TOKEN);
  if (userAgent !== undefined) req.set('User-Agent', userAgent);
  return (await req.send({ email, password: GOOD_PASSWORD }).expect(200)).body as Pair;
}

function refresh(app: Express, refreshToken: string) {
  return request(app)
    .post(TOKEN)
    .send({ grant_type: 'refresh_token', refresh_token: refreshToken });
}

async function listSessions(app: Express, token: string): Promise<Session[]> {
  const res = await request(app)
    .get(SESSIONS)
    .set(...bearer(token))
    .expect(200);
  expect(res.headers['cache-control']).toBe('no-store');
  return (res.body as { sessions: Session[] }).sessions;
}

function sidOf(accessToken: string): string {
  const payload = accessToken.split('.')[1]!;
  return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sid: string }).sid;
}

/** A user signed in three times (three sessions), with the user agents named. */
async function userWithSessions() {
  const { email, user } = await register(t.app);
  const laptop = await loginAs(t.app, email, 'Laptop/1.0');
  const phone = await loginAs(t.app, email, 'Phone/2.0');
  const tablet = await loginAs(other.app, email, 'Tablet/3.0');
  return { email, user, laptop, phone, tablet };
}

describe('listing sessions', () => {
  test('when a user has signed in three times, then 200 lists three sessions, newest first, with the current one marked', async () => {
    const { laptop, phone, tablet } = await userWithSessions();
    const sessions = await listSessions(t.app, phone.access_token);
    expect(sessions.map((s) => s.id)).toEqual(
      [tablet, phone, laptop].map((p) => sidOf(p.access_token)),
    );
    expect(sessions.map((s) => s.user_agent)).toEqual(['Tablet/3.0', 'Phone/2.0', 'Laptop/1.0']);
    expect(sessions.map((s) => s.current)).toEqual([false, true, false]);
    for (const s of sessions) {
      expect(s.ip).toMatch(/^(::ffff:)?127\.0\.0\.1$|^::1$/);
      expect(Date.parse(s.last_used_at)).toBeGreaterThanOrEqual(Date.parse(s.created_at));
    }
  });

  test("when the client sends no User-Agent, then the session's user_agent is null", async () => {
    const { email } = await register(t.app);
    const pair = await loginAs(t.app, email, '');
    const [session] = await listSessions(t.app, pair.access_token);
    expect(session!.user_agent).toBeNull();
  });

  test('when the proxy is trusted, then the ip is the client address it forwarded', async () => {
    const proxied = await startTestApp(
      { RATE_LIMIT_ENABLED: 'false', TRUST_PROXY: 'loopback' },
      { database: t.dbName },
    );
    try {
      const { email } = await register(t.app);
      const pair = (
        await request(proxied.app)
          .post(TOKEN)
          .set('X-Forwarded-For', '203.0.113.7')
          .send({ email, password: GOOD_PASSWORD })
          .expect(200)
      ).body as Pair;
      const [session] = await listSessions(t.app, pair.access_token);
      expect(session!.ip).toBe('203.0.113.7');
    } finally {
      await proxied.close();
    }
  });

  test('when a session is refreshed, then its last_used_at moves and it stays one session', async () => {
    const { email } = await register(t.app);
    const pair = await loginAs(t.app, email);
    const [before] = await listSessions(t.app, pair.access_token);
    await t.sql(
      `UPDATE sessions SET last_used_at = last_used_at - interval '1 hour' WHERE id = $1`,
      [before!.id],
    );
    const next = (await refresh(other.app, pair.refresh_token).expect(200)).body as Pair;
    const after = await listSessions(t.app, next.access_token);
    expect(after).toHaveLength(1);
    expect(after[0]!.id).toBe(before!.id);
    expect(after[0]!.current).toBe(true);
    expect(Date.parse(after[0]!.last_used_at)).toBeGreaterThan(
      Date.parse(before!.last_used_at) - 60_000,
    );
  });

  test('when sessions have ended or expired, then they are not listed', async () => {
    const { laptop, phone, tablet } = await userWithSessions();
    await request(t.app)
      .post('/api/v1/auth/logout')
      .set(...bearer(laptop.access_token))
      .expect(204);
    await t.sql(
      `UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE family_id = $1`,
      [sidOf(tablet.access_token)],
    );
    const sessions = await listSessions(t.app, phone.access_token);
    expect(sessions.map((s) => s.id)).toEqual([sidOf(phone.access_token)]);
  });

  test('when two users have sessions, then each lists only their own', async () => {
    const a = await userWithSessions();
    const b = await signedInUser(t.app);
    const listed = await listSessions(t.app, b.token);
    expect(listed.map((s) => s.id)).toEqual([sidOf(b.token)]);
    expect(listed.map((s) => s.id)).not.toContain(sidOf(a.phone.access_token));
  });
});

describe('ending one session', () => {
  test('when a session is ended on one replica, then its access token is refused at once on the other and its refresh token too', async () => {
    const { laptop, phone } = await userWithSessions();
    const sid = sidOf(laptop.access_token);
    await me(other.app, laptop.access_token).expect(200);
    await request(t.app)
      .delete(`${SESSIONS}/${sid}`)
      .set(...bearer(phone.access_token))
      .expect(204);
    expect((await me(other.app, laptop.access_token).expect(401)).body.code).toBe('invalid_token');
    expect((await refresh(other.app, laptop.refresh_token).expect(401)).body.code).toBe(
      'invalid_refresh_token',
    );
    await me(other.app, phone.access_token).expect(200);
    expect((await listSessions(other.app, phone.access_token)).map((s) => s.id)).not.toContain(sid);
  });

  test('when Redis loses its data after a session is ended, then the session stays ended', async () => {
    const { laptop, phone } = await userWithSessions();
    await request(other.app)
      .delete(`${SESSIONS}/${sidOf(laptop.access_token)}`)
      .set(...bearer(phone.access_token))
      .expect(204);
    await redis.flush();
    await me(other.app, laptop.access_token).expect(401);
    await redis.restart();
    await me(other.app, laptop.access_token).expect(401);
    await refresh(other.app, laptop.refresh_token).expect(401);
  });

  test("when the id is another user's session, then 404 and that session goes on", async () => {
    const victim = await signedInUser(t.app);
    const attacker = await signedInUser(t.app);
    const res = await request(t.app)
      .delete(`${SESSIONS}/${sidOf(victim.token)}`)
      .set(...bearer(attacker.token))
      .expect(404);
    expect(res.body.code).toBe('not_found');
    await me(other.app, victim.token).expect(200);
    await refresh(other.app, victim.tokens.refresh_token!).expect(200);
  });

  test('when the id is unknown or the session already ended, then 404', async () => {
    const { laptop, phone } = await userWithSessions();
    await request(t.app)
      .delete(`${SESSIONS}/${randomUUID()}`)
      .set(...bearer(phone.access_token))
      .expect(404);
    const sid = sidOf(laptop.access_token);
    await request(t.app)
      .delete(`${SESSIONS}/${sid}`)
      .set(...bearer(phone.access_token))
      .expect(204);
    await request(t.app)
      .delete(`${SESSIONS}/${sid}`)
      .set(...bearer(phone.access_token))
      .expect(404);
  });

  test('when the id is not a uuid, then 422 and nothing ends', async () => {
    const { phone } = await userWithSessions();
    const res = await request(t.app)
      .delete(`${SESSIONS}/not-a-session`)
      .set(...bearer(phone.access_token))
      .expect(422);
    expect(res.body.errors[0].path).toBe('/path/id');
    expect(await listSessions(t.app, phone.access_token)).toHaveLength(3);
  });

  test('when the caller ends the current session, then 204 and its own token stops working', async () => {
    const { phone, laptop } = await userWithSessions();
    await request(t.app)
      .delete(`${SESSIONS}/${sidOf(phone.access_token)}`)
      .set(...bearer(phone.access_token))
      .expect(204);
    await me(other.app, phone.access_token).expect(401);
    await me(other.app, laptop.access_token).expect(200);
  });
});

describe('ending every other session', () => {
  test('when a user ends every other session, then only the current one still works, on every replica', async () => {
    const { laptop, phone, tablet } = await userWithSessions();
    await request(other.app)
      .delete(SESSIONS)
      .set(...bearer(phone.access_token))
      .expect(204);
    for (const app of [t.app, other.app]) {
      await me(app, laptop.access_token).expect(401);
      await me(app, tablet.access_token).expect(401);
      await me(app, phone.access_token).expect(200);
    }
    await refresh(t.app, tablet.refresh_token).expect(401);
    const listed = await listSessions(t.app, phone.access_token);
    expect(listed.map((s) => [s.id, s.current])).toEqual([[sidOf(phone.access_token), true]]);
  });

  test("when a user ends every other session, then another user's sessions go on", async () => {
    const a = await userWithSessions();
    const b = await signedInUser(t.app);
    await request(t.app)
      .delete(SESSIONS)
      .set(...bearer(a.phone.access_token))
      .expect(204);
    await me(other.app, b.token).expect(200);
  });
});

describe('metrics', () => {
  test('when sessions are ended or not found, then /metrics counts them by outcome', async () => {
    const { laptop, phone } = await userWithSessions();
    await request(t.app)
      .delete(`${SESSIONS}/${sidOf(laptop.access_token)}`)
      .set(...bearer(phone.access_token))
      .expect(204);
    await request(t.app)
      .delete(`${SESSIONS}/${randomUUID()}`)
      .set(...bearer(phone.access_token))
      .expect(404);
    await request(t.app)
      .delete(SESSIONS)
      .set(...bearer(phone.access_token))
      .expect(204);
    const value = await scrapeMetrics(t.healthApp);
    expect(value('auth_sessions_ended_total{outcome="session_ended"}')).toBeGreaterThanOrEqual(2);
    expect(value('auth_sessions_ended_total{outcome="not_found"}')).toBeGreaterThanOrEqual(1);
  });
});
