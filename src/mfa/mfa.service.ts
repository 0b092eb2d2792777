import { createHash } from 'node:crypto';
import { Secret } from 'otpauth';
import type { PasswordHasher } from '../accounts/passwords';
import type { UserRecord, UsersRepository } from '../accounts/users.repository';
import { totpSecretPurpose } from '../crypto/purposes';
import type { Database, Tx } from '../db/database';
import { SecretBoxError, type SecretBox } from '../crypto/secret-box';
import {
  AppError,
  ConflictError,
  ErrorCode,
  ForbiddenError,
  StoredSecretUnreadableError,
  UnauthorizedError,
} from '../errors';
import type { Metrics } from '../metrics';
import type { AuthContext } from '../sessions/authenticator';
import type { RateLimits } from '../sessions/rate-limits';
import type { SessionClient } from '../sessions/sessions.repository';
import type { SessionsService, TokenPair } from '../sessions/sessions.service';
import { hashMfaToken, MFA_MAX_FAILED_ATTEMPTS } from './mfa-challenges';
import type { MfaChallengeRecord, MfaRepository, TotpFactor } from './mfa.repository';
import { matchTotpStep, newTotpSecret, otpauthUri } from './totp';

export const RECOVERY_CODE_COUNT = 10;

export interface MfaServiceDeps {
  db: Database;
  users: UsersRepository;
  repo: MfaRepository;
  box: SecretBox;
  passwords: PasswordHasher;
  rateLimits: Pick<RateLimits, 'beginLogin' | 'cancelLogin' | 'loginSucceeded'>;
  sessions: Pick<SessionsService, 'startSessionIn'>;
  metrics: Metrics;
  /** Milliseconds since the epoch; tests fix it to compute codes. */
  now: () => number;
}

export type SecondFactor = { code: string } | { recoveryCode: string };

/** 80 random bits in base32 (16 characters), shown as four groups of four. */
function newRecoveryCode(): string {
  const b32 = new Secret({ size: 10 }).base32.toLowerCase();
  return b32.match(/.{4}/g)!.join('-');
}

/** Letter case and dashes do not matter; 80 random bits need no slow hash. */
export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(code.replace(/-/g, '').toLowerCase(), 'utf8').digest('hex');
}

const wrongCode = (status: 401 | 403) =>
  status === 401
    ? new UnauthorizedError(ErrorCode.invalidMfaCode, 'The code is wrong or was already used.')
    : new ForbiddenError('The code is wrong or was already used.', ErrorCode.invalidMfaCode);

const invalidMfaToken = () =>
  new UnauthorizedError(
    ErrorCode.invalidMfaToken,
    'The login step is unknown, spent or expired; log in again.',
  );

type VerifyOutcome =
  | { kind: 'ok'; pair: TokenPair; outcome: 'totp' | 'recovery_code' }
  | { kind: 'wrong'; outcome: 'invalid_code' | 'replayed' | 'exhausted' }
  | { kind: 'invalid_token' };

/**
 * The TOTP second factor. A code is accepted for a 30-second step later than the last
 * accepted one only (`users.totp_last_step`, updated under the user's row lock), so a code
 * cannot be used twice, on any replica.
 */
export class MfaService {
  constructor(private readonly d: MfaServiceDeps) {}

  async setup(user: UserRecord): Promise<{ secret: string; otpauth_uri: string }> {
    const secret = newTotpSecret();
    await this.d.db.transaction(async (t) => {
      const factor = await this.lockFactor(user.id, t);
      if (factor?.enabled) throw alreadyEnabled();
      await this.d.repo.setPendingSecret(
        user.id,
        this.d.box.seal(secret, totpSecretPurpose(user.id)),
        t,
      );
    });
    return { secret, otpauth_uri: otpauthUri(secret, user.email) };
  }

  /** Activates the pending factor with a first code; returns the recovery codes, once. */
  async confirm(auth: AuthContext, code: string, ip: string): Promise<string[]> {
    const { user } = auth;
    return this.guessGuarded(ip, user.email, async () => {
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
      const ok = await this.d.db.transaction(async (t) => {
        const factor = await this.lockFactor(user.id, t);
        if (factor?.enabled) throw alreadyEnabled();
        if (!factor?.secret) {
          throw new ConflictError(
            ErrorCode.mfaSetupRequired,
            'Start with POST /api/v1/auth/mfa/totp/setup.',
          );
        }
        const step = matchTotpStep(this.open(user.id, factor.secret), code, this.d.now());
        if (step === null) return false;
        await this.d.repo.enable(user.id, step, codes.map(hashRecoveryCode), t);
        return true;
      });
      if (!ok) throw wrongCode(403);
      return codes;
    });
  }

  /** Removes the factor after checking the password and a current code. */
  async disable(auth: AuthContext, password: string, code: string, ip: string): Promise<void> {
    const { user } = auth;
    if (!user.mfaEnabled) throw notEnabled();
    await this.guessGuarded(ip, user.email, async () => {
      if (!(await this.d.passwords.verify(password, user.hashedPassword, ip))) {
        throw new ForbiddenError(
          'The current password is incorrect.',
          ErrorCode.invalidCurrentPassword,
        );
      }
      const ok = await this.d.db.transaction(async (t) => {
        const factor = await this.lockFactor(user.id, t);
        if (!factor?.enabled || !factor.secret) throw notEnabled();
        if (!this.acceptsCode(user.id, factor.secret, factor.lastStep, code)) return false;
        await this.d.repo.remove(user.id, t);
        return true;
      });
      if (!ok) throw wrongCode(403);
    });
  }

  /**
   * For an operation the second factor guards (deleting the account): when the user has an
   * active factor, `code` must be a current code of it that was not accepted before, else 403
   * invalid_mfa_code. Runs in the caller's transaction under the user's row lock, so the
   * factor cannot change before the caller commits.
   */
  async requireCodeIfActiveIn(userId: string, code: string | undefined, t: Tx): Promise<void> {
    const factor = await this.lockFactor(userId, t);
    if (!factor?.enabled || !factor.secret) return;
    if (code === undefined || !this.acceptsCode(userId, factor.secret, factor.lastStep, code)) {
      throw wrongCode(403);
    }
  }

  /** The second step of a login: the mfa_token and a TOTP code or a recovery code. */
  async verify(mfaToken: string, factor: SecondFactor, client: SessionClient): Promise<TokenPair> {
    const found = await this.d.repo.findChallenge(hashMfaToken(mfaToken));
    const result: VerifyOutcome =
      found && live(found)
        ? await this.d.db.transaction((t) => this.verifyIn(found, factor, client, t))
        : { kind: 'invalid_token' };
    this.d.metrics.mfaChallenges.inc({
      outcome: result.kind === 'invalid_token' ? 'invalid_token' : result.outcome,
    });
    if (result.kind === 'ok') return result.pair;
    if (result.kind === 'wrong') throw wrongCode(401);
    throw invalidMfaToken();
  }

  private async verifyIn(
    found: MfaChallengeRecord,
    factor: SecondFactor,
    client: SessionClient,
    t: Tx,
  ): Promise<VerifyOutcome> {
    // The user's row first, then the challenge: the order every session change locks in.
    const user = await this.d.users.lock(found.userId, 'update', t);
    const challenge = await this.d.repo.lockChallenge(found.id, t);
    if (!challenge || !live(challenge)) return { kind: 'invalid_token' };
    // Deactivated, factor removed, or every session ended since the password step (a password
    // change or a deactivation also deletes pending challenges, in a trigger).
    if (
      !user?.isActive ||
      !user.mfaEnabled ||
      (user.tokensValidAfter !== null && challenge.createdAt < user.tokensValidAfter)
    ) {
      await this.d.repo.deleteChallenge(challenge.id, t);
      return { kind: 'invalid_token' };
    }
    let outcome: 'totp' | 'recovery_code' | 'invalid_code' | 'replayed';
    if ('code' in factor) {
      // The user's row is locked above.
      const totp = await this.d.repo.getFactor(user.id, t);
      const step = totp?.secret
        ? matchTotpStep(this.open(user.id, totp.secret), factor.code, this.d.now())
        : null;
      if (step === null) outcome = 'invalid_code';
      else if (totp!.lastStep !== null && step <= totp!.lastStep) outcome = 'replayed';
      else {
        await this.d.repo.setLastStep(user.id, step, t);
        outcome = 'totp';
      }
    } else {
      const used = await this.d.repo.useRecoveryCode(
        user.id,
        hashRecoveryCode(factor.recoveryCode),
        t,
      );
      outcome = used ? 'recovery_code' : 'invalid_code';
    }
    if (outcome === 'invalid_code' || outcome === 'replayed') {
      const failures = await this.d.repo.recordFailure(challenge.id, t);
      if (failures < MFA_MAX_FAILED_ATTEMPTS) return { kind: 'wrong', outcome };
      await this.d.repo.deleteChallenge(challenge.id, t);
      return { kind: 'wrong', outcome: 'exhausted' };
    }
    await this.d.repo.deleteChallenge(challenge.id, t);
    const pair = await this.d.sessions.startSessionIn(user.id, client, t);
    return pair ? { kind: 'ok', pair, outcome } : { kind: 'invalid_token' };
  }

  /**
   * Code guesses with a stolen access token are throttled like password guesses: each call
   * takes a slot of the login limiter, a success gives the client's slots back, and a call
   * whose guess was never judged (a conflict, a dependency down) returns its slot.
   */
  private async guessGuarded<T>(ip: string, email: string, fn: () => Promise<T>): Promise<T> {
    await this.d.rateLimits.beginLogin(ip, email);
    try {
      const result = await fn();
      await this.d.rateLimits.loginSucceeded(ip, email);
      return result;
    } catch (err) {
      const judged =
        err instanceof AppError &&
        (err.code === ErrorCode.invalidMfaCode || err.code === ErrorCode.invalidCurrentPassword);
      if (!judged) await this.d.rateLimits.cancelLogin(ip, email);
      throw err;
    }
  }

  /** A code of the current step (±1) that is later than the last accepted one: no replay. */
  private acceptsCode(
    userId: string,
    sealed: string,
    lastStep: number | null,
    code: string,
  ): boolean {
    const step = matchTotpStep(this.open(userId, sealed), code, this.d.now());
    return step !== null && (lastStep === null || step > lastStep);
  }

  /** The factor, under the user's row lock (taken, like every user lock, by UsersRepository). */
  private async lockFactor(userId: string, t: Tx): Promise<TotpFactor | null> {
    if (!(await this.d.users.lock(userId, 'update', t))) return null;
    return this.d.repo.getFactor(userId, t);
  }

  private open(userId: string, sealed: string): string {
    try {
      return this.d.box.open(sealed, totpSecretPurpose(userId));
    } catch (err) {
      if (!(err instanceof SecretBoxError)) throw err;
      throw new StoredSecretUnreadableError(
        'A stored TOTP secret cannot be decrypted with the configured keys; an operator must restore the key it was encrypted with.',
        err,
      );
    }
  }
}

function live(c: MfaChallengeRecord): boolean {
  return new Date(c.expiresAt).getTime() > Date.now() && c.failedAttempts < MFA_MAX_FAILED_ATTEMPTS;
}

function alreadyEnabled(): ConflictError {
  return new ConflictError(
    ErrorCode.mfaAlreadyEnabled,
    'A TOTP factor is already active; disable it first.',
  );
}

function notEnabled(): ConflictError {
  return new ConflictError(ErrorCode.mfaNotEnabled, 'No TOTP factor is active.');
}
