import type { Logger } from 'pino';
import type { Config } from '../config';
import { createDatabase, type Database } from '../db/database';

export interface OpenedDatabase {
  db: Database;
  /** URL of the database, for the migration lock session; null on the embedded server. */
  migrationLockUrl: string | null;
  /** Closes the pool, then the embedded server if there is one. */
  close(): Promise<void>;
}

/** The configured PostgreSQL, or the embedded one in DATA_DIR when none is configured. */
export async function openDatabase(
  config: Readonly<Config>,
  logger: Logger,
): Promise<OpenedDatabase> {
  if (config.database.kind === 'url') {
    const db = createDatabase({ url: config.database.url, logger });
    return { db, migrationLockUrl: config.database.url, close: () => db.close() };
  }
  // Loaded only when used: the embedded server pulls in PGlite.
  const { startEmbeddedPostgres } = await import('../db/embedded');
  const server = await startEmbeddedPostgres({ dataDir: config.database.dataDir, logger });
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
