import { Op, type Transaction, type WhereOptions } from 'sequelize';
import type { UserRecord, UsersRepository } from '../accounts/users.repository';

export interface UserListQuery {
  limit: number;
  offset: number;
  /** Case-insensitive substring of the email. */
  email?: string;
  isActive?: boolean;
  isAdmin?: boolean;
}

/** `%`, `_` and the escape character itself match literally in a LIKE pattern. */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The queries only administration needs, on the same `users` model as accounts. */
export class AdminUsersRepository {
  constructor(private readonly users: UsersRepository) {}

  async list(q: UserListQuery): Promise<{ items: UserRecord[]; total: number }> {
    const where: WhereOptions<UserRecord> = {};
    // Emails are stored lower-cased; ILIKE also covers a mixed-case filter.
    if (q.email !== undefined) where.email = { [Op.iLike]: `%${escapeLike(q.email.trim())}%` };
    if (q.isActive !== undefined) where.isActive = q.isActive;
    if (q.isAdmin !== undefined) where.isAdmin = q.isAdmin;
    const { rows, count } = await this.users.model.findAndCountAll({
      where,
      order: [['email', 'ASC']],
      limit: q.limit,
      offset: q.offset,
      raw: true,
    });
    return { items: rows as unknown as UserRecord[], total: count };
  }

  /**
   * Locks every active admin row (in id order, so concurrent callers queue instead of
   * deadlocking) and returns their ids. Two transactions each removing a different admin thus
   * run one after the other, and the second sees the first's result.
   */
  async lockActiveAdmins(transaction: Transaction): Promise<string[]> {
    const rows = await this.users.model.findAll({
      attributes: ['id'],
      where: { isAdmin: true, isActive: true },
      order: [['id', 'ASC']],
      lock: transaction.LOCK.UPDATE,
      transaction,
      raw: true,
    });
    return rows.map((r) => (r as unknown as { id: string }).id);
  }

  async lockById(id: string, transaction: Transaction): Promise<UserRecord | null> {
    return (await this.users.model.findOne({
      where: { id },
      lock: transaction.LOCK.UPDATE,
      transaction,
      raw: true,
    })) as UserRecord | null;
  }

  async lockByEmail(email: string, transaction: Transaction): Promise<UserRecord | null> {
    return (await this.users.model.findOne({
      where: { email },
      lock: transaction.LOCK.UPDATE,
      transaction,
      raw: true,
    })) as UserRecord | null;
  }
}
