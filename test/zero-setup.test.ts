import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureBuilt } from './support/build';
import { startServerProcess, type RunningProcess } from './support/process';

/**
 * The newcomer's path: no database, no Redis, no secrets configured. The real process runs on
 * the embedded PostgreSQL in a temporary DATA_DIR, and its data and keys survive a restart.
 */
jest.setTimeout(120_000);

let dataDir: string;
let proc: RunningProcess | undefined;

beforeAll(async () => {
  await ensureBuilt();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-zero-'));
});
afterAll(async () => {
  if (proc && proc.child.exitCode === null) await proc.stop('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function call(
  p: RunningProcess,
  method: string,
  url: string,
  opts: { json?: unknown; form?: Record<string, string>; token?: string } = {},
) {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.form) {
    body = new URLSearchParams(opts.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(`http://127.0.0.1:${p.apiPort}${url}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

test('when started with nothing configured, then it serves register, token and /me, and survives a restart', async () => {
  const email = 'newcomer@example.com';
  const password = 'newcomer-password-1';

  proc = await startServerProcess({ DATA_DIR: dataDir });
  const log = proc.output();
  expect(log).toMatch(/embedded PostgreSQL/);
  expect(log).toMatch(/single-instance/);
  expect(log).toMatch(/JWT_SECRET_KEY is not set/);

  expect(
    (await call(proc, 'POST', '/api/v1/auth/register', { json: { email, password } })).status,
  ).toBe(201);
  const login = await call(proc, 'POST', '/api/v1/auth/token', {
    form: { grant_type: 'password', username: email, password },
  });
  expect(login.status).toBe(200);
  const token = login.body.access_token as string;
  const me = await call(proc, 'GET', '/api/v1/auth/me', { token });
  expect(me).toMatchObject({ status: 200, body: { email } });

  // Generated keys are kept private in DATA_DIR.
  for (const f of ['jwt-secret.key', 'encryption-master.key']) {
    expect(fs.statSync(path.join(dataDir, f)).mode & 0o777).toBe(0o600);
  }
  expect(await proc.stop('SIGTERM')).toBe(0);
  expect(proc.output()).not.toContain(password);
  expect(proc.output()).not.toContain(token);

  proc = await startServerProcess({ DATA_DIR: dataDir });
  const again = await call(proc, 'POST', '/api/v1/auth/token', { json: { email, password } });
  expect(again.status).toBe(200);
  // The same generated JWT key is reused, so a token from before the restart still works.
  expect((await call(proc, 'GET', '/api/v1/auth/me', { token })).status).toBe(200);
  expect(
    (await call(proc, 'POST', '/api/v1/auth/register', { json: { email, password } })).status,
  ).toBe(409);
  expect(await proc.stop('SIGTERM')).toBe(0);
});

test('when NODE_ENV=production lacks its secrets, then it refuses to start and names them', async () => {
  await expect(
    startServerProcess({ DATA_DIR: dataDir, NODE_ENV: 'production' }, 20_000),
  ).rejects.toThrow(
    /JWT_SECRET_KEY[\s\S]*ENCRYPTION_MASTER_KEY|ENCRYPTION_MASTER_KEY[\s\S]*JWT_SECRET_KEY/,
  );
});
