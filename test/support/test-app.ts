import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll } from '@jest/globals';
import type { Express } from 'express';
import createClient, { type Client as OpenApiClient } from 'openapi-fetch';
import { Client } from 'pg';
import request from 'supertest';
import type { paths } from '../../generated/openapi';
import { createApp, createHealthApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createDeps, type Deps, type DepsOptions } from '../../src/deps';
import { TEST_PG_URL, TEST_REDIS_URL, databaseUrl } from './services';

/** A client typed by the spec: paths, parameters, bodies and responses are checked. */
export type ApiClient = OpenApiClient<paths>;

export interface TestApp {
  app: Express;
  healthApp: Express;
  deps: Deps;
  dbName: string;
  dbUrl: string;
  /** Every log line written so far, as raw JSON text. */
  logs: string[];
  /** A plain pg client on this file's database, for arranging and inspecting rows. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /**
   * The typed client on this app (served on an ephemeral 127.0.0.1 port), sending
   * `Authorization: Bearer <token>` when a token is given.
   */
  api(token?: string): Promise<ApiClient>;
  close(): Promise<void>;
}

export const TEST_JWT_SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';

/** The deps of every app this test file has started and not yet closed. */
const liveDeps = new Set<Deps>();

/** Fresh database cloned from the migrated template, own Redis key prefix, captured logs. */
export async function startTestApp(
  env: Record<string, string> = {},
  opts: { database?: string } & Pick<DepsOptions, 'clock' | 'mail'> = {},
): Promise<TestApp> {
  const template = process.env.TEST_TEMPLATE_DB;
  if (!template) throw new Error('TEST_TEMPLATE_DB is not set: run the tests with `npm test`');
  const dbName = opts.database ?? `auth_t_${randomBytes(6).toString('hex')}`;
  const owned = !opts.database;
  const admin = new Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  if (owned) await admin.query(`CREATE DATABASE ${dbName} TEMPLATE ${template}`);
  await admin.end();
  const dbUrl = databaseUrl(dbName);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-test-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: dbUrl,
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET_KEY: TEST_JWT_SECRET,
    ENCRYPTION_MASTER_KEY: randomBytes(32).toString('base64'),
    BCRYPT_COST: '4',
    // Test files register and log in many times from one address; rate-limit tests lower these.
    RATE_LIMIT_REGISTER_PER_HOUR: '100000',
    RATE_LIMIT_LOGIN_PER_MINUTE: '100000',
    RATE_LIMIT_LOGIN_IP_PER_MINUTE: '100000',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ...env,
  });
  const logs: string[] = [];
  const logDestination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const deps = await createDeps(config, {
    logDestination,
    redisKeyPrefix: `test:${dbName}:`,
    clock: opts.clock,
    // Retries in milliseconds rather than seconds, so a retry test stays short.
    mail: opts.mail ?? { retryBaseMs: 20 },
  });
  const pg = new Client({ connectionString: dbUrl });
  await pg.connect();
  liveDeps.add(deps);
  const app = createApp(deps);
  let server: http.Server | undefined;
  let listening: Promise<string> | undefined;
  const baseUrl = () =>
    (listening ??= new Promise<string>((resolve, reject) => {
      server = http.createServer(app);
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        resolve(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`);
      });
    }));
  return {
    app,
    healthApp: createHealthApp(deps),
    deps,
    dbName,
    dbUrl,
    logs,
    async sql(text, params) {
      const r = await pg.query(text, params as unknown[]);
      // An operator's SQL reaches each replica's user-state cache by NOTIFY, within
      // milliseconds (the contract allows a second; test/user-state-cache.test.ts holds it to
      // that). Arranging a test by SQL waits until every app of this file has seen the change,
      // so the next request's answer does not depend on how busy the machine is.
      await Promise.all([...liveDeps].map((d) => d.userStateListener?.sync()));
      return r.rows as Record<string, unknown>[];
    },
    async api(token) {
      return createClient<paths>({
        baseUrl: await baseUrl(),
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      });
    },
    async close() {
      if (server?.listening) {
        server.closeAllConnections();
        await new Promise((resolve) => server!.close(resolve));
      }
      await pg.end();
      liveDeps.delete(deps);
      await deps.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      if (owned) {
        const a = new Client({ connectionString: TEST_PG_URL });
        await a.connect();
        await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await a.end();
      }
    },
  };
}

/**
 * The one way to start the app for a test file: call it at the top of the file (or of a
 * `describe`); the app starts in `beforeAll` on its own database and closes in `afterAll`.
 * The returned object is filled in before the first test runs.
 */
export function useTestApp(
  env: Record<string, string> | (() => Record<string, string>) = {},
  opts: { database?: string } & Pick<DepsOptions, 'clock' | 'mail'> = {},
): TestApp {
  const t = {} as TestApp;
  beforeAll(async () => {
    // A function is read when the app starts: after earlier hooks (an SMTP server) have run.
    Object.assign(t, await startTestApp(typeof env === 'function' ? env() : env, opts));
  });
  afterAll(async () => {
    // Nothing to close when startTestApp itself failed.
    if (t.close) await t.close();
  });
  return t;
}

let counter = 0;
/** A unique, valid email for this test run. */
export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}-${randomBytes(3).toString('hex')}@example.com`;
}

export const GOOD_PASSWORD = 'correct-horse-battery';

/** Registers through the API; expects 201 unless told otherwise. */
export async function register(
  app: Express,
  email = uniqueEmail(),
  password = GOOD_PASSWORD,
  expected = 201,
) {
  const res = await request(app)
    .post('/api/v1/auth/register')
    .send({ email, password })
    .expect(expected);
  return { email, password, user: res.body as { id: string; email: string } };
}

/** Logs in with JSON; returns the access token. */
export async function login(app: Express, email: string, password = GOOD_PASSWORD, expected = 200) {
  const res = await request(app)
    .post('/api/v1/auth/token')
    .send({ email, password })
    .expect(expected);
  return res.body as {
    access_token: string;
    token_type: string;
    expires_in: number;
    refresh_token?: string;
  };
}

/** A registered user with a fresh access token. */
export async function signedInUser(app: Express) {
  const { email, password, user } = await register(app);
  const tokens = await login(app, email, password);
  return { email, password, user, token: tokens.access_token, tokens };
}

/** A signed-in user made admin the way an operator would: directly in the database. */
export async function signedInAdmin(t: Pick<TestApp, 'app' | 'sql'>) {
  const u = await signedInUser(t.app);
  await t.sql('UPDATE users SET is_admin = true WHERE id = $1', [u.user.id]);
  return u;
}
