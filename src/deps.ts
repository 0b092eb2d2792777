import type { DestinationStream, Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from './config';
import type { Database } from './db/database';
import { loadSpec, type SpecDocument } from './http/spec';
import { createLogger } from './logger';
import { ExpiryCleanup } from './maintenance/expiry-cleanup';
import type { OutboxOptions } from './mail/outbox';
import { createMetrics, type Metrics } from './metrics';
import { USER_STATE_CHANNEL, UserStateListener } from './sessions/user-state-listener';
import type { EphemeralStore } from './state/ephemeral-store';
import { openDatabase, type OpenedDatabase } from './wiring/database';
import { loadSecretKeys } from './wiring/keys';
import { createServices, type Services } from './wiring/services';
import { openStore } from './wiring/store';

/** Everything the apps, the CLI and the scripts use, built once per process by createDeps. */
export interface Deps extends Services {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  spec: SpecDocument;
  db: Database;
  /** URL of the database, for the migration lock session; null on the embedded server. */
  migrationLockUrl: string | null;
  redis: Redis | null;
  /** Prefix of every Redis key this instance writes (replicas of one deployment share it). */
  redisKeyPrefix: string;
  /** AES-256-GCM key for third-party secrets at rest. */
  encryptionKey: Buffer;
  store: EphemeralStore;
  /** LISTENs for user-state changes for the cache; null on the embedded server. */
  userStateListener: UserStateListener | null;
  /** Deletes expired rows on a timer once started (startService does); stopped by close(). */
  expiryCleanup: ExpiryCleanup;
  close(): Promise<void>;
}

export interface DepsOptions {
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: DestinationStream;
  logger?: Logger;
  /** Prefix for Redis keys, so test files sharing one Redis do not see each other's state. */
  redisKeyPrefix?: string;
  /** The clock TOTP codes are checked against (milliseconds); tests fix it. */
  clock?: () => number;
  /** Mail retry pacing; tests shorten it. */
  mail?: OutboxOptions;
  /** The database, when the caller opened it already (to start it early); opened here if not. */
  database?: Promise<OpenedDatabase>;
}

/** Keys, then the database, then the short-lived store, then the services over them. */
export async function createDeps(config: Readonly<Config>, opts: DepsOptions = {}): Promise<Deps> {
  const logger = opts.logger ?? createLogger(config.logLevel, opts.logDestination);
  const metrics = createMetrics();
  const spec = loadSpec();
  const keys = loadSecretKeys(config, logger);
  const database = await (opts.database ?? openDatabase(config, logger));
  const redisKeyPrefix = opts.redisKeyPrefix ?? 'auth:';
  const state = openStore(config, logger, redisKeyPrefix);
  const { db } = database;
  // The embedded server multiplexes every connection onto one session, so a LISTEN there would
  // not be a connection of its own; it runs one instance anyway and reads the database each time.
  const userStateListener = database.migrationLockUrl
    ? new UserStateListener({
        url: database.migrationLockUrl,
        logger,
        notify: async (payload) => {
          await db.sequelize.query('SELECT pg_notify(:channel, :payload)', {
            replacements: { channel: USER_STATE_CHANNEL, payload },
          });
        },
      })
    : null;
  const services = createServices({
    config,
    logger,
    metrics,
    keys,
    db,
    redis: state.redis,
    redisKeyPrefix,
    store: state.store,
    userStateListener,
    clock: opts.clock ?? Date.now,
    mail: opts.mail ?? {},
  });
  if (userStateListener && services.userStateCache) {
    userStateListener.start(services.userStateCache);
  }
  const expiryCleanup = new ExpiryCleanup({
    sequelize: db.sequelize,
    metrics,
    logger,
    intervalSeconds: config.cleanupIntervalSeconds,
  });

  return {
    ...services,
    config,
    logger,
    metrics,
    spec,
    db,
    migrationLockUrl: database.migrationLockUrl,
    redis: state.redis,
    redisKeyPrefix,
    encryptionKey: keys.encryption,
    store: state.store,
    userStateListener,
    expiryCleanup,
    async close() {
      // Queued mails first, while the database still answers; then the reverse of the order
      // above: the listener, the store, then the database.
      const closers = [
        // A clean-up pass in progress finishes its batch first.
        () => expiryCleanup.stop(),
        () => services.outbox.close(5_000),
        () => services.passwords.close(),
        () => userStateListener?.close(),
        () => state.close(),
        () => database.close(),
      ];
      for (const close of closers) {
        try {
          await close();
        } catch (err) {
          logger.warn({ err }, 'error while closing a dependency');
        }
      }
    },
  };
}
