import { assertEmail, normaliseEmail } from '../accounts/email';
import { assertNewPassword, type PasswordHasher } from '../accounts/passwords';
import type { UserRecord, UsersRepository } from '../accounts/users.repository';
import type { Database } from '../db/database';
import type { MfaRepository } from '../mfa/mfa.repository';
import { ConflictError, ErrorCode, NotFoundError, ValidationError } from '../errors';
import type { AdminUsersRepository, UserListQuery } from './admin-users.repository';
import type { Actor, AuditLogRepository } from './audit-log.repository';

export interface UserChanges {
  isActive?: boolean;
  isAdmin?: boolean;
  /** Only removal: a factor is set up by its owner. */
  mfaEnabled?: false;
}

export type CreateAdminOutcome = 'created' | 'promoted' | 'unchanged';

type Change<T> = { from: T; to: T };

function diff(before: UserRecord, changes: UserChanges): Record<string, Change<boolean>> {
  const out: Record<string, Change<boolean>> = {};
  if (changes.isActive !== undefined)
    out.is_active = { from: before.isActive, to: changes.isActive };
  if (changes.isAdmin !== undefined) out.is_admin = { from: before.isAdmin, to: changes.isAdmin };
  if (changes.mfaEnabled !== undefined) {
    out.mfa_enabled = { from: before.mfaEnabled, to: changes.mfaEnabled };
  }
  return out;
}

export class AdminUsersService {
  constructor(
    private readonly db: Pick<Database, 'transaction'>,
    private readonly users: UsersRepository,
    private readonly adminUsers: AdminUsersRepository,
    private readonly passwords: PasswordHasher,
    private readonly audit: AuditLogRepository,
    private readonly mfa: Pick<MfaRepository, 'remove'>,
  ) {}

  list(q: UserListQuery): Promise<{ items: UserRecord[]; total: number }> {
    return this.adminUsers.list(q);
  }

  /**
   * Changes a user's flags. Removing the last active admin (demotion or deactivation) is
   * refused: the admin rows are locked first, so concurrent removals are decided one at a time.
   * Deactivation ends every session: the database trigger on `users.is_active` does that in
   * this same transaction (as it does for an operator's SQL), so a later reactivation does not
   * bring old tokens back.
   */
  async update(id: string, changes: UserChanges, actor: Actor): Promise<UserRecord> {
    return this.db.transaction(async (transaction) => {
      const admins = await this.users.lockActiveAdmins(transaction);
      const before = await this.users.lock(id, 'update', transaction);
      if (!before) throw new NotFoundError('There is no user with this id.');
      const removesAdmin =
        before.isAdmin &&
        before.isActive &&
        (changes.isAdmin === false || changes.isActive === false);
      if (removesAdmin && !admins.some((a) => a !== id)) {
        throw new ConflictError(
          ErrorCode.lastAdmin,
          'This is the last active administrator; promote another user first.',
        );
      }
      // A lost authenticator: the factor, its recovery codes and pending logins go.
      if (changes.mfaEnabled === false) await this.mfa.remove(id, transaction);
      const { mfaEnabled: _, ...flags } = changes;
      const after =
        Object.keys(flags).length > 0
          ? await this.users.update(id, flags, transaction)
          : await this.users.findById(id, transaction);
      if (!after) throw new NotFoundError('There is no user with this id.');
      await this.audit.record(
        actor,
        {
          action: 'user.update',
          targetType: 'user',
          targetId: id,
          details: { email: before.email, changes: diff(before, changes) },
        },
        transaction,
      );
      return after;
    });
  }

  /** For the CLI: whether creating the admin needs a password (it does only for a new account). */
  async exists(email: string): Promise<boolean> {
    const normalised = normaliseEmail(email);
    assertEmail(normalised, 'email');
    return (await this.users.findByEmail(normalised)) !== null;
  }

  /**
   * Creates an active admin account, or promotes (and reactivates) an existing one; an
   * existing account keeps its password. `password` is needed only for a new account.
   */
  async createAdmin(
    email: string,
    password: string | null,
    actor: Actor,
  ): Promise<{ user: UserRecord; outcome: CreateAdminOutcome }> {
    const normalised = normaliseEmail(email);
    assertEmail(normalised, 'email');
    let hashedPassword: string | null = null;
    if (!(await this.users.findByEmail(normalised))) {
      if (password === null) {
        throw new ValidationError([
          { path: 'password', message: 'is required to create a new account' },
        ]);
      }
      assertNewPassword(password, 'password');
      // Hash outside the transaction: no row lock is held during the slow part.
      hashedPassword = await this.passwords.hash(password);
    }
    return this.db.transaction(async (transaction) => {
      const before = await this.users.lockByEmail(normalised, transaction);
      if (!before) {
        if (hashedPassword === null) {
          // Deleted between the check and the transaction.
          throw new ConflictError(
            ErrorCode.conflict,
            'The account changed meanwhile; run the command again.',
          );
        }
        const user = await this.users.create(
          { email: normalised, hashedPassword, isAdmin: true },
          transaction,
        );
        await this.audit.record(
          actor,
          {
            action: 'admin.create',
            targetType: 'user',
            targetId: user.id,
            details: { email: normalised, created: true },
          },
          transaction,
        );
        return { user, outcome: 'created' as const };
      }
      if (before.isAdmin && before.isActive) return { user: before, outcome: 'unchanged' as const };
      const changes: UserChanges = { isAdmin: true, isActive: true };
      const user = (await this.users.update(before.id, changes, transaction))!;
      await this.audit.record(
        actor,
        {
          action: 'admin.create',
          targetType: 'user',
          targetId: before.id,
          details: { email: normalised, created: false, changes: diff(before, changes) },
        },
        transaction,
      );
      return { user, outcome: 'promoted' as const };
    });
  }
}
