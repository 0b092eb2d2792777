import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { startPrivateRedis, type PrivateRedis } from './support/redis-server';
import {
  GOOD_PASSWORD,
  signedInUser,
  startTestApp,
  uniqueEmail,
  type TestApp,
} from './support/test-app';

/** The contract's bound: an answer within 5 s whatever Redis does. */
const ANSWER_WITHIN_MS = 5_000;

/** A Redis of this file only, frozen with SIGSTOP below (its connections stay open). */
let redis: PrivateRedis;
let t: TestApp;
let user: Awaited<ReturnType<typeof signedInUser>>;

beforeAll(async () => {
  redis = await startPrivateRedis();
  t = await startTestApp({ REDIS_URL: redis.url, RATE_LIMIT_LOGIN_PER_MINUTE: '5' });
  user = await signedInUser(t.app);
  redis.freeze();
});
afterAll(async () => {
  redis?.thaw();
  await t?.close();
  await redis?.stop();
});

describe('when Redis stops answering but keeps its connection open', () => {
  test('then /me answers 200 in time', async () => {
    const res = await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${user.token}`)
      .timeout(ANSWER_WITHIN_MS);
    expect(res.status).toBe(200);
  });

  test('then a login answers 200 in time (the rate limit falls back to the process)', async () => {
    const res = await request(t.app)
      .post('/api/v1/auth/token')
      .send({ email: user.email, password: GOOD_PASSWORD })
      .timeout(ANSWER_WITHIN_MS);
    expect(res.status).toBe(200);
  });

  test('then failed logins are still limited, by the in-process fallback', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await request(t.app)
        .post('/api/v1/auth/token')
        .send({ email: user.email, password: 'wrong-password' })
        .timeout(ANSWER_WITHIN_MS);
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });

  test('then a registration and a refresh answer in time', async () => {
    const reg = await request(t.app)
      .post('/api/v1/auth/register')
      .send({ email: uniqueEmail(), password: GOOD_PASSWORD })
      .timeout(ANSWER_WITHIN_MS);
    expect(reg.status).toBe(201);
    const next = await request(t.app)
      .post('/api/v1/auth/token')
      .send({ grant_type: 'refresh_token', refresh_token: user.tokens.refresh_token })
      .timeout(ANSWER_WITHIN_MS);
    expect(next.status).toBe(200);
  });

  test('then logout answers 204 in time and the token is refused', async () => {
    const { token } = await signedInUser(t.app);
    await request(t.app)
      .post('/api/v1/auth/logout')
      .set('Authorization', `Bearer ${token}`)
      .timeout(ANSWER_WITHIN_MS)
      .expect(204);
    await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${token}`)
      .timeout(ANSWER_WITHIN_MS)
      .expect(401);
  });

  test('then readiness says 503', async () => {
    const res = await request(t.healthApp).get('/health/ready').timeout(ANSWER_WITHIN_MS);
    expect(res.status).toBe(503);
  });
});
