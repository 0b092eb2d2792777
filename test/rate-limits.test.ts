import { afterAll, afterEach, describe, expect, test } from '@jest/globals';
import type { Express } from 'express';
import request from 'supertest';
import { problemsOf } from './support/config';
import {
  GOOD_PASSWORD,
  register,
  startTestApp,
  uniqueEmail,
  type TestApp,
} from './support/test-app';

const TOKEN = '/api/v1/auth/token';
const REGISTER = '/api/v1/auth/register';

/** Apps started by a test; closed after it. */
const started: TestApp[] = [];
async function app(env: Record<string, string>, opts: { database?: string } = {}) {
  const a = await startTestApp(env, opts);
  started.push(a);
  return a;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((a) => a.close()));
});
afterAll(async () => {
  await Promise.all(started.splice(0).map((a) => a.close()));
});

function attempt(a: Express, email: string, password: string, forwardedFor?: string) {
  const req = request(a).post(TOKEN).send({ email, password });
  return forwardedFor ? req.set('X-Forwarded-For', forwardedFor) : req;
}

function signUp(a: Express, forwardedFor?: string) {
  const req = request(a).post(REGISTER).send({ email: uniqueEmail(), password: GOOD_PASSWORD });
  return forwardedFor ? req.set('X-Forwarded-For', forwardedFor) : req;
}

async function rejections(t: TestApp, limiter: string): Promise<number> {
  const m = await t.deps.metrics.rateLimitRejections.get();
  return m.values.find((v) => v.labels.limiter === limiter)?.value ?? 0;
}

function expectRateLimited(res: request.Response, maxSeconds: number) {
  expect(res.status).toBe(429);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body.code).toBe('rate_limited');
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxSeconds);
}

describe('failed logins', () => {
  test('when failed logins for one address and email reach the limit, then 429 with Retry-After, even with the right password', async () => {
    const t = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: '3' });
    const { email } = await register(t.app);
    for (let i = 0; i < 3; i++) await attempt(t.app, email, 'wrong-password').expect(401);
    const res = await attempt(t.app, email, GOOD_PASSWORD);
    expectRateLimited(res, 60);
    expect(await rejections(t, 'login')).toBe(1);
  });

  test('when one email is locked out, then another email from the same address can still log in', async () => {
    const t = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: '2' });
    const { email } = await register(t.app);
    const other = await register(t.app);
    for (let i = 0; i < 2; i++) await attempt(t.app, email, 'wrong-password').expect(401);
    await attempt(t.app, email, GOOD_PASSWORD).expect(429);
    await attempt(t.app, other.email, GOOD_PASSWORD).expect(200);
  });

  test('when a login succeeds, then the failures counted for that address and email start again', async () => {
    const t = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: '3' });
    const { email } = await register(t.app);
    for (let i = 0; i < 2; i++) await attempt(t.app, email, 'wrong-password').expect(401);
    await attempt(t.app, email, GOOD_PASSWORD).expect(200);
    for (let i = 0; i < 3; i++) await attempt(t.app, email, 'wrong-password').expect(401);
    await attempt(t.app, email, GOOD_PASSWORD).expect(429);
  });

  test('when failures for an unknown email reach the limit, then 429 as for a real account', async () => {
    const t = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: '2' });
    const ghost = uniqueEmail('ghost');
    for (let i = 0; i < 2; i++) await attempt(t.app, ghost, 'wrong-password').expect(401);
    expectRateLimited(await attempt(t.app, ghost, 'wrong-password'), 60);
  });

  test('when a login is refused because password hashing is at capacity, then it does not count as a failure', async () => {
    const t = await app({
      RATE_LIMIT_LOGIN_PER_MINUTE: '2',
      HASH_CONCURRENCY: '1',
      HASH_QUEUE_LIMIT: '0',
    });
    const { email } = await register(t.app);
    let release!: () => void;
    const held = t.deps.passwords.capacity.run(() => new Promise<void>((r) => (release = r)));
    for (let i = 0; i < 3; i++) {
      const res = await attempt(t.app, email, 'wrong-password').expect(503);
      expect(res.body.code).toBe('hash_capacity_exceeded');
    }
    release();
    await held;
    for (let i = 0; i < 2; i++) await attempt(t.app, email, 'wrong-password').expect(401);
    await attempt(t.app, email, GOOD_PASSWORD).expect(429);
  });

  test('when two instances share Redis, then failures counted on one are seen by the other', async () => {
    const first = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: '2' });
    const second = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: '2' }, { database: first.dbName });
    const { email } = await register(first.app);
    await attempt(first.app, email, 'wrong-password').expect(401);
    await attempt(second.app, email, 'wrong-password').expect(401);
    await attempt(first.app, email, GOOD_PASSWORD).expect(429);
  });

  test('when Redis is unreachable, then the in-process limiter still enforces the login limit', async () => {
    const t = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: '2', REDIS_URL: 'redis://127.0.0.1:1/0' });
    const { email } = await register(t.app);
    for (let i = 0; i < 2; i++) await attempt(t.app, email, 'wrong-password').expect(401);
    expectRateLimited(await attempt(t.app, email, GOOD_PASSWORD), 60);
  });

  test('when wrong current passwords are tried through a password change, then they count as failed logins', async () => {
    const t = await app({ RATE_LIMIT_LOGIN_PER_MINUTE: '2' });
    const { email } = await register(t.app);
    const { access_token } = (await attempt(t.app, email, GOOD_PASSWORD).expect(200)).body;
    const change = (current: string) =>
      request(t.app)
        .post('/api/v1/auth/password')
        .set('Authorization', `Bearer ${access_token}`)
        .send({ current_password: current, new_password: 'another-good-password' });
    for (let i = 0; i < 2; i++) await change('wrong-password').expect(403);
    expectRateLimited(await change(GOOD_PASSWORD), 60);
  });
});

/** Resolves once `cond` holds; fails after a bounded wait. */
async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function hashesCounted(t: TestApp): Promise<number> {
  const m = await t.deps.metrics.passwordHashDuration.get();
  return m.values
    .filter((v) => v.metricName?.endsWith('_count'))
    .reduce((sum, v) => sum + v.value, 0);
}

describe('failed logins per client address across emails', () => {
  test('when failed logins from one address reach RATE_LIMIT_LOGIN_IP_PER_MINUTE, then 429 before any hashing, whatever the email', async () => {
    const t = await app({ TRUST_PROXY: 'loopback', RATE_LIMIT_LOGIN_IP_PER_MINUTE: '3' });
    const { email } = await register(t.app);
    for (let i = 0; i < 3; i++) {
      await attempt(t.app, uniqueEmail('spray'), 'wrong-password', '198.51.100.9').expect(401);
    }
    const before = await hashesCounted(t);
    expectRateLimited(await attempt(t.app, email, GOOD_PASSWORD, '198.51.100.9'), 60);
    expect(await hashesCounted(t)).toBe(before);
    expect(await rejections(t, 'login_ip')).toBe(1);
    await attempt(t.app, email, GOOD_PASSWORD, '198.51.100.10').expect(200);
  });

  test('when logins from one address succeed, then they do not count against its budget', async () => {
    const t = await app({ TRUST_PROXY: 'loopback', RATE_LIMIT_LOGIN_IP_PER_MINUTE: '2' });
    const { email } = await register(t.app);
    await attempt(t.app, uniqueEmail('typo'), 'wrong-password', '198.51.100.11').expect(401);
    for (let i = 0; i < 3; i++)
      await attempt(t.app, email, GOOD_PASSWORD, '198.51.100.11').expect(200);
    await attempt(t.app, uniqueEmail('typo'), 'wrong-password', '198.51.100.11').expect(401);
    await attempt(t.app, email, GOOD_PASSWORD, '198.51.100.11').expect(429);
  });

  test('when RATE_LIMIT_LOGIN_IP_PER_MINUTE is not a positive integer, then start-up names it', () => {
    expect(problemsOf({ RATE_LIMIT_LOGIN_IP_PER_MINUTE: '0' })).toEqual([
      expect.stringContaining('RATE_LIMIT_LOGIN_IP_PER_MINUTE'),
    ]);
  });
});

describe('one client flooding logins', () => {
  test("when one client floods logins with fresh emails while hashing is saturated, then another client's correct login succeeds and the flooder ends with 429", async () => {
    const t = await app({
      TRUST_PROXY: 'loopback',
      HASH_CONCURRENCY: '1',
      HASH_QUEUE_LIMIT: '4',
      RATE_LIMIT_LOGIN_IP_PER_MINUTE: '6',
    });
    const { email } = await register(t.app, uniqueEmail('victim'));
    const gate = t.deps.passwords.capacity;
    // Hashing is busy: every login from now on waits for a slot or is refused.
    let release!: () => void;
    const held = gate.run(() => new Promise<void>((r) => (release = r)));
    const FLOODER = '198.51.100.66';
    let settled = 0;
    const flood = Array.from({ length: 12 }, () =>
      attempt(t.app, uniqueEmail('flood'), 'wrong-password', FLOODER).then((r) => {
        settled++;
        return r;
      }),
    );
    // The flooder holds the whole queue; the rest of its requests were refused.
    await until(() => gate.queued === 4 && settled === 8, 'the flood to fill the queue');
    let victimDone = false;
    const victim = attempt(t.app, email, GOOD_PASSWORD, '203.0.113.20').then((r) => {
      victimDone = true;
      return r;
    });
    // Either the victim is refused at once, or it takes a flooder's place in the queue.
    await until(() => victimDone || settled === 9, 'the victim to be queued or refused');
    release();
    await held;
    const [victimRes, floodRes] = await Promise.all([victim, Promise.all(flood)]);
    expect(victimRes.status).toBe(200);
    for (const r of floodRes) expect([401, 429, 503]).toContain(r.status);
    // Once its failures reach the budget, the flooder gets 429 before any hashing.
    const statuses: number[] = [];
    for (let i = 0; i < 7 && statuses.at(-1) !== 429; i++) {
      const r = await attempt(t.app, uniqueEmail('flood'), 'wrong-password', FLOODER);
      statuses.push(r.status);
      if (r.status === 429) expectRateLimited(r, 60);
    }
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.slice(0, -1).every((s) => s === 401)).toBe(true);
    await attempt(t.app, email, GOOD_PASSWORD, '203.0.113.20').expect(200);
  });
});

describe('registrations', () => {
  test('when registrations from one address reach the hourly limit, then 429 with Retry-After', async () => {
    const t = await app({ RATE_LIMIT_REGISTER_PER_HOUR: '2' });
    await signUp(t.app).expect(201);
    await signUp(t.app).expect(201);
    expectRateLimited(await signUp(t.app), 3600);
    expect(await rejections(t, 'register')).toBe(1);
  });

  test('when RATE_LIMIT_ENABLED=false, then no limit applies', async () => {
    const t = await app({ RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_REGISTER_PER_HOUR: '1' });
    await signUp(t.app).expect(201);
    await signUp(t.app).expect(201);
  });
});

describe('client address', () => {
  test('when TRUST_PROXY=loopback, then X-Forwarded-For names the client and each client has its own budget', async () => {
    const t = await app({ TRUST_PROXY: 'loopback', RATE_LIMIT_REGISTER_PER_HOUR: '1' });
    await signUp(t.app, '203.0.113.7').expect(201);
    await signUp(t.app, '203.0.113.7').expect(429);
    await signUp(t.app, '203.0.113.8').expect(201);
  });

  test('when TRUST_PROXY is unset, then X-Forwarded-For is ignored and the socket address counts', async () => {
    const t = await app({ RATE_LIMIT_REGISTER_PER_HOUR: '1' });
    await signUp(t.app, '203.0.113.7').expect(201);
    await signUp(t.app, '203.0.113.8').expect(429);
  });

  test('when TRUST_PROXY=loopback, then failed logins are counted per forwarded client', async () => {
    const t = await app({ TRUST_PROXY: 'loopback', RATE_LIMIT_LOGIN_PER_MINUTE: '1' });
    const { email } = await register(t.app);
    await attempt(t.app, email, 'wrong-password', '198.51.100.1').expect(401);
    await attempt(t.app, email, GOOD_PASSWORD, '198.51.100.1').expect(429);
    await attempt(t.app, email, GOOD_PASSWORD, '198.51.100.2').expect(200);
  });
});

describe('password hashing capacity', () => {
  test('when logins exceed HASH_CONCURRENCY and its queue, then some get 503 with Retry-After while /me still answers', async () => {
    const t = await app({
      HASH_CONCURRENCY: '1',
      HASH_QUEUE_LIMIT: '1',
      BCRYPT_COST: '10',
      RATE_LIMIT_ENABLED: 'false',
    });
    const { email } = await register(t.app);
    const { access_token } = (await attempt(t.app, email, GOOD_PASSWORD).expect(200)).body;
    const logins = Array.from({ length: 10 }, () =>
      attempt(t.app, email, GOOD_PASSWORD).then((r) => r),
    );
    const meWhileBusy = request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${access_token}`)
      .then((r) => r);
    const [results, meRes] = await Promise.all([Promise.all(logins), meWhileBusy]);
    expect(meRes.status).toBe(200);
    const busy = results.filter((r) => r.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    expect(results.every((r) => r.status === 200 || r.status === 503)).toBe(true);
    for (const r of busy) {
      expect(r.body.code).toBe('hash_capacity_exceeded');
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
  });
});
