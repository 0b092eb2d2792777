import { Client } from 'pg';
import { stopTestPostgres } from './global-setup';
import { TEST_PG_URL } from './services';

export default async function globalTeardown(): Promise<void> {
  try {
    const template = process.env.TEST_TEMPLATE_DB;
    if (!template) return;
    // globalSetup may have pointed the run at a PostgreSQL of its own.
    const admin = new Client({ connectionString: process.env.TEST_DATABASE_URL ?? TEST_PG_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
    await admin.end();
  } finally {
    await stopTestPostgres();
  }
}
