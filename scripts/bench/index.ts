import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { PROJECT_ROOT } from '../../src/paths';
import {
  load,
  postJson,
  request,
  storm,
  type LoadOptions,
  type LoadResult,
  type StormResult,
} from './load';
import {
  freePort,
  peakRssMiB,
  run,
  runJson,
  startProcess,
  stopAll,
  stopProcess,
  type Started,
} from './processes';
import {
  buildResult,
  exitCodeFor,
  formatTable,
  missedGoals,
  parseArgs,
  type BenchOptions,
  type Figure,
  type Measure,
  type StartFigure,
} from './report';

/**
 * `npm run bench`: starts the built service against a fresh PostgreSQL database and its own
 * Redis database index, measures every figure of BENCHMARKS.md beside its reference in one
 * run, prints the table and writes it as JSON. See BENCHMARKS.md for what each figure means.
 */

const PG_ADMIN_URL =
  process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** A database index of its own: the bench never touches another index's keys. */
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/13';
const SERVER_ENTRY = path.join(PROJECT_ROOT, 'dist', 'src', 'server.js');
const BENCH_DIR = path.join(PROJECT_ROOT, 'dist', 'scripts', 'bench');
/** Service settings a caller may set for the bench to try (thread pool, hashing capacity). */
const PASSED_THROUGH = ['UV_THREADPOOL_SIZE', 'HASH_CONCURRENCY', 'HASH_QUEUE_LIMIT', 'LOG_LEVEL'];
/** What any child process needs from the bench's own environment; nothing else leaks in. */
const SYSTEM = ['PATH', 'HOME'];

function pick(names: readonly string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(
    names.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]),
  );
}
const PASSWORD = 'bench-password-1';
const ME = '/api/v1/auth/me';

interface Phases {
  seconds: number;
  warmUp: number;
  coldStarts: number;
  stormClients: number;
}

function say(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

function dbUrl(name: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = '/' + name;
  return u.toString();
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Deletes the keys the service wrote (prefix auth:) in the bench's own database index. */
async function cleanRedis(): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'auth:*', 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

interface Service {
  proc: Started;
  api: string;
  health: string;
}

class Bench {
  readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-bench-'));
  readonly dbName = `auth_bench_${process.pid}_${Date.now()}`;
  readonly secret = randomBytes(32).toString('hex');
  readonly figures: Figure[] = [];
  private readonly serviceEnv: NodeJS.ProcessEnv;

  constructor(
    readonly opts: BenchOptions,
    readonly phases: Phases,
  ) {
    this.serviceEnv = {
      ...pick(SYSTEM),
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATABASE_URL: dbUrl(this.dbName),
      REDIS_URL,
      JWT_SECRET_KEY: this.secret,
      ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
      BCRYPT_COST: '10',
      DATA_DIR: path.join(this.tmp, 'data'),
      // One client address registers every account of the run.
      RATE_LIMIT_REGISTER_PER_HOUR: '1000000',
      ...pick(PASSED_THROUGH),
    };
  }

  log(name: string): string {
    return path.join(this.tmp, `${name}.log`);
  }

  async startService(name: string, env: NodeJS.ProcessEnv = {}): Promise<Service> {
    const [port, healthPort] = [await freePort(), await freePort()];
    const proc = await startProcess({
      command: process.execPath,
      args: [SERVER_ENTRY],
      cwd: PROJECT_ROOT,
      env: { ...this.serviceEnv, PORT: String(port), HEALTH_PORT: String(healthPort), ...env },
      readyUrl: `http://127.0.0.1:${healthPort}/health/ready`,
      logFile: this.log(name),
    });
    return {
      proc,
      api: `http://127.0.0.1:${port}`,
      health: `http://127.0.0.1:${healthPort}`,
    };
  }

  async startReference(script: string): Promise<{ proc: Started; url: string }> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = await startProcess({
      command: process.execPath,
      args: [path.join(BENCH_DIR, script)],
      cwd: PROJECT_ROOT,
      env: { ...this.serviceEnv, PORT: String(port) },
      readyUrl: script === 'express-hello.js' ? url : `${url}/ready`,
      logFile: this.log(script),
    });
    return { proc, url };
  }

  async register(api: string, email: string): Promise<void> {
    const r = await postJson(`${api}/api/v1/auth/register`, { email, password: PASSWORD });
    if (r.status !== 201) throw new Error(`registering a bench user answered ${r.status}`);
  }

  async login(api: string, email: string): Promise<string> {
    const r = await postJson(`${api}/api/v1/auth/token`, { email, password: PASSWORD });
    if (r.status !== 200) throw new Error(`logging a bench user in answered ${r.status}`);
    return (JSON.parse(r.body) as { access_token: string }).access_token;
  }

  meLoad(url: string, token: string, extra: Partial<LoadOptions> = {}, warmUp?: number) {
    return load(
      {
        url,
        connections: 64,
        seconds: this.phases.seconds,
        headers: { authorization: `Bearer ${token}` },
        ...extra,
      },
      warmUp ?? this.phases.warmUp,
    );
  }

  async bcryptRate(op: 'compare' | 'hash'): Promise<number> {
    const env = { ...this.serviceEnv };
    const pool = Number(env.UV_THREADPOOL_SIZE ?? 4);
    const r = await runJson<{ perSecond: number }>(
      path.join(BENCH_DIR, 'bcrypt-rate.js'),
      [op, '10', String(pool), String(this.phases.seconds)],
      env,
    );
    return r.perSecond;
  }

  loginStorm(api: string, users: string[]): Promise<StormResult> {
    return storm({
      clients: users.length,
      warmUpSeconds: this.phases.warmUp,
      seconds: this.phases.seconds,
      expect: 200,
      send: (c) => postJson(`${api}/api/v1/auth/token`, { email: users[c], password: PASSWORD }),
    });
  }

  async measure(): Promise<void> {
    const p = this.phases;
    say(`service A (response validation on), database ${this.dbName}`);
    const a = await this.startService('service-a');
    const users = Array.from({ length: p.stormClients }, (_, i) => `user${i}@bench.example`);
    for (const u of [...users, 'me@bench.example']) await this.register(a.api, u);
    const token = await this.login(a.api, 'me@bench.example');
    const check = await request(a.api + ME, { headers: { authorization: `Bearer ${token}` } });
    if (check.status !== 200) throw new Error(`/me with the bench token answered ${check.status}`);

    const express = await this.startReference('express-hello.js');
    const bare = await this.startReference('node-jwt.js');
    const validator = await this.startReference('express-eov.js');
    say('/me vs Express 5 vs node:http, 64 connections');
    const me = await this.meLoad(a.api + ME, token);
    const ex = await this.meLoad(express.url, token);
    const nodeJwt = await this.meLoad(bare.url, token);
    const eov = await this.meLoad(validator.url + ME, token);
    await stopProcess(express.proc.child);
    await stopProcess(bare.proc.child);
    await stopProcess(validator.proc.child);
    this.figures.push(
      {
        id: 'me_vs_express_ratio',
        measured: rate('/me', me),
        reference: rate('Express hello', ex),
        goal: { op: '>=', target: 0.6, of: 'ratio' },
        invalid: invalid(me, ex),
      },
      {
        id: 'validator_ceiling',
        measured: rate('Express + validator, constant /me', eov),
        reference: rate('Express hello', ex),
        invalid: invalid(eov, ex),
      },
      {
        id: 'me_ratio',
        measured: rate('/me', me),
        reference: rate('node:http + HS256', nodeJwt),
        invalid: invalid(me, nodeJwt),
      },
    );

    say('response validation on vs off');
    const b = await this.startService('service-b', { VALIDATE_RESPONSES: 'false' });
    const on = await this.meLoad(a.api + ME, token);
    const off = await this.meLoad(b.api + ME, token);
    const rssB = peakRssMiB(b.proc.child.pid);
    await stopProcess(b.proc.child);
    this.figures.push({
      id: 'validation_cost',
      measured: rate('/me, validation on', on),
      reference: rate('/me, validation off', off),
      goal: { op: '>=', target: 0.9, of: 'ratio' },
      invalid: invalid(on, off),
    });

    say('logins vs raw bcrypt.compare');
    const compare = await this.bcryptRate('compare');
    const logins = await this.loginStorm(a.api, users);
    this.figures.push({
      id: 'login_ratio',
      measured: { label: 'logins', value: logins.perSecond, unit: '/s' },
      reference: { label: 'bcrypt.compare', value: compare, unit: '/s' },
      goal: { op: '>=', target: 0.9, of: 'ratio' },
      invalid: stormInvalid(logins),
      note: stormNote(logins, p.stormClients),
    });

    say('registrations vs raw bcrypt.hash');
    const hash = await this.bcryptRate('hash');
    const runId = randomBytes(4).toString('hex');
    const regs = await storm({
      clients: p.stormClients,
      warmUpSeconds: p.warmUp,
      seconds: p.seconds,
      expect: 201,
      send: (c, n) =>
        postJson(`${a.api}/api/v1/auth/register`, {
          email: `r${runId}-${c}-${n}@bench.example`,
          password: PASSWORD,
        }),
    });
    this.figures.push({
      id: 'register_ratio',
      measured: { label: 'registrations', value: regs.perSecond, unit: '/s' },
      reference: { label: 'bcrypt.hash', value: hash, unit: '/s' },
      goal: { op: '>=', target: 0.9, of: 'ratio' },
      invalid: stormInvalid(regs),
      note: stormNote(regs, p.stormClients),
    });

    say('p99 of /health/live and /me during a login storm');
    const probes = { connections: 4, overallRate: 100 };
    // The probes count the storm's own measured window: during its warm-up they warm up too, as
    // every other phase does (a first /health/live call builds that route's validators).
    const [, live, meDuring] = await Promise.all([
      this.loginStorm(a.api, users),
      load({ url: a.health + '/health/live', seconds: p.seconds, ...probes }, p.warmUp),
      this.meLoad(a.api + ME, token, { seconds: p.seconds, ...probes }, p.warmUp),
    ]);
    this.figures.push(
      {
        id: 'storm_health_live_p99',
        measured: { label: '/health/live p99', value: live.p99Ms, unit: 'ms' },
        goal: { op: '<=', target: 50, of: 'value' },
        invalid: live.failures > 0 ? `${live.failures} failures` : undefined,
        note: `100 req/s each for /health/live and /me while ${p.stormClients} clients log in`,
      },
      {
        id: 'storm_me_p99',
        measured: { label: '/me p99', value: meDuring.p99Ms, unit: 'ms' },
        goal: { op: '<=', target: 50, of: 'value' },
        invalid: meDuring.failures > 0 ? `${meDuring.failures} failures` : undefined,
      },
    );

    const rssA = peakRssMiB(a.proc.child.pid);
    await stopProcess(a.proc.child);
    const rss = Math.max(rssA ?? 0, rssB ?? 0);
    this.figures.push({
      id: 'peak_rss',
      measured: rssA === null ? null : { label: 'service VmHWM', value: rss, unit: 'MiB' },
      goal: { op: '<=', target: 200, of: 'value' },
      note: 'largest peak resident set of the service processes over the whole run',
    });

    await this.coldStart();
    if (!this.opts.skipClone) await this.freshClone();
    else this.figures.push({ id: 'fresh_clone_start', measured: null, goal: fresh });
  }

  /**
   * `--only`: the start-up figures alone. The cold start needs the migrated database the load
   * phases leave behind, so one start of the service migrates it first (not timed).
   */
  async measureStarts(only: readonly StartFigure[]): Promise<void> {
    if (only.includes('cold_start')) {
      say(`migrating database ${this.dbName} (not timed)`);
      const s = await this.startService('migrate');
      await stopProcess(s.proc.child);
      await this.coldStart();
    }
    if (only.includes('fresh_clone_start')) await this.freshClone();
  }

  /** `npm start` (its build check included) on the built tree and migrated database, to readiness. */
  async coldStart(): Promise<void> {
    const times: number[] = [];
    for (let i = 0; i < this.phases.coldStarts; i++) {
      say(`cold start ${i + 1} of ${this.phases.coldStarts}`);
      const [port, healthPort] = [await freePort(), await freePort()];
      const s = await startProcess({
        command: 'npm',
        args: ['start', '--silent'],
        cwd: PROJECT_ROOT,
        env: { ...this.serviceEnv, PORT: String(port), HEALTH_PORT: String(healthPort) },
        readyUrl: `http://127.0.0.1:${healthPort}/health/ready`,
        logFile: this.log(`cold-start-${i}`),
        group: true,
      });
      times.push(s.readyMs / 1000);
      await stopProcess(s.child);
    }
    const sorted = [...times].sort((x, y) => x - y);
    this.figures.push({
      id: 'cold_start',
      measured: {
        label: `npm start to ready, median of ${times.length}`,
        value: sorted[Math.floor(sorted.length / 2)]!,
        unit: 's',
      },
      goal: { op: '<=', target: 1.5, of: 'value' },
      note: `runs: ${times.map((t) => t.toFixed(2)).join(', ')} s`,
    });
  }

  /** A clone of the committed tree, `npm ci`, then `npm start` on an empty DATA_DIR (PGlite). */
  async freshClone(): Promise<void> {
    const dir = path.join(this.tmp, 'clone');
    try {
      await this.startFreshClone(dir);
    } finally {
      // node_modules is large and deleting it can take a minute: not the bench's time.
      spawn('rm', ['-rf', dir], { detached: true, stdio: 'ignore' }).unref();
    }
  }

  private async startFreshClone(dir: string): Promise<void> {
    say('fresh clone: git clone, npm ci (not timed)');
    const log = this.log('fresh-clone');
    await run('git', ['clone', '--quiet', '--no-hardlinks', PROJECT_ROOT, dir], {
      cwd: this.tmp,
      logFile: log,
    });
    const head = gitHead();
    await run('git', ['checkout', '--quiet', head], { cwd: dir, logFile: log });
    const ciStart = performance.now();
    await run('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: dir,
      logFile: log,
    });
    const ciSeconds = (performance.now() - ciStart) / 1000;
    say('fresh clone: npm start on an empty DATA_DIR');
    const [port, healthPort] = [await freePort(), await freePort()];
    const s = await startProcess({
      command: 'npm',
      args: ['start', '--silent'],
      cwd: dir,
      env: {
        ...pick(SYSTEM),
        HOST: '127.0.0.1',
        PORT: String(port),
        HEALTH_PORT: String(healthPort),
        DATA_DIR: path.join(dir, '.data'),
      },
      readyUrl: `http://127.0.0.1:${healthPort}/health/ready`,
      logFile: log,
      group: true,
      timeoutMs: 300_000,
    });
    await stopProcess(s.child);
    this.figures.push({
      id: 'fresh_clone_start',
      measured: { label: 'npm start, empty DATA_DIR', value: s.readyMs / 1000, unit: 's' },
      goal: fresh,
      note: `embedded PostgreSQL; after npm ci (${ciSeconds.toFixed(0)} s, not counted)`,
    });
  }

  async cleanUp(): Promise<void> {
    await stopAll();
    fs.rmSync(path.join(this.tmp, 'data'), { recursive: true, force: true });
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`)).catch(
      (err: Error) => say(`could not drop ${this.dbName}: ${err.message}`),
    );
    await cleanRedis().catch((err: Error) => say(`could not clean Redis: ${err.message}`));
  }
}

const fresh = { op: '<=', target: 8, of: 'value' } as const;

function rate(label: string, r: LoadResult): Measure {
  return { label, value: r.perSecond, unit: 'req/s', p50Ms: r.p50Ms, p99Ms: r.p99Ms };
}

function invalid(...rs: LoadResult[]): string | undefined {
  const failures = rs.reduce((n, r) => n + r.failures, 0);
  return failures > 0 ? `${failures} non-2xx answers or errors` : undefined;
}

function stormInvalid(r: StormResult): string | undefined {
  return r.failures > 0 ? `unexpected answers ${JSON.stringify(r.unexpected)}` : undefined;
}

function stormNote(r: StormResult, clients: number): string {
  return `${clients} clients; ${r.retried} answers were 503/429 with Retry-After (honoured)`;
}

function gitHead(): string {
  return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: PROJECT_ROOT }).toString().trim();
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const phases: Phases = opts.quick
    ? { seconds: 2, warmUp: 1, coldStarts: 1, stormClients: 8 }
    : { seconds: 10, warmUp: 3, coldStarts: 3, stormClients: 16 };
  const loadStart = os.loadavg()[0]!;
  const ranAt = new Date();
  const bench = new Bench(opts, phases);
  await admin((c) => c.query(`CREATE DATABASE ${bench.dbName}`));
  let failed = false;
  try {
    if (opts.only) await bench.measureStarts(opts.only);
    else await bench.measure();
  } catch (err) {
    failed = true;
    say(`failed: ${(err as Error).message}`);
  } finally {
    await bench.cleanUp();
  }
  const result = buildResult(
    ranAt,
    {
      nproc: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadAverage: { start: loadStart, end: os.loadavg()[0]! },
    },
    opts,
    bench.figures,
  );
  process.stdout.write(formatTable(result) + '\n');
  fs.mkdirSync(path.dirname(path.resolve(PROJECT_ROOT, opts.out)), { recursive: true });
  fs.writeFileSync(path.resolve(PROJECT_ROOT, opts.out), JSON.stringify(result, null, 2) + '\n');
  say(`JSON written to ${opts.out}; logs kept in ${bench.tmp}`);
  const missed = missedGoals(result);
  if (opts.check && missed.length) say(`goals missed: ${missed.map((f) => f.id).join(', ')}`);
  process.exit(failed ? 2 : exitCodeFor(result, opts));
}

void main();
