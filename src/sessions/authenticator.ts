import type { UsersRepository, UserRecord } from '../accounts/users.repository';
import { ErrorCode, ForbiddenError, UnauthorizedError } from '../errors';
import type { Metrics } from '../metrics';
import type { AccessClaims, AccessTokens } from './access-tokens';
import type { RevocationStore } from './revocations';
import { issuedBeforeCutoff, type TokenCutoffExemptions } from './token-cutoffs';

export interface AuthContext {
  user: UserRecord;
  claims: AccessClaims;
  /** The raw bearer token, for operations that revoke it (logout). */
  token: string;
}

// RFC 6750 b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

export class Authenticator {
  constructor(
    private readonly tokens: AccessTokens,
    private readonly users: UsersRepository,
    private readonly revocations: RevocationStore,
    private readonly metrics: Metrics,
    private readonly exemptions: TokenCutoffExemptions,
  ) {}

  /**
   * Every bearer-protected call comes through here. The user row is read on each call, so a
   * deactivation, demotion or delete made anywhere (another replica, SQL by an operator)
   * takes effect on the very next request.
   */
  async authenticate(
    header: string | undefined,
    opts: { admin?: boolean } = {},
  ): Promise<AuthContext> {
    const outcome = (o: string) => this.metrics.tokenVerifications.inc({ outcome: o });
    if (!header) {
      outcome('missing');
      throw new UnauthorizedError(ErrorCode.missingToken, 'An access token is required.');
    }
    const m = BEARER.exec(header);
    if (!m) {
      outcome('malformed');
      throw new UnauthorizedError(
        ErrorCode.invalidToken,
        'The Authorization header must be "Bearer <token>".',
      );
    }
    let claims: AccessClaims;
    try {
      claims = this.tokens.verify(m[1]!);
    } catch (err) {
      outcome('invalid');
      throw err;
    }
    // Independent look-ups on every authenticated call: Redis and PostgreSQL in parallel.
    const [revoked, user] = await Promise.all([
      this.revocations.isRevoked(claims.jti),
      this.users.findById(claims.sub),
    ]);
    if (revoked) {
      outcome('revoked');
      throw new UnauthorizedError(ErrorCode.invalidToken, 'The access token has been revoked.');
    }
    if (!user || !user.isActive) {
      outcome('inactive_user');
      throw new UnauthorizedError(
        ErrorCode.invalidToken,
        'The access token is invalid or expired.',
      );
    }
    // A password change or reset ends every earlier session (the store is asked only then).
    if (
      issuedBeforeCutoff(claims.iat, user.tokensValidAfter) &&
      !(await this.exemptions.isExempt(claims.jti, user.tokensValidAfter!))
    ) {
      outcome('revoked');
      throw new UnauthorizedError(ErrorCode.invalidToken, 'The access token has been revoked.');
    }
    if (opts.admin && !user.isAdmin) {
      outcome('forbidden');
      throw new ForbiddenError('This operation needs an administrator.');
    }
    outcome('valid');
    return { user, claims, token: m[1]! };
  }
}
