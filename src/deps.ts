import type { DestinationStream, Logger } from 'pino';
import { Redis } from 'ioredis';
import { AccountsService } from './accounts/accounts.service';
import { AdminUsersRepository } from './admin/admin-users.repository';
import { AdminUsersService } from './admin/admin-users.service';
import { AppConfigRepository } from './admin/app-config.repository';
import { AuditLogRepository } from './admin/audit-log.repository';
import { DiscogsConfigService } from './admin/discogs-config.service';
import { SealedValuesRepository } from './admin/sealed-values.repository';
import { SecretRotationService } from './admin/secret-rotation.service';
import { PasswordHasher } from './accounts/passwords';
import { UsersRepository } from './accounts/users.repository';
import type { Config } from './config';
import { SecretBox } from './crypto/secret-box';
import { createDatabase, type Database } from './db/database';
import { HealthService, type Lifecycle } from './health/health.service';
import { loadSpec, type SpecDocument } from './http/spec';
import { loadOrCreateSecret } from './local-secrets';
import { createLogger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { AccessTokens } from './sessions/access-tokens';
import { Authenticator } from './sessions/authenticator';
import { RateLimits } from './sessions/rate-limits';
import { RefreshTokensRepository } from './sessions/refresh-tokens.repository';
import { StoreRevocations, type RevocationStore } from './sessions/revocations';
import { SessionsService } from './sessions/sessions.service';
import { TokenCutoffExemptions } from './sessions/token-cutoffs';
import { MemoryStore, RedisStore, type EphemeralStore } from './state/ephemeral-store';

export interface Deps {
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
  lifecycle: Lifecycle;
  users: UsersRepository;
  passwords: PasswordHasher;
  accessTokens: AccessTokens;
  revocations: RevocationStore;
  rateLimits: RateLimits;
  authenticator: Authenticator;
  accounts: AccountsService;
  sessions: SessionsService;
  health: HealthService;
  /** Seals third-party secrets at rest under encryptionKey; also opens ENCRYPTION_PREVIOUS_KEYS. */
  secretBox: SecretBox;
  auditLog: AuditLogRepository;
  discogsConfig: DiscogsConfigService;
  adminUsers: AdminUsersService;
  secretRotation: SecretRotationService;
  close(): Promise<void>;
}

export interface DepsOptions {
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: DestinationStream;
  logger?: Logger;
  /** Prefix for Redis keys, so test files sharing one Redis do not see each other's state. */
  redisKeyPrefix?: string;
}

function secretKeys(config: Readonly<Config>, logger: Logger): { jwt: Buffer; encryption: Buffer } {
  let jwt = config.jwtSecret;
  if (!jwt) {
    const { key, created } = loadOrCreateSecret(config.dataDir, 'jwt-secret.key', 48);
    jwt = key;
    logger.warn(
      { dataDir: config.dataDir, created },
      'JWT_SECRET_KEY is not set: using a generated key kept in DATA_DIR (never do this in production)',
    );
  }
  let encryption = config.encryptionMasterKey;
  if (!encryption) {
    const { key, created } = loadOrCreateSecret(config.dataDir, 'encryption-master.key', 32);
    encryption = key;
    logger.warn(
      { dataDir: config.dataDir, created },
      'ENCRYPTION_MASTER_KEY is not set: using a generated key kept in DATA_DIR (never do this in production)',
    );
  }
  return { jwt, encryption };
}

export async function createDeps(config: Readonly<Config>, opts: DepsOptions = {}): Promise<Deps> {
  const logger = opts.logger ?? createLogger(config.logLevel, opts.logDestination);
  const metrics = createMetrics();
  const spec = loadSpec();
  const keys = secretKeys(config, logger);

  const closers: (() => Promise<void> | void)[] = [];
  let dbUrl: string;
  let embedded = false;
  if (config.database.kind === 'url') {
    dbUrl = config.database.url;
  } else {
    const { startEmbeddedPostgres } = await import('./db/embedded');
    const server = await startEmbeddedPostgres({ dataDir: config.database.dataDir, logger });
    closers.unshift(() => server.close());
    dbUrl = server.url;
    embedded = true;
  }
  const db = createDatabase({ url: dbUrl, logger, embedded });
  closers.unshift(() => db.close());

  const redisKeyPrefix = opts.redisKeyPrefix ?? 'auth:';
  let redis: Redis | null = null;
  let store: EphemeralStore;
  if (config.redisUrl) {
    redis = new Redis(config.redisUrl, {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      enableOfflineQueue: true,
    });
    redis.on('error', (err) => logger.warn({ err: { message: err.message } }, 'redis error'));
    const client = redis;
    closers.unshift(async () => {
      await client.quit().catch(() => client.disconnect());
    });
    store = new RedisStore(redis, redisKeyPrefix);
  } else {
    const memory = new MemoryStore();
    closers.unshift(() => memory.close());
    store = memory;
    logger.warn(
      'REDIS_URL is not set: short-lived state is kept in process (single-instance mode; several replicas need Redis)',
    );
  }

  const users = new UsersRepository(db.sequelize);
  const passwords = new PasswordHasher(
    config.bcryptCost,
    { concurrency: config.hashConcurrency, queueLimit: config.hashQueueLimit },
    metrics,
  );
  const accessTokens = new AccessTokens({
    secret: keys.jwt,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    expireMinutes: config.jwtExpireMinutes,
  });
  const revocations = new StoreRevocations(store);
  const exemptions = new TokenCutoffExemptions(store);
  const rateLimits = new RateLimits({ config, redis, redisKeyPrefix, metrics, logger });
  const lifecycle: Lifecycle = { shuttingDown: false };
  // Values sealed under a previous key still open; new values are sealed under the current one.
  const secretBox = new SecretBox(keys.encryption, config.encryptionPreviousKeys);
  const auditLog = new AuditLogRepository(db.sequelize);
  const sessions = new SessionsService({
    users,
    refreshTokens: new RefreshTokensRepository(db.sequelize),
    passwords,
    tokens: accessTokens,
    revocations,
    exemptions,
    rateLimits,
    metrics,
    logger,
    refreshTokenExpireDays: config.refreshTokenExpireDays,
    refreshTokenReuseGraceSeconds: config.refreshTokenReuseGraceSeconds,
  });

  return {
    config,
    logger,
    metrics,
    spec,
    db,
    migrationLockUrl: embedded ? null : dbUrl,
    redis,
    redisKeyPrefix,
    encryptionKey: keys.encryption,
    store,
    lifecycle,
    users,
    passwords,
    accessTokens,
    revocations,
    rateLimits,
    authenticator: new Authenticator(accessTokens, users, revocations, metrics, exemptions),
    accounts: new AccountsService(users, passwords, metrics),
    sessions,
    health: new HealthService(db, redis, lifecycle),
    secretBox,
    auditLog,
    discogsConfig: new DiscogsConfigService(
      db.sequelize,
      new AppConfigRepository(db.sequelize),
      auditLog,
      secretBox,
    ),
    adminUsers: new AdminUsersService(
      db.sequelize,
      users,
      new AdminUsersRepository(users),
      passwords,
      auditLog,
      sessions,
    ),
    secretRotation: new SecretRotationService(
      db.sequelize,
      new SealedValuesRepository(db.sequelize),
      auditLog,
      secretBox,
    ),
    async close() {
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
