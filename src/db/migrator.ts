import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import pino from 'pino';
import type { Sequelize } from 'sequelize';
import type { Umzug, UmzugStorage } from 'umzug';
import type { Logger } from 'pino';
import { MIGRATIONS_DIR } from '../paths';
import { DB_DEADLINES, createDatabase } from './database';

/**
 * Migrations are raw SQL files without an extension, named `<timestamp>_<what>`, with an
 * `-- migrate:up` and a `-- migrate:down` section. Each step runs in one transaction together
 * with its bookkeeping row, so a failed step leaves nothing behind.
 */

const TABLE = 'schema_migrations';
// Any fixed 64-bit number; replicas starting together queue on it and migrate once.
const ADVISORY_LOCK_KEY = 72_033_001;

interface Sections {
  up: string;
  down: string;
}

export function parseMigration(text: string, name: string): Sections {
  const m = /^\s*--\s*migrate:up\s*$([\s\S]*?)^\s*--\s*migrate:down\s*$([\s\S]*)$/m.exec(text);
  if (!m) throw new Error(`migration ${name} needs '-- migrate:up' and '-- migrate:down' sections`);
  return { up: m[1]!.trim(), down: m[2]!.trim() };
}

function listMigrations(dir: string): { name: string; file: string }[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{14}_[a-z0-9_]+$/.test(f))
    .sort()
    .map((name) => ({ name, file: path.join(dir, name) }));
}

class SqlStorage implements UmzugStorage<Sequelize> {
  constructor(private readonly sequelize: Sequelize) {}
  async ensureTable(): Promise<void> {
    await this.sequelize.query(
      `CREATE TABLE IF NOT EXISTS ${TABLE} (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
  }
  async executed(): Promise<string[]> {
    await this.ensureTable();
    const [rows] = await this.sequelize.query(`SELECT name FROM ${TABLE} ORDER BY name`);
    return (rows as { name: string }[]).map((r) => r.name);
  }
  // The migration's own transaction writes and deletes the row (see buildUmzug).
  async logMigration(): Promise<void> {}
  async unlogMigration(): Promise<void> {}
}

/**
 * Umzug is loaded only when there is something to apply or revert: with its command-line
 * dependencies it is a good part of the service's start-up, which normally finds nothing pending.
 */
export async function buildUmzug(
  sequelize: Sequelize,
  logger?: Logger,
  dir = MIGRATIONS_DIR,
): Promise<Umzug<Sequelize>> {
  const { Umzug } = await import('umzug');
  return new Umzug<Sequelize>({
    context: sequelize,
    storage: new SqlStorage(sequelize),
    logger: logger
      ? {
          info: (m) => logger.info(m, 'migration'),
          warn: (m) => logger.warn(m, 'migration'),
          error: (m) => logger.error(m, 'migration'),
          debug: () => {},
        }
      : undefined,
    migrations: listMigrations(dir).map(({ name, file }) => {
      const sections = parseMigration(fs.readFileSync(file, 'utf8'), name);
      return {
        name,
        path: file,
        up: ({ context }) =>
          context.transaction(async (transaction) => {
            await context.query(sections.up, { transaction });
            await context.query(`INSERT INTO ${TABLE} (name) VALUES (:name)`, {
              transaction,
              replacements: { name },
            });
          }),
        down: ({ context }) =>
          context.transaction(async (transaction) => {
            await context.query(sections.down, { transaction });
            await context.query(`DELETE FROM ${TABLE} WHERE name = :name`, {
              transaction,
              replacements: { name },
            });
          }),
      };
    }),
  });
}

export interface MigrateOptions {
  /**
   * Runs the steps on the embedded server. With lockUrl the steps run on a connection of their
   * own instead, without the request deadlines: a step may take longer than a request may.
   */
  sequelize: Sequelize;
  /** Connection string for the lock session; null uses an in-process lock (embedded server). */
  lockUrl: string | null;
  logger?: Logger;
  direction?: 'up' | 'down';
  /** For `down`: how many steps (default 1); 0 means all. */
  steps?: number;
}

let processLock: Promise<unknown> = Promise.resolve();

/** Runs pending migrations (or reverts) while holding a PostgreSQL advisory lock. */
export async function migrate(opts: MigrateOptions): Promise<string[]> {
  // The usual start: everything applied. Checked without the lock: if another replica is
  // migrating, something is still pending and we queue on the lock below.
  if (opts.direction !== 'down' && (await pendingMigrations(opts.sequelize)).length === 0) {
    return [];
  }
  const run = async (sequelize: Sequelize) => {
    const umzug = await buildUmzug(sequelize, opts.logger);
    if (opts.direction === 'down') {
      const steps = opts.steps ?? 1;
      const done = await umzug.down(steps === 0 ? { to: 0 as const } : { step: steps });
      return done.map((m) => m.name);
    }
    const done = await umzug.up();
    return done.map((m) => m.name);
  };
  if (opts.lockUrl === null) {
    const once = () => run(opts.sequelize);
    const result = processLock.then(once, once);
    processLock = result.catch(() => undefined);
    return result;
  }
  const client = new Client({
    connectionString: opts.lockUrl,
    application_name: 'auth-service-migrate',
    connectionTimeoutMillis: DB_DEADLINES.connectMs,
  });
  await client.connect();
  const stepsDb = createDatabase({
    url: opts.lockUrl,
    logger: opts.logger ?? pino({ level: 'silent' }),
    poolMax: 1,
    requestDeadlines: false,
  });
  try {
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
    try {
      return await run(stepsDb.sequelize);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]);
    }
  } finally {
    await stepsDb.close();
    await client.end();
  }
}

/** Names of migrations not yet applied; readiness is false while any are. */
export async function pendingMigrations(
  sequelize: Sequelize,
  dir = MIGRATIONS_DIR,
): Promise<string[]> {
  const [[table]] = (await sequelize.query(
    `SELECT to_regclass('${TABLE}') IS NOT NULL AS present`,
  )) as [{ present: boolean }[], unknown];
  const applied = new Set<string>();
  if (table?.present) {
    const [rows] = await sequelize.query(`SELECT name FROM ${TABLE}`);
    for (const r of rows as { name: string }[]) applied.add(r.name);
  }
  return listMigrations(dir)
    .map((m) => m.name)
    .filter((name) => !applied.has(name));
}
