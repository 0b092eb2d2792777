import type { Database } from '../db/database';
import { BadRequestError, ErrorCode, MailNotConfiguredError } from '../errors';
import type { OutgoingMail } from '../mail/mail-transport';
import type { MailOutbox } from '../mail/outbox';
import { passwordResetMail } from '../mail/templates';
import type { RateLimits } from '../sessions/rate-limits';
import type { SessionsService } from '../sessions/sessions.service';
import { normaliseEmail } from './email';
import type { AccountTokensRepository } from './account-tokens.repository';
import { hashToken, type SecretTokens } from './mailed-tokens';
import { assertNewPassword, type PasswordHasher } from './passwords';
import type { UsersRepository } from './users.repository';

export interface PasswordResetDeps {
  db: Database;
  users: UsersRepository;
  accountTokens: AccountTokensRepository;
  secretTokens: SecretTokens;
  passwords: PasswordHasher;
  sessions: Pick<SessionsService, 'endAllSessions'>;
  outbox: MailOutbox;
  rateLimits: Pick<RateLimits, 'passwordReset'>;
  publicBaseUrl: string;
  ttlMinutes: number;
}

const invalidToken = () =>
  new BadRequestError(
    'The reset token is invalid, spent or expired; ask for a new one.',
    ErrorCode.invalidResetToken,
  );

export class PasswordResetService {
  constructor(private readonly d: PasswordResetDeps) {}

  /**
   * Nothing on the request path depends on whether the email has an account: it counts the
   * rate limits, mints one token and queues a job, for every email alike. The account is looked
   * up (and the token stored, and mailed) by the job, off the request path.
   */
  async request(email: string, ip: string): Promise<void> {
    if (!this.d.outbox.enabled) throw new MailNotConfiguredError();
    const normalised = normaliseEmail(email);
    await this.d.rateLimits.passwordReset(ip, normalised);
    const { token, hash } = this.d.secretTokens.mint();
    const expiresAt = new Date(Date.now() + this.d.ttlMinutes * 60_000);
    this.d.outbox.enqueue('password_reset', () => this.prepare(normalised, token, hash, expiresAt));
  }

  /** Off the request path: only an existing, active account gets a token and a mail. */
  private async prepare(
    email: string,
    token: string,
    hash: string,
    expiresAt: Date,
  ): Promise<OutgoingMail | null> {
    const user = await this.d.users.findByEmail(email);
    if (!user?.isActive) return null;
    await this.d.db.transaction((t) =>
      this.d.accountTokens.issue(user.id, 'password_reset', hash, expiresAt, t),
    );
    return passwordResetMail(
      { userId: user.id, email: user.email },
      this.d.publicBaseUrl,
      token,
      this.d.ttlMinutes,
    );
  }

  /**
   * Spends the token and sets the password; every session ends in the same transaction. A bad
   * password is refused before the token is looked at, so it is not spent. Receiving the mail
   * proves the address too, so an unverified email becomes verified.
   */
  async confirm(token: string, newPassword: string, ip: string): Promise<void> {
    assertNewPassword(newPassword, '/body/new_password');
    const hash = hashToken(token);
    // Refuse unknown tokens before the slow hash below.
    const owner = await this.d.accountTokens.peek('password_reset', hash);
    if (!owner) throw invalidToken();
    const hashedPassword = await this.d.passwords.hash(newPassword, ip);
    await this.d.db.transaction(async (t) => {
      // Takes the user's row lock first, as the sessions' locking protocol wants.
      await this.d.sessions.endAllSessions(owner, t);
      const spentBy = await this.d.accountTokens.spend('password_reset', hash, t);
      if (spentBy !== owner) throw invalidToken(); // spent (or expired) meanwhile: roll back
      const user = await this.d.users.findById(owner, t);
      if (!user?.isActive) throw invalidToken();
      await this.d.users.update(
        owner,
        { hashedPassword, emailVerifiedAt: user.emailVerifiedAt ?? new Date() },
        t,
      );
    });
  }
}
