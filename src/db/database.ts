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

/**
 * Deadlines on every step of a database call, so that a dead or silent PostgreSQL (refusing,
 * hung, or accepting connections and never answering) never holds a request or the pool:
 * - acquiring a pooled connection (waiting for a free one, or opening one) at most ACQUIRE;
 * - opening the TCP connection and the start-up handshake at most CONNECT (inside ACQUIRE);
 *   both are generous, because a loaded machine can take seconds to start a backend, and a
 *   request that waits that long still gets its 503 from the request deadline;
 * - a statement at most STATEMENT on the server (it cancels, the connection stays usable);
 * - an answer at most QUERY on the client: past it the connection is marked invalid and the
 *   pool destroys it instead of reusing a socket that may never answer again. It is a little
 *   above STATEMENT so that a slow but live server reports its own cancellation first.
 * The request deadline (src/http/deadline.ts) bounds what a request waits in total to 4 s.
 */
export const DB_DEADLINES = {
  acquireMs: 5_000,
  connectMs: 5_000,
  statementMs: 3_000,
  queryMs: 3_500,
  /** A transaction left open by a lost client does not hold row locks for long. */
  idleInTransactionMs: 10_000,
} as const;

export interface DatabaseOptions {
  url: string;
  logger: Logger;
  poolMax?: number;
  /** Set for the embedded server, which has a single backend. */
  embedded?: boolean;
  /**
   * false for maintenance work (migrations) that may legitimately run longer than a request:
   * only the connect deadline applies.
   */
  requestDeadlines?: boolean;
}

export function createDatabase(opts: DatabaseOptions): Database {
  // The embedded server queues every connection on one backend and ignores statement_timeout;
  // it serves one developer, so it keeps the connect deadline only.
  const deadlines = (opts.requestDeadlines ?? true) && !opts.embedded;
  const sequelize = new Sequelize(opts.url, {
    dialect: 'postgres',
    logging: false,
    pool: {
      max: opts.poolMax ?? (opts.embedded ? 2 : 10),
      min: 0,
      idle: 10_000,
      // A request waits at most this long for a connection, then gets 503.
      acquire: deadlines ? DB_DEADLINES.acquireMs : 60_000,
    },
    dialectOptions: {
      connectionTimeoutMillis: DB_DEADLINES.connectMs,
      application_name: 'auth-service',
      // Dead peers are noticed by the kernel too, not only by the deadlines above.
      keepAlive: true,
      ...(deadlines
        ? {
            statement_timeout: DB_DEADLINES.statementMs,
            query_timeout: DB_DEADLINES.queryMs,
            idle_in_transaction_session_timeout: DB_DEADLINES.idleInTransactionMs,
          }
        : {}),
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
