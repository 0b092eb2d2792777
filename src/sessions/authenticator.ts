import type { UserRecord } from '../accounts/users.repository';
import { isAppToken, type AppTokensService } from '../app-tokens/app-tokens.service';
import { ErrorCode, ForbiddenError, UnauthorizedError } from '../errors';
import type { Metrics } from '../metrics';
import type { AccessClaims, AccessTokens } from './access-tokens';
import type { SessionState } from './session-state';
import { issuedBeforeCutoff } from './token-cutoffs';

/** A caller authenticated with an access token: a session. */
export interface SessionAuth {
  kind: 'session';
  user: UserRecord;
  claims: AccessClaims;
  /** The raw bearer token, for operations that revoke it (logout). */
  token: string;
}

/** A caller authenticated with an app token, on an operation that accepts one. */
export interface AppTokenAuth {
  kind: 'app_token';
  user: UserRecord;
  appTokenId: string;
}

export type AuthContext = SessionAuth | AppTokenAuth;

/** What the spec's security requirements of the operation ask for. */
export interface AuthRequirements {
  /** An administrator only (`bearerAuth: [admin]`). */
  admin?: boolean;
  /** The operation lists the `appToken` scheme: an app token is accepted too. */
  appToken?: boolean;
}

// RFC 6750 b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

export class Authenticator {
  constructor(
    private readonly tokens: AccessTokens,
    private readonly sessions: SessionState,
    private readonly metrics: Metrics,
    private readonly appTokens: Pick<AppTokensService, 'authenticate'>,
  ) {}

  /**
   * Every bearer-protected call comes through here. The user row and the token's session are
   * read together on each call (from the database, or from a cache it invalidates by NOTIFY),
   * so a deactivation, demotion, delete or ended session made anywhere (another replica, SQL by
   * an operator) is honoured as soon as PostgreSQL delivers the change, well within a second.
   */
  async authenticate(
    header: string | undefined,
    opts: AuthRequirements = {},
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
    if (isAppToken(m[1]!)) {
      const { user, appTokenId } = await this.appTokens.authenticate(m[1]!, {
        allowed: opts.appToken === true,
      });
      if (opts.admin && !user.isAdmin) {
        throw new ForbiddenError('This operation needs an administrator.');
      }
      return { kind: 'app_token', user, appTokenId };
    }
    let claims: AccessClaims;
    try {
      claims = this.tokens.verify(m[1]!);
    } catch (err) {
      outcome('invalid');
      throw err;
    }
    // The admin flag is re-read from the database on every admin call (the contract); other
    // calls may be answered by a cache the database invalidates (CachedSessionState).
    const { user, sessionLive } = await this.sessions.check(claims.sub, claims.sid, {
      fresh: opts.admin === true,
    });
    if (!user || !user.isActive) {
      outcome('inactive_user');
      throw new UnauthorizedError(
        ErrorCode.invalidToken,
        'The access token is invalid or expired.',
      );
    }
    // An ended session (logout, reuse, password change), or a cutoff set by a password reset.
    if (!sessionLive || issuedBeforeCutoff(claims.iat, user.tokensValidAfter)) {
      outcome('revoked');
      throw new UnauthorizedError(ErrorCode.invalidToken, 'The access token has been revoked.');
    }
    if (opts.admin && !user.isAdmin) {
      outcome('forbidden');
      throw new ForbiddenError('This operation needs an administrator.');
    }
    outcome('valid');
    return { kind: 'session', user, claims, token: m[1]! };
  }
}
