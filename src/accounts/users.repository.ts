import { QueryTypes, UniqueConstraintError, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';
import { ConflictError, ErrorCode } from '../errors';

export interface UserRecord {
  id: string;
  email: string;
  hashedPassword: string;
  isActive: boolean;
  isAdmin: boolean;
  /** Access tokens issued before this moment are refused (set by a password change or reset). */
  tokensValidAfter: Date | null;
  emailVerifiedAt: Date | null;
  /**
   * A TOTP factor is active. Its secret and last accepted step are columns of the same row,
   * read only by the factor's own repository (never loaded on the authenticated path).
   */
  mfaEnabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export type UserChangeableFields = Partial<
  Pick<
    UserRecord,
    'hashedPassword' | 'isActive' | 'isAdmin' | 'tokensValidAfter' | 'emailVerifiedAt'
  >
>;

/** The columns of a UserRecord, in the record's names. */
export const USER_COLUMNS = `CAST(id AS text) AS id, email, hashed_password AS "hashedPassword",
  is_active AS "isActive", is_admin AS "isAdmin", tokens_valid_after AS "tokensValidAfter",
  email_verified_at AS "emailVerifiedAt", mfa_enabled AS "mfaEnabled",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

const CHANGEABLE: Record<keyof UserChangeableFields, string> = {
  hashedPassword: 'hashed_password',
  isActive: 'is_active',
  isAdmin: 'is_admin',
  tokensValidAfter: 'tokens_valid_after',
  emailVerifiedAt: 'email_verified_at',
};

/**
 * SQL for `users`; returns plain objects. Every row lock on `users` is taken here: the
 * sessions' locking protocol (user row first, then refresh tokens) and the last-admin rule
 * both rely on these locks, so they must not be spelt differently elsewhere.
 */
export class UsersRepository {
  constructor(private readonly sequelize: Sequelize) {}

  /** The unique index decides duplicates (no check-then-insert), so racing inserts yield one row. */
  async create(
    input: { email: string; hashedPassword: string; isAdmin?: boolean },
    tx?: Tx,
  ): Promise<UserRecord> {
    try {
      const [row] = await this.select(
        `INSERT INTO users (email, hashed_password, is_admin)
         VALUES (:email, :hashedPassword, :isAdmin) RETURNING ${USER_COLUMNS}`,
        { ...input, isAdmin: input.isAdmin ?? false },
        tx,
      );
      return row!;
    } catch (err) {
      if (err instanceof UniqueConstraintError) {
        throw new ConflictError(ErrorCode.emailTaken, 'An account with this email already exists.');
      }
      throw err;
    }
  }

  async findById(id: string, tx?: Tx): Promise<UserRecord | null> {
    const [row] = await this.select(`SELECT ${USER_COLUMNS} FROM users WHERE id = :id`, { id }, tx);
    return row ?? null;
  }

  async findByEmail(email: string, tx?: Tx): Promise<UserRecord | null> {
    const [row] = await this.select(
      `SELECT ${USER_COLUMNS} FROM users WHERE email = :email`,
      { email },
      tx,
    );
    return row ?? null;
  }

  /**
   * Reads the user and locks the row until the transaction ends: FOR SHARE to issue tokens,
   * FOR UPDATE to end sessions or change the account. Null when there is no such user.
   */
  async lock(id: string, mode: 'share' | 'update', tx: Tx): Promise<UserRecord | null> {
    const [row] = await this.select(
      `SELECT ${USER_COLUMNS} FROM users WHERE id = :id FOR ${mode === 'share' ? 'SHARE' : 'UPDATE'}`,
      { id },
      tx,
    );
    return row ?? null;
  }

  /** Like `lock(id, 'update')`, by email. */
  async lockByEmail(email: string, tx: Tx): Promise<UserRecord | null> {
    const [row] = await this.select(
      `SELECT ${USER_COLUMNS} FROM users WHERE email = :email FOR UPDATE`,
      { email },
      tx,
    );
    return row ?? null;
  }

  /**
   * Locks every active admin row (in id order, so concurrent callers queue instead of
   * deadlocking) and returns their ids. Two transactions each removing a different admin thus
   * run one after the other, and the second sees the first's result.
   */
  async lockActiveAdmins(tx: Tx): Promise<string[]> {
    const rows = await this.sequelize.query<{ id: string }>(
      `SELECT CAST(id AS text) AS id FROM users WHERE is_admin AND is_active ORDER BY id FOR UPDATE`,
      { type: QueryTypes.SELECT, transaction: tx },
    );
    return rows.map((r) => r.id);
  }

  /**
   * Swaps the stored hash for an equivalent one (same password, another cost), only if it is
   * still `from`: a password changed meanwhile wins. Not a user-visible change: updated_at stays.
   */
  async replacePasswordHash(id: string, from: string, to: string): Promise<boolean> {
    const rows = await this.sequelize.query<{ id: string }>(
      `UPDATE users SET hashed_password = :to WHERE id = :id AND hashed_password = :from
       RETURNING CAST(id AS text) AS id`,
      { type: QueryTypes.SELECT, replacements: { id, from, to } },
    );
    return rows.length === 1;
  }

  /**
   * Deletes the user; every row keyed to it goes with it (foreign keys ON DELETE CASCADE; the
   * audit log keeps its entries with the actor set to null).
   */
  async delete(id: string, tx: Tx): Promise<boolean> {
    const rows = await this.sequelize.query(
      `DELETE FROM users WHERE id = :id RETURNING CAST(id AS text) AS id`,
      { type: QueryTypes.SELECT, replacements: { id }, transaction: tx },
    );
    return rows.length === 1;
  }

  async update(id: string, changes: UserChangeableFields, tx?: Tx): Promise<UserRecord | null> {
    const sets = (Object.keys(changes) as (keyof UserChangeableFields)[])
      .filter((k) => changes[k] !== undefined)
      .map((k) => `${CHANGEABLE[k]} = :${k}`);
    const [row] = await this.select(
      `UPDATE users SET ${[...sets, 'updated_at = now()'].join(', ')}
       WHERE id = :id RETURNING ${USER_COLUMNS}`,
      { ...changes, id },
      tx,
    );
    return row ?? null;
  }

  private select(
    sql: string,
    replacements: Record<string, unknown>,
    tx?: Tx,
  ): Promise<UserRecord[]> {
    return this.sequelize.query<UserRecord>(sql, {
      type: QueryTypes.SELECT,
      replacements,
      transaction: tx,
    });
  }
}
