import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Client } from 'pg';
import request from 'supertest';
import { ensureBuilt } from './support/build';
import {
  requestTokenOf,
  startDiscogsStandIn,
  type DiscogsStandIn,
} from './support/discogs-stand-in';
import { until } from './support/load';
import { startServerProcess, type RunningProcess } from './support/process';
import { startPrivateRedis, type PrivateRedis } from './support/redis-server';
import { TEST_PG_URL, TEST_REDIS_URL, databaseUrl } from './support/services';
import {
  GOOD_PASSWORD,
  signedInAdmin,
  signedInUser,
  startTestApp,
  uniqueEmail,
  type TestApp,
} from './support/test-app';

/**
 * Rules that hold on every replica: real processes starting together on an empty database,
 * state shared between two app instances on one database and one Redis, and a replica killed
 * mid-burst that leaves no half-written account behind.
 */
jest.setTimeout(180_000);

const MIGRATION_LOCK_KEY = 72_033_001;
const processes: RunningProcess[] = [];
const dataDirs: string[] = [];
const databases: string[] = [];

async function admin<T>(fn: (c: Client) => Promise<T>, url = TEST_PG_URL): Promise<T> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function emptyDatabase(): Promise<string> {
  const name = `auth_rep_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  databases.push(name);
  return name;
}

function env(dbName: string): Record<string, string> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-replica-'));
  dataDirs.push(dataDir);
  return {
    DATABASE_URL: databaseUrl(dbName),
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET_KEY: 'replica-test-secret-that-is-at-least-32-bytes',
    ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    BCRYPT_COST: '4',
    RATE_LIMIT_REGISTER_PER_HOUR: '100000',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
  };
}

async function start(e: Record<string, string>): Promise<RunningProcess> {
  const p = await startServerProcess(e);
  processes.push(p);
  return p;
}

async function ready(p: RunningProcess): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${p.healthPort}/health/ready`)).status === 200;
  } catch {
    return false;
  }
}

function logLines(p: RunningProcess): { msg: string; applied?: string[] }[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; applied?: string[] });
}

beforeAll(async () => {
  await ensureBuilt();
}, 180_000);

afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) await p.stop('SIGKILL');
  }
});

afterAll(async () => {
  for (const name of databases) {
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  }
  for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('replicas starting together', () => {
  test('when two processes start on one empty database, then the advisory lock serialises their migrations, both become ready, and each migration is applied once', async () => {
    const dbName = await emptyDatabase();
    const migrationFiles = fs
      .readdirSync(path.join(__dirname, '..', 'migrations'))
      .filter((f) => /^\d{14}_/.test(f))
      .sort();

    // Hold the migration lock as a third replica would, so both processes queue on it.
    const holder = new Client({ connectionString: databaseUrl(dbName) });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const starting = [start(env(dbName)), start(env(dbName))];
    const waiting = async () => {
      const r = await holder.query(
        `SELECT count(*)::int AS n FROM pg_locks
         WHERE locktype = 'advisory' AND objid = $1 AND NOT granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [MIGRATION_LOCK_KEY],
      );
      return (r.rows[0] as { n: number }).n === 2;
    };
    await until(waiting, 60_000);
    // Nobody migrated while the lock was held.
    const tables = await holder.query(
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'users'`,
    );
    expect((tables.rows[0] as { n: number }).n).toBe(0);
    await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    await holder.end();

    const [a, b] = await Promise.all(starting);
    await until(async () => (await ready(a!)) && (await ready(b!)), 20_000);

    const rows = await admin(
      async (c) =>
        (
          await c.query(
            'SELECT name, count(*)::int AS n FROM schema_migrations GROUP BY name ORDER BY name',
          )
        ).rows as { name: string; n: number }[],
      databaseUrl(dbName),
    );
    expect(rows.map((r) => r.name)).toEqual(migrationFiles);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    // One replica applied everything; the other found the schema up to date.
    const applied = [a!, b!]
      .map((p) => logLines(p).find((l) => l.applied !== undefined)?.applied ?? null)
      .sort((x, y) => (x?.length ?? 0) - (y?.length ?? 0));
    expect(applied).toEqual([[], migrationFiles]);
  });
});

describe('two app instances on one database and one Redis', () => {
  let a: TestApp;
  let b: TestApp;
  let discogs: DiscogsStandIn;
  beforeAll(async () => {
    discogs = await startDiscogsStandIn();
    const e = {
      RATE_LIMIT_LOGIN_PER_MINUTE: '3',
      // Replicas of one deployment share their keys.
      ENCRYPTION_MASTER_KEY: randomBytes(32).toString('hex'),
      DISCOGS_API_URL: discogs.url,
      DISCOGS_AUTHORIZE_URL: discogs.authorizeUrl,
    };
    a = await startTestApp(e);
    b = await startTestApp(e, { database: a.dbName });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await discogs?.close();
  });

  test('when a Discogs connection is started on one replica, then it is completed on the other, and the state cannot be used again on either', async () => {
    const admin = await signedInAdmin(a);
    await request(a.app)
      .put('/api/v1/admin/config/discogs')
      .set('Authorization', `Bearer ${admin.token}`)
      .send({ consumer_key: discogs.consumerKey, consumer_secret: discogs.consumerSecret })
      .expect(200);
    const u = await signedInUser(a.app);
    const started = await request(a.app)
      .post('/api/v1/oauth/discogs/authorize')
      .set('Authorization', `Bearer ${u.token}`)
      .expect(200);
    const { verifier } = discogs.approve(requestTokenOf(started.body.authorize_url as string));
    const body = { state: started.body.state as string, oauth_verifier: verifier };
    const verified = await request(b.app)
      .post('/api/v1/oauth/discogs/verify')
      .set('Authorization', `Bearer ${u.token}`)
      .send(body)
      .expect(200);
    expect(verified.body.connected).toBe(true);
    const status = await request(a.app)
      .get('/api/v1/oauth/discogs')
      .set('Authorization', `Bearer ${u.token}`)
      .expect(200);
    expect(status.body).toMatchObject({ connected: true });
    for (const t of [a, b]) {
      const again = await request(t.app)
        .post('/api/v1/oauth/discogs/verify')
        .set('Authorization', `Bearer ${u.token}`)
        .send(body);
      expect(again.status).toBe(400);
    }
  });

  test('when a user logs out on one replica, then the other refuses the access token and the refresh token at once', async () => {
    const u = await signedInUser(a.app);
    await request(b.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${u.token}`)
      .expect(200);
    await request(a.app)
      .post('/api/v1/auth/logout')
      .set('Authorization', `Bearer ${u.token}`)
      .send({ refresh_token: u.tokens.refresh_token })
      .expect(204);
    await request(b.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${u.token}`)
      .expect(401);
    const refresh = await request(b.app)
      .post('/api/v1/auth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: u.tokens.refresh_token! });
    expect(refresh.status).toBe(401);
    expect(refresh.body.code).toBe('invalid_refresh_token');
  });

  test("when a session is ended on one replica, then its access token and refresh token are refused on the other at once, and the caller's own session still works there", async () => {
    const first = await signedInUser(a.app);
    const second = await request(a.app)
      .post('/api/v1/auth/token')
      .send({ email: first.email, password: first.password })
      .expect(200);
    await request(b.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${second.body.access_token as string}`)
      .expect(200);
    const list = await request(a.app)
      .get('/api/v1/auth/sessions')
      .set('Authorization', `Bearer ${first.token}`)
      .expect(200);
    const other = (list.body.sessions as { id: string; current: boolean }[]).find(
      (x) => !x.current,
    )!;
    await request(a.app)
      .delete(`/api/v1/auth/sessions/${other.id}`)
      .set('Authorization', `Bearer ${first.token}`)
      .expect(204);
    await request(b.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${second.body.access_token as string}`)
      .expect(401);
    await request(b.app)
      .post('/api/v1/auth/token')
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: second.body.refresh_token as string })
      .expect(401);
    await request(b.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${first.token}`)
      .expect(200);
  });

  test('when failed logins reach the limit on one replica, then the next attempt on the other gets 429 with Retry-After', async () => {
    const email = uniqueEmail('replica-limit');
    await request(a.app)
      .post('/api/v1/auth/register')
      .send({ email, password: GOOD_PASSWORD })
      .expect(201);
    for (let i = 0; i < 3; i++) {
      await request(a.app)
        .post('/api/v1/auth/token')
        .send({ email, password: 'wrong-password-123' })
        .expect(401);
    }
    const res = await request(b.app)
      .post('/api/v1/auth/token')
      .send({ email, password: 'wrong-password-123' });
    expect(res.status).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });
});

describe('two app instances when Redis loses its data', () => {
  let redis: PrivateRedis;
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    const e = { REDIS_URL: redis.url, REFRESH_TOKEN_REUSE_GRACE_SECONDS: '0' };
    a = await startTestApp(e);
    b = await startTestApp(e, { database: a.dbName });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await redis?.stop();
  });

  const me = (t: TestApp, token: string) =>
    request(t.app).get('/api/v1/auth/me').set('Authorization', `Bearer ${token}`);
  const readyAgain = (t: TestApp) =>
    until(async () => (await request(t.healthApp).get('/health/ready')).status === 200, 10_000);

  test('when Redis restarts empty after a logout and a reuse detection, then neither replica accepts the revoked tokens again', async () => {
    const loggedOut = await signedInUser(a.app);
    await request(a.app)
      .post('/api/v1/auth/logout')
      .set('Authorization', `Bearer ${loggedOut.token}`)
      .expect(204);

    // Reuse detection: the first refresh token is replayed after rotation, the family is revoked.
    const stolen = await signedInUser(a.app);
    const refresh = (t: TestApp, token: string) =>
      request(t.app)
        .post('/api/v1/auth/token')
        .type('form')
        .send({ grant_type: 'refresh_token', refresh_token: token });
    const rotated = await refresh(a, stolen.tokens.refresh_token!).expect(200);
    await refresh(b, stolen.tokens.refresh_token!).expect(401);
    const familyToken = rotated.body.access_token as string;

    for (const t of [a, b]) {
      await me(t, loggedOut.token).expect(401);
      await me(t, familyToken).expect(401);
    }

    await redis.restart();
    await readyAgain(a);
    await readyAgain(b);

    for (const t of [a, b]) {
      await me(t, loggedOut.token).expect(401);
      await me(t, familyToken).expect(401);
    }
    // Tokens nobody revoked still work: the check is not failing closed for everyone.
    const fresh = await signedInUser(b.app);
    await me(a, fresh.token).expect(200);
  });
});

describe('a replica killed during a burst of registrations', () => {
  test('when SIGKILL lands mid-burst and the service restarts, then every user row is complete and every acknowledged registration logs in', async () => {
    const dbName = await emptyDatabase();
    const e = env(dbName);
    let p = await start(e);
    const burst = Array.from({ length: 60 }, (_, i) => ({
      email: `burst-${i}-${randomBytes(3).toString('hex')}@example.com`,
      password: `burst-password-${i}`,
    }));
    const outcomes = new Map<string, number | 'no answer'>();
    let acknowledged = 0;
    const sends = burst.map(async (u) => {
      try {
        const res = await fetch(`http://127.0.0.1:${p.apiPort}/api/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(u),
          signal: AbortSignal.timeout(10_000),
        });
        outcomes.set(u.email, res.status);
        if (res.status === 201) acknowledged++;
      } catch {
        outcomes.set(u.email, 'no answer');
      }
    });
    // Kill once part of the burst is acknowledged and the rest is in flight.
    await until(async () => acknowledged >= 10, 30_000, 5);
    const killed = await p.stop('SIGKILL');
    expect(killed).toBeNull();
    await Promise.all(sends);

    p = await start(e);
    await until(() => ready(p), 20_000);

    const rows = await admin(
      async (c) =>
        (
          await c.query(
            `SELECT email, hashed_password, is_active, is_admin, created_at, updated_at FROM users`,
          )
        ).rows as {
          email: string;
          hashed_password: string;
          is_active: boolean;
          is_admin: boolean;
          created_at: Date;
          updated_at: Date;
        }[],
      databaseUrl(dbName),
    );
    const byEmail = new Map(rows.map((r) => [r.email, r]));
    for (const r of rows) {
      expect(r.hashed_password).toMatch(/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/);
      expect(r.is_active).toBe(true);
      expect(r.is_admin).toBe(false);
      expect(r.created_at).toBeInstanceOf(Date);
      expect(r.updated_at).toBeInstanceOf(Date);
    }
    const acked = burst.filter((u) => outcomes.get(u.email) === 201);
    expect(acked.length).toBeGreaterThanOrEqual(10);
    // Acknowledged ones exist and log in; the others exist completely or not at all.
    for (const u of burst) {
      const row = byEmail.get(u.email);
      if (outcomes.get(u.email) === 201) expect(row).toBeDefined();
      if (!row) continue;
      const res = await fetch(`http://127.0.0.1:${p.apiPort}/api/v1/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(u),
      });
      expect({ email: u.email, status: res.status }).toEqual({ email: u.email, status: 200 });
    }
    const statuses: Record<string, number> = {};
    for (const s of outcomes.values()) statuses[String(s)] = (statuses[String(s)] ?? 0) + 1;
    console.log(
      `SIGKILL mid-burst: ${burst.length} registrations sent, answers ${JSON.stringify(statuses)}; ` +
        `${rows.length} user rows after restart, all complete, every acknowledged one logs in`,
    );
  });
});
