import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import { Client } from 'pg';
import { serve, steadyLoad, until, type Sample } from './load';
import { TEST_PG_URL, TEST_REDIS_URL, databaseUrl } from './services';
import { startTcpProxy, type TcpProxy } from './tcp-proxy';
import { startTestApp, type TestApp } from './test-app';

/** The request deadline the contract promises: every request answers within this. */
export const ANSWER_WITHIN_MS = 5_000;
/** After the dependency comes back, readiness and requests recover within this. */
export const RECOVER_WITHIN_MS = 5_000;

export interface FaultyStack {
  t: TestApp;
  pg: TcpProxy;
  redis: TcpProxy;
  apiUrl: string;
  healthUrl: string;
  close(): Promise<void>;
}

/** The app (in process, on real sockets) with PostgreSQL and Redis each behind a TCP proxy. */
export async function startFaultyStack(): Promise<FaultyStack> {
  const pgTarget = new URL(TEST_PG_URL);
  const redisTarget = new URL(TEST_REDIS_URL);
  const pg = await startTcpProxy({ host: pgTarget.hostname, port: Number(pgTarget.port || 5432) });
  const redis = await startTcpProxy({
    host: redisTarget.hostname,
    port: Number(redisTarget.port || 6379),
  });
  const dbName = `auth_fault_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName} TEMPLATE ${process.env.TEST_TEMPLATE_DB}`);
  await admin.end();
  const viaPg = new URL(databaseUrl(dbName));
  viaPg.host = `127.0.0.1:${pg.port}`;
  const viaRedis = new URL(TEST_REDIS_URL);
  viaRedis.host = `127.0.0.1:${redis.port}`;
  const t = await startTestApp(
    { DATABASE_URL: viaPg.toString(), REDIS_URL: viaRedis.toString() },
    { database: dbName },
  );
  const api = await serve(t.app);
  const health = await serve(t.healthApp);
  return {
    t,
    pg,
    redis,
    apiUrl: api.url,
    healthUrl: health.url,
    async close() {
      await pg.restore();
      await redis.restore();
      await api.close();
      await health.close();
      await t.close();
      await pg.close();
      await redis.close();
      const a = new Client({ connectionString: TEST_PG_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await a.end();
    },
  };
}

export interface ScenarioReport {
  samples: Sample[];
  /** Requests that started while the dependency was faulty. */
  duringFault: Sample[];
  /** Longest answer of any request in the run (ms). */
  longestMs: number;
  /** From the fault to readiness answering 503. */
  readinessDownMs: number;
  /** From the restore to readiness answering 200 again. */
  readinessBackMs: number;
  /** From the restore to the end of the first full register/login/me cycle that succeeded. */
  recoveryMs: number;
  /** Requests that started after recovery and did not succeed. */
  failedAfterRecovery: Sample[];
  statuses: Record<string, number>;
  acknowledged: number;
  /** Acknowledged registrations whose login afterwards did not give 200. */
  lostRegistrations: string[];
}

async function status(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) })).status;
  } catch {
    return 0;
  }
}

/**
 * Steady register/login/me load; the dependency fails (refuses or black-holes) until every
 * worker has met the outage; then it comes back. Bounded: each wait has a deadline.
 */
export async function runFaultScenario(
  stack: FaultyStack,
  proxy: TcpProxy,
  fault: 'refuse' | 'blackhole',
  workers = 4,
): Promise<ScenarioReport> {
  const prefix = `fault-${fault}-${randomBytes(3).toString('hex')}`;
  const ready = async () => (await status(`${stack.healthUrl}/health/ready`)) === 200;
  await until(ready, RECOVER_WITHIN_MS);
  const load = steadyLoad(stack.apiUrl, { workers, prefix });
  const okCycles = (after: number) =>
    load.samples.filter((s) => s.op === 'me' && s.status === 200 && s.startedAt > after).length;
  try {
    await until(async () => okCycles(0) >= workers, 15_000);

    const faultAt = Date.now();
    await proxy[fault]();
    const readinessDownMs = await until(async () => !(await ready()), ANSWER_WITHIN_MS);
    // Keep the fault until every worker has had several answers to requests sent during it
    // (failures or fallbacks), so each kind of request, and a request held until its deadline
    // when black-holed, is observed.
    await until(
      async () => load.samples.filter((s) => s.startedAt > faultAt).length >= workers * 3,
      20_000,
    );

    const restoredAt = Date.now();
    await proxy.restore();
    const readinessBackMs = await until(ready, RECOVER_WITHIN_MS + 1_000);
    await until(async () => okCycles(restoredAt) >= 1, RECOVER_WITHIN_MS + 1_000);
    const firstOk = load.samples.find(
      (s) => s.op === 'me' && s.status === 200 && s.startedAt > restoredAt,
    )!;
    const recoveredAt = firstOk.startedAt + firstOk.ms;
    await until(async () => okCycles(recoveredAt) >= workers * 2, 15_000);
    await load.stop();

    const lostRegistrations: string[] = [];
    for (const { email, password } of load.acknowledged) {
      const res = await fetch(`${stack.apiUrl}/api/v1/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      if (res.status !== 200) lostRegistrations.push(`${email}: ${res.status}`);
    }
    const statuses: Record<string, number> = {};
    for (const s of load.samples) {
      const k = `${s.op} ${s.status}`;
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
    return {
      samples: load.samples,
      duringFault: load.samples.filter((s) => s.startedAt >= faultAt && s.startedAt < restoredAt),
      longestMs: Math.max(...load.samples.map((s) => s.ms)),
      readinessDownMs,
      readinessBackMs,
      recoveryMs: recoveredAt - restoredAt,
      failedAfterRecovery: load.samples.filter(
        (s) => s.startedAt > recoveredAt && s.status !== 200 && s.status !== 201,
      ),
      statuses,
      acknowledged: load.acknowledged.length,
      lostRegistrations,
    };
  } finally {
    await load.stop();
    await proxy.restore();
  }
}

/** One line for the test output: what the scenario observed. */
export function describeScenario(name: string, r: ScenarioReport): string {
  const longestDuring = Math.max(0, ...r.duringFault.map((s) => s.ms));
  return (
    `${name}: ${r.samples.length} requests, statuses ${JSON.stringify(r.statuses)}; ` +
    `longest answer ${r.longestMs} ms (${longestDuring} ms during the fault); readiness 503 after ` +
    `${r.readinessDownMs} ms, 200 again ${r.readinessBackMs} ms after the restore; first full ` +
    `cycle ${r.recoveryMs} ms after the restore; ${r.acknowledged} registrations acknowledged, ` +
    `${r.lostRegistrations.length} lost`
  );
}

/** What every fault scenario must hold: answered in time, recovered in time, nothing lost. */
export function expectHeldUp(r: ScenarioReport): void {
  const statuses = new Set(r.samples.map((s) => s.status));
  // 0 would be a request the client gave up on; 500 a bug.
  expect([...statuses].filter((s) => ![200, 201, 503].includes(s))).toEqual([]);
  expect(r.samples.filter((s) => s.status === 503 && !s.retryAfter)).toEqual([]);
  expect(r.duringFault.length).toBeGreaterThan(0);
  expect(r.longestMs).toBeLessThan(ANSWER_WITHIN_MS);
  expect(r.readinessBackMs).toBeLessThan(RECOVER_WITHIN_MS);
  expect(r.recoveryMs).toBeLessThan(RECOVER_WITHIN_MS);
  expect(r.failedAfterRecovery).toEqual([]);
  expect(r.acknowledged).toBeGreaterThan(0);
  expect(r.lostRegistrations).toEqual([]);
}
