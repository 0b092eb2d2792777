import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, test } from '@jest/globals';
import { Client } from 'pg';
import { startTestApp, type TestApp } from './support/test-app';
import { until } from './support/load';
import { scrapeMetrics } from './support/metrics';

/**
 * The periodic clean-up of rows past their lifetime: what it deletes and keeps, its metric,
 * its timer and stop, and two replicas on one database deleting each row once.
 */
// Two replicas on one database; closed in reverse order (the first owns the database).
let a: TestApp;
let b: TestApp;
let userId: string;

beforeAll(async () => {
  // The timer is off here; each test runs passes itself, except the one testing the timer.
  a = await startTestApp({ CLEANUP_INTERVAL_SECONDS: '0' });
  b = await startTestApp({ CLEANUP_INTERVAL_SECONDS: '0' }, { database: a.dbName });
  const [u] = await a.sql(
    `INSERT INTO users (email, hashed_password) VALUES ($1, 'x') RETURNING id`,
    [`cleanup-${randomBytes(4).toString('hex')}@example.com`],
  );
  userId = u!.id as string;
});
afterAll(async () => {
  await b.close();
  await a.close();
});
beforeEach(async () => {
  await a.sql('DELETE FROM sessions'); // their refresh tokens go with them
});

/** A session last used `lastUsedAgo` ago, ended `endedAgo` ago (or live); returns its id. */
async function session(lastUsedAgo = '0 seconds', endedAgo: string | null = null): Promise<string> {
  const [row] = await a.sql(
    `INSERT INTO sessions (user_id, created_at, last_used_at, ended_at, end_reason)
     VALUES ($1, now() - $2::interval, now() - $2::interval,
             now() - $3::interval, CASE WHEN $3::interval IS NULL THEN NULL ELSE 'logout' END)
     RETURNING id`,
    [userId, lastUsedAgo, endedAgo],
  );
  return row!.id as string;
}

/**
 * Inserts refresh tokens that expired (or expire) at now() + the given interval, into the
 * given session or into a live one used just now.
 */
async function tokens(count: number, expiresIn: string, sessionId?: string): Promise<void> {
  const family = sessionId ?? (await session());
  await a.sql(
    `INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)
     SELECT $1, $4, md5(random()::text) || md5(random()::text), now() + $2::interval
     FROM generate_series(1, $3)`,
    [userId, expiresIn, count, family],
  );
}

async function remaining(): Promise<{ expired: number; kept: number }> {
  const [r] = await a.sql(
    `SELECT count(*) FILTER (WHERE expires_at < now() - interval '1 day')::int AS expired,
            count(*) FILTER (WHERE expires_at >= now() - interval '1 day')::int AS kept
     FROM refresh_tokens`,
  );
  return r as { expired: number; kept: number };
}

async function metric(t: TestApp, series: string): Promise<number> {
  return (await scrapeMetrics(t.healthApp))(series);
}

const DELETED = 'auth_expired_rows_deleted_total{table="refresh_tokens"}';

test('when refresh tokens expired more than a day ago, then a pass deletes exactly those, keeps the rest, and counts them in the metric', async () => {
  await tokens(7, '-3 days');
  await tokens(3, '-2 hours'); // expired, but within the day access tokens may still live
  await tokens(4, '14 days');
  const before = await metric(a, DELETED);

  const result = await a.deps.expiryCleanup.runOnce();

  expect(result).toEqual({
    skipped: false,
    deleted: expect.objectContaining({ refresh_tokens: 7, sessions: 0 }),
  });
  expect(await remaining()).toEqual({ expired: 0, kept: 7 });
  expect((await metric(a, DELETED)) - before).toBe(7);
  expect(await metric(a, 'auth_expiry_cleanup_passes_total{outcome="done"}')).toBeGreaterThan(0);
});

test('when sessions ended a day ago or outlived every refresh token, then a pass deletes them with their tokens and keeps the others', async () => {
  const endedLongAgo = await session('3 days', '2 days');
  await tokens(2, '10 days', endedLongAgo); // revoked with the session, not expired
  const endedRecently = await session('3 hours', '2 hours');
  const outlived = await session('20 days');
  await tokens(1, '-3 days', outlived);
  const usedRecently = await session('2 days');
  await tokens(1, '12 days', usedRecently);
  const justStarted = await session();
  const SESSIONS = 'auth_expired_rows_deleted_total{table="sessions"}';
  const before = await metric(a, SESSIONS);

  const result = await a.deps.expiryCleanup.runOnce();

  expect(result).toMatchObject({ skipped: false, deleted: { refresh_tokens: 1, sessions: 2 } });
  const left = (await a.sql('SELECT id FROM sessions ORDER BY id')).map((r) => r.id);
  expect(left).toEqual([endedRecently, usedRecently, justStarted].sort());
  const tokensLeft = await a.sql('SELECT family_id FROM refresh_tokens');
  expect(tokensLeft.map((r) => r.family_id)).toEqual([usedRecently]);
  expect((await metric(a, SESSIONS)) - before).toBe(2);
});

test('when reset and verification tokens, second-step challenges and app tokens have expired, then a pass deletes them and keeps the live ones', async () => {
  await a.sql(
    `INSERT INTO account_tokens (user_id, purpose, token_hash, expires_at)
     VALUES ($1, 'password_reset', md5('r1') || md5('r1'), now() - interval '1 minute'),
            ($1, 'email_verify', md5('v1') || md5('v1'), now() - interval '3 days'),
            ($1, 'email_verify', md5('v2') || md5('v2'), now() + interval '1 hour')`,
    [userId],
  );
  await a.sql(
    `INSERT INTO mfa_challenges (user_id, token_hash, expires_at)
     VALUES ($1, md5('m1') || md5('m1'), now() - interval '1 minute'),
            ($1, md5('m2') || md5('m2'), now() + interval '5 minutes')`,
    [userId],
  );
  await a.sql(
    `INSERT INTO app_tokens (user_id, name, token_hash, created_at, expires_at)
     VALUES ($1, 'old', md5('a1') || md5('a1'), now() - interval '40 days', now() - interval '10 days'),
            ($1, 'live', md5('a2') || md5('a2'), now(), now() + interval '30 days'),
            ($1, 'forever', md5('a3') || md5('a3'), now(), NULL)`,
    [userId],
  );

  const result = await a.deps.expiryCleanup.runOnce();

  expect(result).toMatchObject({
    skipped: false,
    deleted: { account_tokens: 2, mfa_challenges: 1, app_tokens: 1 },
  });
  const count = async (table: string) =>
    (await a.sql(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
  expect(await count('account_tokens')).toBe(1);
  expect(await count('mfa_challenges')).toBe(1);
  expect((await a.sql('SELECT name FROM app_tokens ORDER BY name')).map((r) => r.name)).toEqual([
    'forever',
    'live',
  ]);
  await a.sql('DELETE FROM account_tokens; DELETE FROM mfa_challenges; DELETE FROM app_tokens');
});

test('when more rows expired than one batch holds, then one pass deletes them all in batches', async () => {
  const { ExpiryCleanup } = await import('../src/maintenance/expiry-cleanup');
  await tokens(25, '-3 days');
  const small = new ExpiryCleanup({
    sequelize: a.deps.db.sequelize,
    metrics: a.deps.metrics,
    logger: a.deps.logger,
    intervalSeconds: 0,
    batchSize: 10,
  });
  expect(await small.runOnce()).toMatchObject({
    skipped: false,
    deleted: { refresh_tokens: 25, sessions: 0 },
  });
  expect(await remaining()).toEqual({ expired: 0, kept: 0 });
});

test('when another replica holds the clean-up lock, then a pass skips without deleting, and runs once the lock is free', async () => {
  await tokens(5, '-3 days');
  const other = new Client({ connectionString: a.dbUrl });
  await other.connect();
  try {
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock(72033021)');
    expect(await a.deps.expiryCleanup.runOnce()).toEqual({ skipped: true });
    expect(await remaining()).toEqual({ expired: 5, kept: 0 });
    await other.query('COMMIT');
  } finally {
    await other.end();
  }
  expect(await a.deps.expiryCleanup.runOnce()).toMatchObject({
    skipped: false,
    deleted: { refresh_tokens: 5, sessions: 0 },
  });
});

test('when two replicas on one database clean at the same moment, then every expired row is deleted exactly once', async () => {
  const { ExpiryCleanup } = await import('../src/maintenance/expiry-cleanup');
  await tokens(40, '-3 days');
  // Two jobs per replica, small batches, all at once: the passes interleave batch by batch.
  const jobs = [a, b, a, b].map(
    (t) =>
      new ExpiryCleanup({
        sequelize: t.deps.db.sequelize,
        metrics: t.deps.metrics,
        logger: t.deps.logger,
        intervalSeconds: 0,
        batchSize: 5,
      }),
  );
  const results = await Promise.all(jobs.map((j) => j.runOnce()));
  const deleted = results.map((r) => (r.skipped ? 0 : r.deleted.refresh_tokens!));
  expect(deleted.reduce((x, y) => x + y, 0)).toBe(40);
  expect(await remaining()).toEqual({ expired: 0, kept: 0 });
});

test('when the interval elapses, then the job runs by itself; when stopped, then nothing is scheduled any more', async () => {
  const t = await startTestApp({ CLEANUP_INTERVAL_SECONDS: '1' }, { database: a.dbName });
  try {
    await tokens(3, '-3 days');
    t.deps.expiryCleanup.start();
    expect(t.deps.expiryCleanup.scheduled).toBe(true);
    await until(async () => (await remaining()).expired === 0, 5_000);
    expect(await metric(t, DELETED)).toBe(3);
  } finally {
    await t.close();
  }
  expect(t.deps.expiryCleanup.scheduled).toBe(false);
  // A stopped job does not start again.
  t.deps.expiryCleanup.start();
  expect(t.deps.expiryCleanup.scheduled).toBe(false);
});
