import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AccountDeletionService } from '../accounts/account-deletion.service';
import { AccountsService } from '../accounts/accounts.service';
import { PasswordHasher } from '../accounts/passwords';
import { UsersRepository } from '../accounts/users.repository';
import { AdminUsersRepository } from '../admin/admin-users.repository';
import { AppTokensRepository } from '../app-tokens/app-tokens.repository';
import { AppTokensService } from '../app-tokens/app-tokens.service';
import { AdminUsersService } from '../admin/admin-users.service';
import { AppConfigRepository } from '../admin/app-config.repository';
import { AuditLogRepository } from '../admin/audit-log.repository';
import { DiscogsConfigService } from '../admin/discogs-config.service';
import { SealedValuesRepository } from '../admin/sealed-values.repository';
import { SecretRotationService } from '../admin/secret-rotation.service';
import type { Config } from '../config';
import { SecretBox } from '../crypto/secret-box';
import { DiscogsClient } from '../discogs/discogs.client';
import { DiscogsConnectionService } from '../discogs/discogs-connection.service';
import { OAuthTokensRepository } from '../discogs/oauth-tokens.repository';
import type { Database } from '../db/database';
import { HealthService, type Lifecycle } from '../health/health.service';
import type { Metrics } from '../metrics';
import { AccessTokens } from '../sessions/access-tokens';
import { Authenticator } from '../sessions/authenticator';
import { RateLimits } from '../sessions/rate-limits';
import { RefreshTokensRepository } from '../sessions/refresh-tokens.repository';
import { CachedSessionState } from '../sessions/cached-session-state';
import { DatabaseSessionState, type SessionState } from '../sessions/session-state';
import { SessionsRepository } from '../sessions/sessions.repository';
import { SessionsService } from '../sessions/sessions.service';
import type { UserStateListener } from '../sessions/user-state-listener';
import type { EphemeralStore } from '../state/ephemeral-store';
import type { SecretKeys } from './keys';

export interface ServiceInputs {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  keys: SecretKeys;
  db: Database;
  redis: Redis | null;
  redisKeyPrefix: string;
  store: EphemeralStore;
  /** Set when the database can notify this process of user changes (not the embedded one). */
  userStateListener: UserStateListener | null;
}

export interface Services {
  lifecycle: Lifecycle;
  users: UsersRepository;
  passwords: PasswordHasher;
  accessTokens: AccessTokens;
  /** The authenticated path's one look-up (user and session); a cache may wrap it. */
  sessionState: SessionState;
  /** The cache in sessionState, when there is one; the listener reports changes to it. */
  userStateCache: CachedSessionState | null;
  rateLimits: RateLimits;
  authenticator: Authenticator;
  accounts: AccountsService;
  accountDeletion: AccountDeletionService;
  appTokens: AppTokensService;
  sessions: SessionsService;
  health: HealthService;
  /** Seals third-party secrets at rest under the current key; also opens ENCRYPTION_PREVIOUS_KEYS. */
  secretBox: SecretBox;
  auditLog: AuditLogRepository;
  discogsConfig: DiscogsConfigService;
  adminUsers: AdminUsersService;
  secretRotation: SecretRotationService;
  /** Users' Discogs account connections (OAuth 1.0a). */
  discogs: DiscogsConnectionService;
}

/** Repositories and services over an open database and store; nothing here opens a connection. */
export function createServices(i: ServiceInputs): Services {
  const { config, logger, metrics, db, redis, redisKeyPrefix } = i;
  const sql = db.sequelize;
  const users = new UsersRepository(sql);
  const passwords = new PasswordHasher(
    config.bcryptCost,
    { concurrency: config.hashConcurrency, queueLimit: config.hashQueueLimit },
    metrics,
  );
  const accessTokens = new AccessTokens({
    secret: i.keys.jwt,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    expireMinutes: config.jwtExpireMinutes,
  });
  const fromDatabase = new DatabaseSessionState(sql);
  const userStateCache = i.userStateListener
    ? new CachedSessionState(fromDatabase, i.userStateListener, metrics)
    : null;
  const sessionState = userStateCache ?? fromDatabase;
  const rateLimits = new RateLimits({ config, redis, redisKeyPrefix, metrics, logger });
  const lifecycle: Lifecycle = { shuttingDown: false };
  // Values sealed under a previous key still open; new values are sealed under the current one.
  const secretBox = new SecretBox(i.keys.encryption, config.encryptionPreviousKeys);
  const auditLog = new AuditLogRepository(sql);
  const appTokensRepository = new AppTokensRepository(sql);
  const appTokens = new AppTokensService(db, users, appTokensRepository, metrics);
  const sessions = new SessionsService({
    db,
    users,
    refreshTokens: new RefreshTokensRepository(sql),
    sessions: new SessionsRepository(sql),
    appTokens: appTokensRepository,
    passwords,
    tokens: accessTokens,
    rateLimits,
    metrics,
    logger,
    refreshTokenExpireDays: config.refreshTokenExpireDays,
    refreshTokenReuseGraceSeconds: config.refreshTokenReuseGraceSeconds,
  });

  const discogsConfig = new DiscogsConfigService(
    db,
    new AppConfigRepository(sql),
    auditLog,
    secretBox,
  );
  const discogs = new DiscogsConnectionService({
    db,
    users,
    credentials: () => discogsConfig.credentials(),
    client: new DiscogsClient({
      apiUrl: config.discogs.apiUrl,
      userAgent: config.discogs.userAgent,
      timeoutMs: config.discogs.timeoutMs,
      metrics,
      logger,
    }),
    store: i.store,
    tokens: new OAuthTokensRepository(sql),
    box: secretBox,
    logger,
    authorizeUrl: config.discogs.authorizeUrl,
    callbackUrl: config.discogs.callbackUrl,
  });

  return {
    lifecycle,
    users,
    passwords,
    accessTokens,
    sessionState,
    userStateCache,
    rateLimits,
    authenticator: new Authenticator(accessTokens, sessionState, metrics, appTokens),
    accounts: new AccountsService(users, passwords, metrics),
    accountDeletion: new AccountDeletionService(
      db,
      users,
      passwords,
      rateLimits,
      auditLog,
      metrics,
    ),
    appTokens,
    sessions,
    health: new HealthService(db, redis, lifecycle),
    secretBox,
    auditLog,
    discogsConfig,
    adminUsers: new AdminUsersService(
      db,
      users,
      new AdminUsersRepository(sql),
      passwords,
      auditLog,
    ),
    secretRotation: new SecretRotationService(
      db,
      new SealedValuesRepository(sql),
      auditLog,
      secretBox,
    ),
    discogs,
  };
}
