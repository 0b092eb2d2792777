import { Client } from 'pg';
import { Redis } from 'ioredis';
import pino from 'pino';
import { createDatabase } from '../../src/db/database';
import { migrate } from '../../src/db/migrator';
import { startTestPostgres, type TestPostgres } from './embedded-postgres';
import { TEST_PG_URL, TEST_REDIS_URL } from './services';

/** Set by globalSetup when it started its own PostgreSQL; globalTeardown stops it. */
export const EMBEDDED_PG_KEY = '__authTestPostgres';
type WithTestPostgres = typeof globalThis & { [EMBEDDED_PG_KEY]?: TestPostgres };

/**
 * The PostgreSQL to test against: TEST_DATABASE_URL, else the default address, else (or with
 * TEST_DATABASE_URL=embedded) a server from npm that this run starts and stops.
 */
async function connectAdmin(): Promise<Client> {
  if (process.env.TEST_DATABASE_URL !== 'embedded') {
    const admin = new Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await admin.connect();
      return admin;
    } catch (err) {
      // An address given on purpose is what the run must use: say it is down, do not swap it.
      if (process.env.TEST_DATABASE_URL) {
        throw new Error(
          `The tests need PostgreSQL at ${TEST_PG_URL} (TEST_DATABASE_URL): ${(err as Error).message}`,
        );
      }
    }
    console.log(`No PostgreSQL at ${TEST_PG_URL}: starting one from the embedded-postgres package`);
  }
  const server = await startTestPostgres();
  (globalThis as WithTestPostgres)[EMBEDDED_PG_KEY] = server;
  // Test workers start after this and read it through ./services.
  process.env.TEST_DATABASE_URL = server.url;
  const own = new Client({ connectionString: server.url, connectionTimeoutMillis: 3000 });
  await own.connect();
  return own;
}

export async function stopTestPostgres(): Promise<void> {
  const g = globalThis as WithTestPostgres;
  const server = g[EMBEDDED_PG_KEY];
  delete g[EMBEDDED_PG_KEY];
  await server?.stop();
}

/**
 * Builds one migrated template database per run; each test file clones it (CREATE DATABASE
 * ... TEMPLATE), which is much faster than migrating per file and keeps files isolated.
 */
export default async function globalSetup(): Promise<void> {
  try {
    await prepare();
  } catch (err) {
    // Jest skips globalTeardown when globalSetup fails: stop our own server here.
    await stopTestPostgres();
    throw err;
  }
}

async function prepare(): Promise<void> {
  const admin = await connectAdmin();
  const redis = new Redis(TEST_REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 3000,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    await admin.end();
    throw new Error(
      `The tests need Redis at ${TEST_REDIS_URL} (set TEST_REDIS_URL to change it): ${(err as Error).message}`,
    );
  } finally {
    redis.disconnect();
  }

  const template = `auth_tpl_${process.pid}_${Date.now()}`;
  await admin.query(`CREATE DATABASE ${template}`);
  await admin.end();
  const url = new URL(process.env.TEST_DATABASE_URL ?? TEST_PG_URL);
  url.pathname = `/${template}`;
  const db = createDatabase({ url: url.toString(), logger: pino({ level: 'silent' }) });
  try {
    await migrate({ sequelize: db.sequelize, lockUrl: url.toString() });
  } finally {
    await db.close();
  }
  process.env.TEST_TEMPLATE_DB = template;
}
