import type { AuditLogRepository } from '../admin/audit-log.repository';
import type { Database } from '../db/database';
import { AppError, ConflictError, ErrorCode, ForbiddenError, UnauthorizedError } from '../errors';
import type { Metrics } from '../metrics';
import type { MfaService } from '../mfa/mfa.service';
import type { RateLimits } from '../sessions/rate-limits';
import type { PasswordHasher } from './passwords';
import type { UserRecord, UsersRepository } from './users.repository';

export interface DeletionRequest {
  password: string;
  /** A current TOTP code; required when the user has an active factor. */
  code?: string;
  ip: string;
  requestId: string;
}

/**
 * An account deleted by its owner. Everything keyed to the user goes with the users row
 * (ON DELETE CASCADE), and every token is refused from the next request on, on every replica:
 * access tokens and app tokens are only accepted for a user row that exists.
 */
export class AccountDeletionService {
  constructor(
    private readonly db: Database,
    private readonly users: UsersRepository,
    private readonly passwords: PasswordHasher,
    private readonly rateLimits: Pick<RateLimits, 'beginLogin' | 'cancelLogin' | 'loginSucceeded'>,
    private readonly audit: AuditLogRepository,
    private readonly metrics: Metrics,
    private readonly mfa: Pick<MfaService, 'requireCodeIfActiveIn'>,
  ) {}

  async deleteAccount(user: UserRecord, req: DeletionRequest): Promise<void> {
    const wrong = () => {
      this.metrics.accountDeletions.inc({ outcome: 'invalid_password' });
      return new ForbiddenError(
        'The current password is incorrect.',
        ErrorCode.invalidCurrentPassword,
      );
    };
    // Guessing the password or the code with a stolen token is throttled like logins: a
    // wrong guess keeps its slot, a success gives the client's slots back, and a call whose
    // guess was never judged (a conflict, a dependency down) returns its slot.
    await this.rateLimits.beginLogin(req.ip, user.email);
    try {
      await this.deleteChecked(user, req, wrong);
    } catch (err) {
      const judged =
        err instanceof AppError &&
        (err.code === ErrorCode.invalidMfaCode || err.code === ErrorCode.invalidCurrentPassword);
      if (!judged) await this.rateLimits.cancelLogin(req.ip, user.email);
      throw err;
    }
    await this.rateLimits.loginSucceeded(req.ip, user.email);
    this.metrics.accountDeletions.inc({ outcome: 'deleted' });
  }

  private async deleteChecked(
    user: UserRecord,
    req: DeletionRequest,
    wrong: () => ForbiddenError,
  ): Promise<void> {
    if (!(await this.passwords.verify(req.password, user.hashedPassword, req.ip))) throw wrong();
    await this.db.transaction(async (t) => {
      // Admin rows first, then the user's, in the order every admin change takes them: two
      // last admins deleting themselves at once are decided one after the other.
      const admins = await this.users.lockActiveAdmins(t);
      const current = await this.users.lock(user.id, 'update', t);
      if (!current) {
        throw new UnauthorizedError(ErrorCode.invalidToken, 'The account no longer exists.');
      }
      // Changed by another request since this one read it: the check above proves nothing.
      if (current.hashedPassword !== user.hashedPassword) throw wrong();
      try {
        await this.mfa.requireCodeIfActiveIn(current.id, req.code, t);
      } catch (err) {
        if (err instanceof AppError && err.code === ErrorCode.invalidMfaCode) {
          this.metrics.accountDeletions.inc({ outcome: 'invalid_mfa_code' });
        }
        throw err;
      }
      if (current.isAdmin && current.isActive && !admins.some((id) => id !== current.id)) {
        this.metrics.accountDeletions.inc({ outcome: 'last_admin' });
        throw new ConflictError(
          ErrorCode.lastAdmin,
          'This is the last active administrator; promote another user first.',
        );
      }
      // The entry outlives the account: it keeps the id, not the email.
      await this.audit.record(
        { userId: null, label: 'self', requestId: req.requestId, ip: req.ip },
        { action: 'account.delete', targetType: 'user', targetId: current.id, details: {} },
        t,
      );
      await this.users.delete(current.id, t);
    });
  }
}
