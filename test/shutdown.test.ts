import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, jest, test } from '@jest/globals';
import { Client } from 'pg';
import { ensureBuilt } from './support/build';
import { startServerProcess, type RunningProcess } from './support/process';
import { TEST_PG_URL, TEST_REDIS_URL, databaseUrl } from './support/services';

/**
 * The real process (`node dist/src/server.js`, as in the image) under SIGTERM and SIGINT, with
 * a login in flight: readiness must turn 503 at once, new connections must be refused, the
 * login must still get its 200, and the exit code must be 0.
 */
jest.setTimeout(180_000);

const dbName = `auth_shutdown_${randomBytes(6).toString('hex')}`;
let dataDir: string;
let proc: RunningProcess | undefined;

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: TEST_PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  const template = process.env.TEST_TEMPLATE_DB;
  if (!template) throw new Error('TEST_TEMPLATE_DB is not set: run the tests with `npm test`');
  await ensureBuilt();
  await admin((c) => c.query(`CREATE DATABASE ${dbName} TEMPLATE ${template}`));
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-shutdown-'));
}, 180_000);

afterEach(async () => {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null)
    await proc.stop('SIGKILL');
  proc = undefined;
});

afterAll(async () => {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function start(): Promise<RunningProcess> {
  return startServerProcess({
    DATABASE_URL: databaseUrl(dbName),
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET_KEY: randomBytes(32).toString('hex'),
    ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
    // A real cost, so that a login spends a few hundred milliseconds in bcrypt.
    BCRYPT_COST: '12',
    SHUTDOWN_TIMEOUT_SECONDS: '20',
    // The process uses the default Redis key prefix, which every run on this Redis shares:
    // the default budget of 20 registrations an hour from 127.0.0.1 would run out.
    RATE_LIMIT_REGISTER_PER_HOUR: '100000',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
  });
}

async function readiness(port: number): Promise<number | 'refused'> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health/ready`)).status;
  } catch {
    return 'refused';
  }
}

function tryConnect(port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/**
 * A login on a raw keep-alive connection, sent as headers first with `Expect: 100-continue`:
 * the server's 100 Continue proves the request is in flight before the test sends a signal;
 * the body follows when the test says so.
 */
async function inFlightLogin(port: number, email: string, password: string) {
  const body = JSON.stringify({ email, password });
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  socket.on('data', (d: Buffer) => (received += d.toString('utf8')));
  socket.write(
    'POST /api/v1/auth/token HTTP/1.1\r\n' +
      `Host: 127.0.0.1:${port}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: keep-alive\r\n' +
      'Expect: 100-continue\r\n\r\n',
  );
  const deadline = Date.now() + 10_000;
  while (!received.includes('100 Continue')) {
    if (Date.now() > deadline) throw new Error(`no 100 Continue: ${received}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    sendBody: () => socket.write(body),
    /** The final response, once the server has closed the connection. */
    response: async () => {
      const raw = (await closed).replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const [head = '', payload = ''] = raw.split('\r\n\r\n');
      return { status: Number(head.split(' ')[1]), head: head.toLowerCase(), payload };
    },
  };
}

async function register(port: number, email: string, password: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return res.status;
}

test.each(['SIGTERM', 'SIGINT'] as const)(
  'when %s arrives during a login, then readiness turns 503, new connections are refused, the login gets 200 and the exit code is 0',
  async (signal) => {
    proc = await start();
    const { apiPort, healthPort, child } = proc;
    const email = `shutdown-${signal.toLowerCase()}-${randomBytes(4).toString('hex')}@example.com`;
    const password = 'shutdown-password-1';
    expect(await register(apiPort, email, password)).toBe(201);
    expect(await readiness(healthPort)).toBe(200);
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );

    const login = await inFlightLogin(apiPort, email, password);
    const t0 = Date.now();
    child.kill(signal);

    // Readiness flips at once; the health port keeps answering while the API drains.
    let ready: number | 'refused' = await readiness(healthPort);
    while (ready === 200) ready = await readiness(healthPort);
    const readinessMs = Date.now() - t0;
    expect(ready).toBe(503);
    expect(await tryConnect(apiPort)).toBe('ECONNREFUSED');
    const refusedMs = Date.now() - t0;

    login.sendBody();
    const res = await login.response();
    const responseMs = Date.now() - t0;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.payload)).toMatchObject({ token_type: 'bearer' });
    // The client is told not to reuse the connection, so the drain does not wait on it.
    expect(res.head).toContain('connection: close');

    const code = await exited;
    const exitMs = Date.now() - t0;
    expect(code).toBe(0);
    const lines = proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; signal?: string; api?: string; health?: string });
    expect(lines.find((l) => l.msg === 'signal received')?.signal).toBe(signal);
    expect(lines.find((l) => l.msg === 'shutdown complete')).toMatchObject({
      api: 'drained',
      health: 'drained',
    });

    console.log(
      `${signal}: readiness 503 after ${readinessMs} ms, new connection refused after ${refusedMs} ms, ` +
        `in-flight login 200 after ${responseMs} ms, exit ${code} after ${exitMs} ms`,
    );
  },
);
