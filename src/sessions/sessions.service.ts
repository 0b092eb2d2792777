import { normaliseEmail } from '../accounts/accounts.service';
import type { PasswordHasher } from '../accounts/passwords';
import type { UsersRepository } from '../accounts/users.repository';
import { InvalidCredentialsError } from '../errors';
import type { Metrics } from '../metrics';
import type { AccessTokens } from './access-tokens';

export interface TokenPair {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
}

export class SessionsService {
  constructor(
    private readonly users: UsersRepository,
    private readonly passwords: PasswordHasher,
    private readonly tokens: AccessTokens,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Wrong password, unknown email and inactive account are indistinguishable: same error,
   * and the same bcrypt work (a dummy hash stands in for a missing account).
   */
  async login(email: string, password: string): Promise<TokenPair> {
    const user = await this.users.findByEmail(normaliseEmail(email));
    if (!user) {
      await this.passwords.verifyDummy(password);
      this.metrics.logins.inc({ outcome: 'unknown_email' });
      throw new InvalidCredentialsError();
    }
    const ok = await this.passwords.verify(password, user.hashedPassword);
    if (!ok || !user.isActive) {
      this.metrics.logins.inc({ outcome: ok ? 'inactive' : 'wrong_password' });
      throw new InvalidCredentialsError();
    }
    this.metrics.logins.inc({ outcome: 'success' });
    const issued = this.tokens.issue(user.id);
    return { access_token: issued.token, token_type: 'bearer', expires_in: issued.expiresIn };
  }
}
