import type { Metrics } from '../metrics';
import { AppError } from '../errors';
import { assertNewPassword, type PasswordHasher } from './passwords';
import type { UserRecord, UsersRepository } from './users.repository';

/** Emails are stored trimmed and lower-cased; every lookup goes through this. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export interface PublicUser {
  id: string;
  email: string;
  is_active: boolean;
  is_admin: boolean;
  created_at: string;
}

export function toPublicUser(u: UserRecord): PublicUser {
  return {
    id: u.id,
    email: u.email,
    is_active: u.isActive,
    is_admin: u.isAdmin,
    created_at: new Date(u.createdAt).toISOString(),
  };
}

export class AccountsService {
  constructor(
    private readonly users: UsersRepository,
    private readonly passwords: PasswordHasher,
    private readonly metrics: Metrics,
  ) {}

  async register(email: string, password: string): Promise<UserRecord> {
    try {
      assertNewPassword(password, '/body/password');
      const hashedPassword = await this.passwords.hash(password);
      const user = await this.users.create({ email: normaliseEmail(email), hashedPassword });
      this.metrics.registrations.inc({ outcome: 'created' });
      return user;
    } catch (err) {
      this.metrics.registrations.inc({
        outcome: err instanceof AppError ? err.code : 'error',
      });
      throw err;
    }
  }
}
