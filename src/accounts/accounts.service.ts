import type { Metrics } from '../metrics';
import { AppError } from '../errors';
import { normaliseEmail } from './email';
import type { EmailVerificationService } from './email-verification.service';
import { assertNewPassword, type PasswordHasher } from './passwords';
import type { UserRecord, UsersRepository } from './users.repository';

export class AccountsService {
  constructor(
    private readonly users: UsersRepository,
    private readonly passwords: PasswordHasher,
    private readonly metrics: Metrics,
    private readonly verification: Pick<EmailVerificationService, 'send'>,
  ) {}

  async register(email: string, password: string, ip?: string): Promise<UserRecord> {
    try {
      assertNewPassword(password, '/body/password');
      const hashedPassword = await this.passwords.hash(password, ip);
      const user = await this.users.create({ email: normaliseEmail(email), hashedPassword });
      this.metrics.registrations.inc({ outcome: 'created' });
      // Queued, never awaited: a slow or absent mail server does not hold registration up.
      this.verification.send(user);
      return user;
    } catch (err) {
      this.metrics.registrations.inc({
        outcome: err instanceof AppError ? err.code : 'error',
      });
      throw err;
    }
  }
}
