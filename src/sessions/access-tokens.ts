import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { ErrorCode, UnauthorizedError } from '../errors';

export interface AccessClaims {
  sub: string;
  /** The session (refresh-token family) the token was issued into. */
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  iss: string;
  aud: string;
}

export interface IssuedAccessToken {
  token: string;
  jti: string;
  expiresIn: number;
  expiresAt: Date;
}

export interface AccessTokenOptions {
  secret: Buffer;
  issuer: string;
  audience: string;
  expireMinutes: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Accepted clock skew: a token stays valid this long past its `exp`. */
export const CLOCK_TOLERANCE_SECONDS = 5;

/**
 * HS256 access tokens. The key is a KeyObject made once: with a string secret jsonwebtoken
 * re-derives the key on every call, which costs far more per verification.
 */
export class AccessTokens {
  private readonly key: KeyObject;

  constructor(private readonly opts: AccessTokenOptions) {
    this.key = createSecretKey(opts.secret);
  }

  /** How long an access token lives from its issue. */
  get lifetimeSeconds(): number {
    return this.opts.expireMinutes * 60;
  }

  issue(userId: string, sessionId: string): IssuedAccessToken {
    const jti = randomUUID();
    const expiresIn = this.lifetimeSeconds;
    const token = jwt.sign({ sid: sessionId }, this.key, {
      algorithm: 'HS256',
      subject: userId,
      jwtid: jti,
      issuer: this.opts.issuer,
      audience: this.opts.audience,
      expiresIn,
    });
    const { exp } = jwt.decode(token) as { exp: number };
    return { token, jti, expiresIn, expiresAt: new Date(exp * 1000) };
  }

  /**
   * The one verification path: pins HS256 and requires exp, sub, sid, jti, iss and aud. Tokens
   * without `sid` (issued before sessions had ids, 30 minutes at most) are refused: their session
   * could not be checked, and their holder refreshes or logs in again.
   */
  verify(token: string): AccessClaims {
    let payload: unknown;
    try {
      payload = jwt.verify(token, this.key, {
        algorithms: ['HS256'],
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
    } catch {
      throw new UnauthorizedError(
        ErrorCode.invalidToken,
        'The access token is invalid or expired.',
      );
    }
    const c = payload as Partial<AccessClaims>;
    if (
      typeof c !== 'object' ||
      typeof c.exp !== 'number' ||
      typeof c.iat !== 'number' ||
      typeof c.sub !== 'string' ||
      !UUID.test(c.sub) ||
      typeof c.sid !== 'string' ||
      !UUID.test(c.sid) ||
      typeof c.jti !== 'string' ||
      c.jti.length === 0 ||
      c.jti.length > 64 ||
      // Never issued by us: from the future, or living longer than JWT_EXPIRE_MINUTES allows.
      c.iat > Date.now() / 1000 + CLOCK_TOLERANCE_SECONDS ||
      c.exp - c.iat > this.opts.expireMinutes * 60 + CLOCK_TOLERANCE_SECONDS
    ) {
      throw new UnauthorizedError(
        ErrorCode.invalidToken,
        'The access token is invalid or expired.',
      );
    }
    return c as AccessClaims;
  }
}
