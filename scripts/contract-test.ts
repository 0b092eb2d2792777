import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { PROJECT_ROOT } from '../src/paths';

/**
 * `npm run test:contract`: contract tests by a tool from outside this project. Starts the
 * built service (`node dist/src/server.js`, as the image runs it) on free ports against the
 * local PostgreSQL (a fresh database, dropped afterwards) and Redis, makes an administrator
 * with the admin CLI, and runs the Arazzo workflows in `arazzo/` with `redocly respect`, which
 * fails on any answer the contract does not describe (status, content type or body schema).
 *
 * The service's own response validation is off here (VALIDATE_RESPONSES=false), so that
 * Respect judges the answers the handlers really produce rather than the validator's 500.
 *
 * CONTRACT_DATABASE_URL (an administrative database URL) and CONTRACT_REDIS_URL override the
 * defaults, which are the local services CI starts.
 */

const PG_URL = process.env.CONTRACT_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.CONTRACT_REDIS_URL ?? 'redis://127.0.0.1:6379/12';
const WORKFLOWS = path.join(PROJECT_ROOT, 'arazzo', 'auth.arazzo.yaml');

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = '/' + name;
  return u.toString();
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: 'inherit', cwd: PROJECT_ROOT });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

/** Starts the service and resolves with its API port once it logs that it listens. */
function startService(
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'src', 'server.js')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the service did not start in 60 s:\n${out}`)),
      60_000,
    );
    const onData = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"apiPort"'));
      if (!line) return;
      clearTimeout(timer);
      resolve({
        child,
        port: (JSON.parse(line) as { apiPort: number }).apiPort,
        output: () => out,
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited with ${code} before listening:\n${out}`));
    });
  });
}

async function main(): Promise<number> {
  const suffix = randomBytes(5).toString('hex');
  const dbName = `auth_contract_${suffix}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-contract-'));
  const admin = new Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();

  // Only these: the caller's own shell (a DATABASE_URL, say) must not leak into the run.
  const env: NodeJS.ProcessEnv = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    HEALTH_PORT: '0',
    DATABASE_URL: withDatabase(PG_URL, dbName),
    REDIS_URL,
    DATA_DIR: dataDir,
    JWT_SECRET_KEY: randomBytes(32).toString('hex'),
    ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
    BCRYPT_COST: '4',
    RATE_LIMIT_ENABLED: 'false',
    VALIDATE_RESPONSES: 'false',
    LOG_LEVEL: 'info',
  };
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  try {
    service = await startService(env);
    const adminEmail = `admin-${suffix}@example.com`;
    const adminPassword = randomBytes(12).toString('hex');
    const created = await run(
      process.execPath,
      [
        path.join(PROJECT_ROOT, 'dist', 'scripts', 'admin.js'),
        'create-admin',
        '--email',
        adminEmail,
      ],
      { ...env, ADMIN_PASSWORD: adminPassword, LOG_LEVEL: 'warn' },
    );
    if (created !== 0) throw new Error('the admin CLI could not create an administrator');

    const inputs = {
      email: `member-${suffix}@example.com`,
      memberEmail: `managed-${suffix}@example.com`,
      selfServiceEmail: `self-${suffix}@example.com`,
      password: 'correct-horse-battery',
      adminEmail,
      adminPassword,
    };
    const code = await run(
      path.join(PROJECT_ROOT, 'node_modules', '.bin', 'redocly'),
      [
        'respect',
        WORKFLOWS,
        '--server',
        `auth=http://127.0.0.1:${service.port}`,
        ...Object.entries(inputs).flatMap(([k, v]) => ['--input', `${k}=${v}`]),
      ],
      { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    );
    if (code !== 0) {
      const errors = service
        .output()
        .split('\n')
        .filter((l) => /"level":"(error|fatal)"/.test(l));
      if (errors.length) console.error(`service errors during the run:\n${errors.join('\n')}`);
    }
    return code;
  } finally {
    if (service) {
      const exited = new Promise((resolve) => service!.child.once('exit', resolve));
      service.child.kill('SIGTERM');
      await exited;
    }
    const cleanup = new Client({ connectionString: PG_URL });
    await cleanup.connect();
    await cleanup.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await cleanup.end();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
