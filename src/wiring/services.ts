import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AccountDeletionService } from '../accounts/account-deletion.service';
import { AccountTokensRepository } from '../accounts/account-tokens.repository';
import { AccountsService } from '../accounts/accounts.service';
import { EmailVerificationService } from '../accounts/email-verification.service';
import { SecretTokens } from '../accounts/mailed-tokens';
import { PasswordResetService } from '../accounts/password-reset.service';
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
import { logTransport, smtpTransport, type MailTransport } from '../mail/mail-transport';
import { MailOutbox, type OutboxOptions } from '../mail/outbox';
import type { Metrics } from '../metrics';
import { MfaChallenges } from '../mfa/mfa-challenges';
import { MfaRepository } from '../mfa/mfa.repository';
import { MfaService } from '../mfa/mfa.service';
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
  /** The clock TOTP codes are checked against. */
  clock: () => number;
  mail: OutboxOptions;
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
  /** Mints mailed tokens and mfa_tokens (one place, so tests can count the work). */
  secretTokens: SecretTokens;
  /** The in-process mail queue; closed first at shutdown. */
  outbox: MailOutbox;
  passwordReset: PasswordResetService;
  emailVerification: EmailVerificationService;
  mfa: MfaService;
}

/**
 * SMTP when SMTP_URL is set; otherwise the log transport outside production, and no mail at
 * all in production (mail-dependent operations answer 503 mail_not_configured).
 */
function mailTransport(config: Readonly<Config>, logger: Logger): MailTransport | null {
  if (config.mail.smtpUrl) return smtpTransport(config.mail.smtpUrl, config.mail.from);
  if (config.production) {
    logger.warn(
      'SMTP_URL is not set: no mail can be sent; password reset and verification resends answer 503, registration skips its verification mail',
    );
    return null;
  }
  logger.warn(
    'SMTP_URL is not set: mails are written to the log in full, tokens included (development only)',
  );
  return logTransport(logger, config.mail.from);
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
  const secretTokens = new SecretTokens();
  const mfaRepo = new MfaRepository(sql);
  const outbox = new MailOutbox(mailTransport(config, logger), logger, metrics, i.mail);
  const accountTokens = new AccountTokensRepository(sql);
  const emailVerification = new EmailVerificationService({
    db,
    users,
    accountTokens,
    secretTokens,
    outbox,
    rateLimits,
    publicBaseUrl: config.mail.publicBaseUrl,
    ttlHours: config.emailVerifyTtlHours,
  });
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
    requireVerifiedEmail: config.requireVerifiedEmail,
    mfaChallenges: new MfaChallenges(mfaRepo, secretTokens, metrics),
  });
  const mfa = new MfaService({
    db,
    users,
    repo: mfaRepo,
    box: secretBox,
    passwords,
    rateLimits,
    sessions,
    metrics,
    now: i.clock,
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
    accounts: new AccountsService(users, passwords, metrics, emailVerification),
    accountDeletion: new AccountDeletionService(
      db,
      users,
      passwords,
      rateLimits,
      auditLog,
      metrics,
      mfa,
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
      mfaRepo,
    ),
    secretRotation: new SecretRotationService(
      db,
      new SealedValuesRepository(sql),
      auditLog,
      secretBox,
    ),
    discogs,
    secretTokens,
    outbox,
    passwordReset: new PasswordResetService({
      db,
      users,
      accountTokens,
      secretTokens,
      passwords,
      sessions,
      outbox,
      rateLimits,
      publicBaseUrl: config.mail.publicBaseUrl,
      ttlMinutes: config.passwordResetTtlMinutes,
    }),
    emailVerification,
    mfa,
  };
}
