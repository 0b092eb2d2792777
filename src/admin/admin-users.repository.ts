import { QueryTypes, type Sequelize } from 'sequelize';
import { USER_COLUMNS, type UserRecord } from '../accounts/users.repository';

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

/** The `users` query only administration needs; locks stay in UsersRepository. */
export class AdminUsersRepository {
  constructor(private readonly sequelize: Sequelize) {}

  async list(q: UserListQuery): Promise<{ items: UserRecord[]; total: number }> {
    const where: string[] = [];
    const replacements: Record<string, unknown> = { limit: q.limit, offset: q.offset };
    if (q.email !== undefined) {
      // Emails are stored lower-cased; ILIKE also covers a mixed-case filter.
      where.push('email ILIKE :email');
      replacements.email = `%${escapeLike(q.email.trim())}%`;
    }
    if (q.isActive !== undefined) {
      where.push('is_active = :isActive');
      replacements.isActive = q.isActive;
    }
    if (q.isAdmin !== undefined) {
      where.push('is_admin = :isAdmin');
      replacements.isAdmin = q.isAdmin;
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const [items, [count]] = await Promise.all([
      this.sequelize.query<UserRecord>(
        `SELECT ${USER_COLUMNS} FROM users ${clause} ORDER BY email LIMIT :limit OFFSET :offset`,
        { type: QueryTypes.SELECT, replacements },
      ),
      this.sequelize.query<{ n: number }>(
        `SELECT CAST(count(*) AS int) AS n FROM users ${clause}`,
        { type: QueryTypes.SELECT, replacements },
      ),
    ]);
    return { items, total: count?.n ?? 0 };
  }
}
