import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { normaliseEmail } from '../accounts/email';
import { assertNewPassword, type PasswordHasher } from '../accounts/passwords';
import type { UserRecord, UsersRepository } from '../accounts/users.repository';
import type { Database, Tx } from '../db/database';
import {
  ErrorCode,
  ForbiddenError,
  InvalidCredentialsError,
  MfaRequiredError,
  UnauthorizedError,
} from '../errors';
import type { AppTokensRepository } from '../app-tokens/app-tokens.repository';
import type { Metrics } from '../metrics';
import type { AccessTokens } from './access-tokens';
import type { SessionAuth } from './authenticator';
import type { RateLimits } from './rate-limits';
import type { RefreshTokenRecord, RefreshTokensRepository } from './refresh-tokens.repository';
import type {
  SessionClient,
  SessionEndReason,
  SessionRecord,
  SessionScope,
  SessionsRepository,
} from './sessions.repository';
import { waitPastCutoff } from './token-cutoffs';

/** A freshly issued session: the handler's view turns it into the spec's TokenResponse. */
export interface TokenPair {
  accessToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  refreshToken: string;
}

export interface SessionsServiceDeps {
  db: Pick<Database, 'transaction'>;
  users: UsersRepository;
  refreshTokens: RefreshTokensRepository;
  sessions: SessionsRepository;
  appTokens: Pick<AppTokensRepository, 'deleteAllOfUser'>;
  passwords: PasswordHasher;
  tokens: AccessTokens;
  rateLimits: RateLimits;
  metrics: Metrics;
  logger: Logger;
  refreshTokenExpireDays: number;
  refreshTokenReuseGraceSeconds: number;
  /** REQUIRE_VERIFIED_EMAIL: a correct password of an unverified account is refused (403). */
  requireVerifiedEmail: boolean;
  /** Starts the second step of a login for an account with an active factor. */
  mfaChallenges: { create(userId: string): Promise<{ token: string; expiresIn: number }> };
}

/** 256 random bits; only its SHA-256 is stored. */
function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function invalidRefreshToken(): UnauthorizedError {
  return new UnauthorizedError(
    ErrorCode.invalidRefreshToken,
    'The refresh token is invalid, expired or revoked.',
  );
}

type RefreshOutcome =
  | { kind: 'issued'; pair: TokenPair }
  | { kind: 'invalid' }
  | { kind: 'reused'; token: RefreshTokenRecord };

/**
 * Sessions: a login starts a session (a `sessions` row, whose id is the refresh-token family and
 * the `sid` of its access tokens); every refresh spends one token and issues the next in the
 * same family. Ending a session in PostgreSQL revokes all of its tokens at once, on every
 * replica; no revocation lives anywhere else. Locking protocol, to keep concurrent calls
 * deterministic and free of deadlocks: a transaction takes the user's row first (FOR SHARE to
 * issue tokens, FOR UPDATE to end sessions) and session and refresh-token rows after it.
 */
export class SessionsService {
  constructor(private readonly d: SessionsServiceDeps) {}

  /**
   * Wrong password, unknown email and inactive account are indistinguishable: same error,
   * the same bcrypt work (a dummy hash stands in for a missing account) and the same metric
   * outcome.
   */
  async login(email: string, password: string, client: SessionClient): Promise<TokenPair> {
    const { ip } = client;
    const normalised = normaliseEmail(email);
    await this.d.rateLimits.beginLogin(ip, normalised);
    let pair: TokenPair;
    try {
      pair = await this.checkPasswordAndStart(normalised, password, client);
    } catch (err) {
      if (err instanceof MfaRequiredError || isEmailNotVerified(err)) {
        // The password was right: the client's failures are cleared as after a login.
        await this.d.rateLimits.loginSucceeded(ip, normalised);
      } else if (!(err instanceof InvalidCredentialsError)) {
        // No guess was judged (hashing at capacity, a dependency down): give the slot back.
        await this.d.rateLimits.cancelLogin(ip, normalised);
      }
      throw err;
    }
    this.d.metrics.logins.inc({ outcome: 'success' });
    await this.d.rateLimits.loginSucceeded(ip, normalised);
    return pair;
  }

  private async checkPasswordAndStart(
    email: string,
    password: string,
    client: SessionClient,
  ): Promise<TokenPair> {
    const { ip } = client;
    const user = await this.d.users.findByEmail(email);
    if (!user) {
      await this.d.passwords.verifyDummy(password, ip);
      this.d.metrics.logins.inc({ outcome: 'invalid_credentials' });
      throw new InvalidCredentialsError();
    }
    const ok = await this.d.passwords.verify(password, user.hashedPassword, ip);
    if (!ok || !user.isActive) {
      this.d.metrics.logins.inc({ outcome: 'invalid_credentials' });
      throw new InvalidCredentialsError();
    }
    // Only after the password is proven, so neither answer tells anything about an account.
    if (this.d.requireVerifiedEmail && !user.emailVerifiedAt) {
      this.d.metrics.logins.inc({ outcome: 'email_not_verified' });
      throw new ForbiddenError(
        'Verify your email address before logging in.',
        ErrorCode.emailNotVerified,
      );
    }
    if (user.mfaEnabled) {
      // Before the challenge: a new hash ends pending challenges (a trigger), this one included.
      await this.upgradeHash(user, password, ip);
      const challenge = await this.d.mfaChallenges.create(user.id);
      this.d.metrics.logins.inc({ outcome: 'mfa_required' });
      throw new MfaRequiredError(challenge.token, challenge.expiresIn);
    }
    const pair = await this.d.db.transaction(async (t) => {
      // The password may have changed, or the account been deactivated, while bcrypt ran.
      const current = await this.lockUser(user.id, 'share', t);
      if (!current?.isActive || current.hashedPassword !== user.hashedPassword) return null;
      const sessionId = await this.d.sessions.create(current.id, new Date(), client, t);
      return (await this.issuePair(current, { familyId: sessionId, parentId: null }, t)).pair;
    });
    if (!pair) {
      this.d.metrics.logins.inc({ outcome: 'changed_meanwhile' });
      throw new InvalidCredentialsError();
    }
    await this.upgradeHash(user, password, ip);
    return pair;
  }

  /**
   * Starts a session for a user whose credentials the caller has just checked inside `t` (the
   * second step of a login). Null when the account is no longer active.
   */
  async startSessionIn(userId: string, client: SessionClient, t: Tx): Promise<TokenPair | null> {
    const user = await this.lockUser(userId, 'share', t);
    if (!user?.isActive) return null;
    const sessionId = await this.d.sessions.create(user.id, new Date(), client, t);
    const { pair } = await this.issuePair(user, { familyId: sessionId, parentId: null }, t);
    this.d.metrics.logins.inc({ outcome: 'success' });
    return pair;
  }

  /**
   * A hash made under another BCRYPT_COST is replaced by one at the current cost, so that
   * checking any account costs the same as checking the dummy hash. Best effort: the login
   * has succeeded either way.
   */
  private async upgradeHash(user: UserRecord, password: string, ip: string): Promise<void> {
    if (!this.d.passwords.needsRehash(user.hashedPassword)) return;
    try {
      const hashedPassword = await this.d.passwords.hash(password, ip);
      await this.d.users.replacePasswordHash(user.id, user.hashedPassword, hashedPassword);
    } catch (err) {
      this.d.logger.warn(
        { userId: user.id, error: err instanceof Error ? err.name : typeof err },
        'could not rehash a password at the current cost',
      );
    }
  }

  /**
   * Spends a refresh token for a new pair. A spent token presented again within the grace
   * window (two tabs refreshing at once) gets a fresh sibling pair in the same family; after
   * the window it is treated as stolen and the whole family is revoked.
   */
  async refresh(token: string): Promise<TokenPair> {
    const hash = hashRefreshToken(token);
    const found = await this.d.refreshTokens.findByHash(hash);
    if (!found) throw invalidRefreshToken();
    const outcome = await this.d.db.transaction(async (t): Promise<RefreshOutcome> => {
      const user = await this.lockUser(found.userId, 'share', t);
      const row = await this.d.refreshTokens.findByHashForUpdate(hash, t);
      const now = Date.now();
      if (!row || row.revokedAt || row.expiresAt.getTime() <= now) return { kind: 'invalid' };
      if (row.usedAt) {
        const graceMs = this.d.refreshTokenReuseGraceSeconds * 1000;
        if (now - row.usedAt.getTime() >= graceMs) return { kind: 'reused', token: row };
      }
      if (!user?.isActive) return { kind: 'invalid' };
      // Also refuses a session ended without revoking its tokens (an operator's SQL).
      if (!(await this.d.sessions.touch(row.familyId, new Date(now), t))) {
        return { kind: 'invalid' };
      }
      const pair = await this.issuePair(user, { familyId: row.familyId, parentId: row.id }, t);
      if (!row.usedAt) await this.d.refreshTokens.markUsed(row.id, pair.id, new Date(now), t);
      return { kind: 'issued', pair: pair.pair };
    });
    if (outcome.kind === 'issued') return outcome.pair;
    if (outcome.kind === 'reused') {
      // Outside the row lock above, so that two replays of one family cannot deadlock.
      await this.endSessions(outcome.token.userId, { ids: [outcome.token.familyId] }, 'reuse');
      this.d.logger.warn(
        { userId: outcome.token.userId, sessionId: outcome.token.familyId },
        'a spent refresh token was presented again: its session is ended',
      );
      throw new UnauthorizedError(
        ErrorCode.refreshTokenReused,
        'The refresh token was already used; the session has been ended.',
      );
    }
    throw invalidRefreshToken();
  }

  /**
   * Ends the caller's session (the token's `sid`), and the session of `refreshToken` if it
   * belongs to the same user: their refresh tokens and every access token issued into them stop
   * working at once, on every replica.
   */
  async logout(auth: SessionAuth, refreshToken?: string): Promise<void> {
    const other = refreshToken
      ? await this.d.refreshTokens.findByHash(hashRefreshToken(refreshToken))
      : null;
    const ids = [auth.claims.sid];
    if (other && other.userId === auth.user.id) ids.push(other.familyId);
    await this.endSessions(auth.user.id, { ids }, 'logout');
  }

  /**
   * Ends one session of a user by id. False when it is not one of the user's live sessions
   * (unknown, another user's, or already ended), so callers can answer 404 without a second look.
   */
  async endSession(userId: string, sessionId: string): Promise<boolean> {
    const ended = await this.endSessions(userId, { ids: [sessionId] }, 'session_ended');
    if (ended.length === 0) this.d.metrics.sessionsEnded.inc({ outcome: 'not_found' });
    return ended.length === 1;
  }

  /** The user's live sessions, newest first. */
  listSessions(userId: string): Promise<SessionRecord[]> {
    return this.d.sessions.listLive(userId, new Date());
  }

  /** Ends every session of the user but `keepSessionId` (null: every one); returns their ids. */
  async endOtherSessions(userId: string, keepSessionId: string | null): Promise<string[]> {
    return this.endSessions(userId, { allExcept: keepSessionId }, 'session_ended');
  }

  /**
   * Changes the caller's password and ends every other session of the user (their refresh and
   * access tokens stop working); the caller's own session goes on.
   */
  async changePassword(
    auth: SessionAuth,
    currentPassword: string,
    newPassword: string,
    ip: string,
  ): Promise<void> {
    assertNewPassword(newPassword, '/body/new_password');
    const wrong = () =>
      new ForbiddenError('The current password is incorrect.', ErrorCode.invalidCurrentPassword);
    // Guessing the current password with a stolen token is throttled like logins.
    await this.d.rateLimits.beginLogin(ip, auth.user.email);
    let ok: boolean;
    try {
      ok = await this.d.passwords.verify(currentPassword, auth.user.hashedPassword, ip);
    } catch (err) {
      await this.d.rateLimits.cancelLogin(ip, auth.user.email);
      throw err;
    }
    if (!ok) throw wrong();
    await this.d.rateLimits.loginSucceeded(ip, auth.user.email);
    const hashedPassword = await this.d.passwords.hash(newPassword, ip);
    await this.d.db.transaction(async (t) => {
      const user = await this.lockUser(auth.user.id, 'update', t);
      if (!user)
        throw new UnauthorizedError(ErrorCode.invalidToken, 'The account no longer exists.');
      // Changed by another request since this one read it: the check above proves nothing.
      if (user.hashedPassword !== auth.user.hashedPassword) throw wrong();
      await this.d.users.update(user.id, { hashedPassword }, t);
      await this.d.sessions.end(
        user.id,
        { allExcept: auth.claims.sid },
        'password_change',
        new Date(),
        t,
      );
      // Scripts holding the old credentials stop too. (A reset and a deactivation end app
      // tokens through tokens_valid_after; a change keeps the caller's own access token, so it
      // cannot move that cutoff.)
      await this.d.appTokens.deleteAllOfUser(user.id, t);
    });
  }

  /**
   * Ends every session of a user: access tokens issued until now are refused and every
   * refresh token is revoked. For flows that reset a password without a session (pass their
   * transaction to commit it together with the new hash).
   */
  async endAllSessions(userId: string, transaction?: Tx): Promise<void> {
    const run = async (t: Tx) => {
      const user = await this.lockUser(userId, 'update', t);
      if (!user) return;
      const cutoff = new Date();
      await this.d.users.update(userId, { tokensValidAfter: cutoff }, t);
      await this.d.sessions.end(userId, { allExcept: null }, 'sessions_ended', cutoff, t);
    };
    if (transaction) await run(transaction);
    else await this.d.db.transaction(run);
  }

  /** A new access token and refresh token in `family`. The caller holds the user's row lock. */
  private async issuePair(
    user: UserRecord,
    at: { familyId: string; parentId: string | null },
    t: Tx,
  ): Promise<{ pair: TokenPair; id: string }> {
    await waitPastCutoff(user.tokensValidAfter);
    const access = this.d.tokens.issue(user.id, at.familyId);
    const refresh = newRefreshToken();
    const now = new Date();
    const row = await this.d.refreshTokens.insert(
      {
        userId: user.id,
        familyId: at.familyId,
        parentId: at.parentId,
        tokenHash: refresh.hash,
        accessJti: access.jti,
        createdAt: now,
        expiresAt: new Date(now.getTime() + this.d.refreshTokenExpireDays * 86_400_000),
      },
      t,
    );
    return {
      id: row.id,
      pair: { accessToken: access.token, expiresIn: access.expiresIn, refreshToken: refresh.token },
    };
  }

  /** Ends sessions of a user under the user's row lock (see the locking protocol above). */
  private async endSessions(
    userId: string,
    scope: SessionScope,
    reason: SessionEndReason,
  ): Promise<string[]> {
    const ended = await this.d.db.transaction(async (t) => {
      await this.lockUser(userId, 'update', t);
      return this.d.sessions.end(userId, scope, reason, new Date(), t);
    });
    if (ended.length > 0) this.d.metrics.sessionsEnded.inc({ outcome: reason }, ended.length);
    return ended;
  }

  private lockUser(userId: string, mode: 'share' | 'update', t: Tx): Promise<UserRecord | null> {
    return this.d.users.lock(userId, mode, t);
  }
}

function isEmailNotVerified(err: unknown): boolean {
  return err instanceof ForbiddenError && err.code === ErrorCode.emailNotVerified;
}
