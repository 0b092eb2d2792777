import type { Logger } from 'pino';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { Metrics } from '../metrics';
import { EXPIRY_STATEMENTS, type ExpiryStatement } from './expiry-statements';

// Any fixed 64-bit number other than the migration lock's. A transaction-scoped try-lock: a
// replica that finds another one cleaning skips its turn instead of queueing behind it.
const CLEANUP_LOCK_KEY = 72_033_021;

export interface ExpiryCleanupOptions {
  sequelize: Sequelize;
  metrics: Metrics;
  logger: Logger;
  /** Seconds between passes; 0 disables the timer (runOnce still works). */
  intervalSeconds: number;
  /** Rows per delete; each batch is one short transaction, so locks are held briefly. */
  batchSize?: number;
  /** Batches per table and pass, so one pass is bounded however much has piled up. */
  maxBatches?: number;
  statements?: readonly ExpiryStatement[];
}

export type PassResult = { skipped: true } | { skipped: false; deleted: Record<string, number> };

/**
 * Deletes expired rows (refresh tokens and whatever else EXPIRY_STATEMENTS lists) on a timer.
 * Safe with several replicas: each batch runs under a transaction-scoped advisory try-lock, and
 * the statements skip rows locked by anyone else. Stopped (and awaited) on shutdown.
 */
export class ExpiryCleanup {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<PassResult> | undefined;
  private stopped = false;

  constructor(private readonly opts: ExpiryCleanupOptions) {}

  /** True while a next pass is scheduled. */
  get scheduled(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Schedules passes every interval. The first one comes after a random part of the interval,
   * so replicas started together do not all try at the same moment.
   */
  start(): void {
    if (this.opts.intervalSeconds <= 0 || this.stopped || this.timer) return;
    const intervalMs = this.opts.intervalSeconds * 1000;
    const schedule = (delayMs: number) => {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        // A failed pass is logged and counted in pass(); the next one tries again.
        void this.runOnce()
          .catch(() => undefined)
          .finally(() => {
            if (!this.stopped) schedule(intervalMs);
          });
      }, delayMs);
      this.timer.unref();
    };
    schedule(Math.floor(Math.random() * intervalMs));
  }

  /** Cancels the timer and waits for a pass in progress to finish its current batch. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.current?.catch(() => undefined);
  }

  /** One pass over every statement; concurrent calls in one process share the pass. */
  runOnce(): Promise<PassResult> {
    this.current ??= this.pass().finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  private async pass(): Promise<PassResult> {
    const { sequelize, metrics, logger } = this.opts;
    const limit = this.opts.batchSize ?? 1_000;
    const maxBatches = this.opts.maxBatches ?? 100;
    const deleted: Record<string, number> = {};
    let batches = 0;
    try {
      statements: for (const statement of this.opts.statements ?? EXPIRY_STATEMENTS) {
        deleted[statement.table] = 0;
        for (let batch = 0; batch < maxBatches && !this.stopped; batch++, batches++) {
          const n = await sequelize.transaction(async (transaction) => {
            const [lock] = await sequelize.query<{ locked: boolean }>(
              'SELECT pg_try_advisory_xact_lock(:key) AS locked',
              { replacements: { key: CLEANUP_LOCK_KEY }, type: QueryTypes.SELECT, transaction },
            );
            if (!lock?.locked) return null;
            const rows = await sequelize.query(statement.sql, {
              replacements: { limit },
              type: QueryTypes.SELECT,
              transaction,
            });
            return rows.length;
          });
          if (n === null) {
            // Another replica is cleaning; it carries on where this pass stops.
            if (batches > 0) break statements;
            metrics.expiryCleanupPasses.inc({ outcome: 'skipped' });
            logger.debug('expiry clean-up: another replica holds the lock; skipping this pass');
            return { skipped: true };
          }
          deleted[statement.table]! += n;
          metrics.expiredRowsDeleted.inc({ table: statement.table }, n);
          if (n < limit) break;
        }
      }
    } catch (err) {
      metrics.expiryCleanupPasses.inc({ outcome: 'failed' });
      // A database outage is not a bug: the next pass tries again.
      logger.warn(
        { err: { name: (err as Error).name, message: (err as Error).message } },
        'expiry clean-up failed',
      );
      throw err;
    }
    metrics.expiryCleanupPasses.inc({ outcome: 'done' });
    logger.info({ deleted }, 'expiry clean-up done');
    return { skipped: false, deleted };
  }
}
