import type { Logger } from 'pino';
import type { Config } from '../config';
import type { Database } from '../db/database';
import { startEmbeddedPostgres } from '../db/embedded';

export interface OpenedDatabase {
  db: Database;
  /** URL of the database, for the migration lock session; null on the embedded server. */
  migrationLockUrl: string | null;
  /** Closes the pool, then the embedded server if there is one. */
  close(): Promise<void>;
}

/**
 * The configured PostgreSQL, or the embedded one in DATA_DIR when none is configured.
 *
 * The embedded server's thread is started before this function first awaits, and Sequelize
 * (a good part of start-up to load) is loaded only after that: a caller that opens the
 * database first and loads the rest of the service meanwhile (src/server.ts does) has the
 * embedded PostgreSQL initialise on one core while the service loads on the other. On a
 * fresh DATA_DIR that initialisation (initdb, in WebAssembly) takes seconds.
 */
export async function openDatabase(
  config: Readonly<Config>,
  logger: Logger,
): Promise<OpenedDatabase> {
  if (config.database.kind === 'url') {
    const { createDatabase } = await import('../db/database');
    const db = createDatabase({ url: config.database.url, logger });
    return { db, migrationLockUrl: config.database.url, close: () => db.close() };
  }
  const starting = startEmbeddedPostgres({ dataDir: config.database.dataDir, logger });
  let createDatabase: typeof import('../db/database').createDatabase;
  try {
    ({ createDatabase } = await import('../db/database'));
  } catch (err) {
    await starting.then(
      (server) => server.close(),
      () => undefined,
    );
    throw err;
  }
  const server = await starting;
  const db = createDatabase({ url: server.url, logger, embedded: true });
  return {
    db,
    migrationLockUrl: null,
    async close() {
      try {
        await db.close();
      } finally {
        await server.close();
      }
    },
  };
}
