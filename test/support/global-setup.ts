import { Client } from 'pg';
import { Redis } from 'ioredis';
import pino from 'pino';
import { createDatabase } from '../../src/db/database';
import { migrate } from '../../src/db/migrator';
import { TEST_PG_URL, TEST_REDIS_URL, databaseUrl } from './services';

/**
 * Builds one migrated template database per run; each test file clones it (CREATE DATABASE
 * ... TEMPLATE), which is much faster than migrating per file and keeps files isolated.
 */
export default async function globalSetup(): Promise<void> {
  const admin = new Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `The tests need PostgreSQL at ${TEST_PG_URL} (set TEST_DATABASE_URL to change it): ${(err as Error).message}`,
    );
  }
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
  const db = createDatabase({ url: databaseUrl(template), logger: pino({ level: 'silent' }) });
  try {
    await migrate({ sequelize: db.sequelize, lockUrl: databaseUrl(template) });
  } finally {
    await db.close();
  }
  process.env.TEST_TEMPLATE_DB = template;
}
