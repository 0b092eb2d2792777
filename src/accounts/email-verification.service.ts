import type { Database } from '../db/database';
import { BadRequestError, ConflictError, ErrorCode, MailNotConfiguredError } from '../errors';
import type { MailOutbox } from '../mail/outbox';
import { verificationMail } from '../mail/templates';
import type { RateLimits } from '../sessions/rate-limits';
import type { AccountTokensRepository } from './account-tokens.repository';
import { hashToken, type SecretTokens } from './mailed-tokens';
import type { UserRecord, UsersRepository } from './users.repository';

export interface EmailVerificationDeps {
  db: Database;
  users: UsersRepository;
  accountTokens: AccountTokensRepository;
  secretTokens: SecretTokens;
  outbox: MailOutbox;
  rateLimits: Pick<RateLimits, 'verificationResend'>;
  publicBaseUrl: string;
  ttlHours: number;
}

export class EmailVerificationService {
  constructor(private readonly d: EmailVerificationDeps) {}

  /**
   * Queues a verification mail (a new token voids the account's older ones). Without mail
   * configured (production without SMTP_URL) nothing is sent, and the outbox counts it skipped.
   */
  send(user: Pick<UserRecord, 'id' | 'email'>): void {
    const { token, hash } = this.d.secretTokens.mint();
    const expiresAt = new Date(Date.now() + this.d.ttlHours * 3_600_000);
    this.d.outbox.enqueue('email_verify', async () => {
      await this.d.db.transaction((t) =>
        this.d.accountTokens.issue(user.id, 'email_verify', hash, expiresAt, t),
      );
      return verificationMail(
        { userId: user.id, email: user.email },
        this.d.publicBaseUrl,
        token,
        this.d.ttlHours,
      );
    });
  }

  async resend(user: UserRecord): Promise<void> {
    if (!this.d.outbox.enabled) throw new MailNotConfiguredError();
    if (user.emailVerifiedAt) {
      throw new ConflictError(ErrorCode.emailAlreadyVerified, 'This email is already verified.');
    }
    await this.d.rateLimits.verificationResend(user.id);
    this.send(user);
  }

  /** Spends the token and marks the owner's email verified (once; a later verify keeps the date). */
  async verify(token: string): Promise<void> {
    const hash = hashToken(token);
    const invalid = () =>
      new BadRequestError(
        'The verification token is invalid, spent or expired; ask for a new one.',
        ErrorCode.invalidVerificationToken,
      );
    const owner = await this.d.accountTokens.peek('email_verify', hash);
    if (!owner) throw invalid();
    await this.d.db.transaction(async (t) => {
      const user = await this.d.users.lock(owner, 'update', t);
      const spentBy = await this.d.accountTokens.spend('email_verify', hash, t);
      if (!user || spentBy !== owner) throw invalid();
      if (!user.emailVerifiedAt)
        await this.d.users.update(owner, { emailVerifiedAt: new Date() }, t);
    });
  }
}
