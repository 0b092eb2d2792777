import { Sequelize, Transaction } from 'sequelize';
import type { Logger } from 'pino';

/**
 * The handle of an open transaction. Services get one from `Database.transaction` and pass it
 * to every repository call that belongs to the unit of work; repositories never open their own.
 */
export type Tx = Transaction;

export interface Database {
  sequelize: Sequelize;
  /**
   * Runs `fn` in one READ COMMITTED transaction: committed when it resolves, rolled back when
   * it throws. The one way services run a unit of work.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Resolves when PostgreSQL answers a trivial query within the timeout. */
  ping(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  logger: Logger;
  poolMax?: number;
  /** Set for the embedded server, which has a single backend. */
  embedded?: boolean;
}

export function createDatabase(opts: DatabaseOptions): Database {
  const sequelize = new Sequelize(opts.url, {
    dialect: 'postgres',
    logging: false,
    pool: {
      max: opts.poolMax ?? (opts.embedded ? 2 : 10),
      min: 0,
      idle: 10_000,
      // A request waits at most this long for a connection, then gets 503.
      acquire: 5_000,
    },
    dialectOptions: {
      connectionTimeoutMillis: 5_000,
      statement_timeout: 15_000,
      application_name: 'auth-service',
    },
  });
  return {
    sequelize,
    transaction(fn) {
      return sequelize.transaction(
        { isolationLevel: Transaction.ISOLATION_LEVELS.READ_COMMITTED },
        fn,
      );
    },
    async ping(timeoutMs = 2_000) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          sequelize.query('SELECT 1'),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('database ping timed out')), timeoutMs);
          }),
        ]);
        return true;
      } catch (err) {
        opts.logger.warn({ err: { message: (err as Error).message } }, 'database ping failed');
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      await sequelize.close();
    },
  };
}
