import { createHash, randomBytes } from 'node:crypto';

/**
 * Tokens that travel by mail (password reset, email verification) and the mfa_token of a
 * login's second step: 256 random bits, base64url. Only the SHA-256 is stored; with this much
 * entropy a fast hash is enough, since nobody can search the token space from a leaked hash.
 */
export class SecretTokens {
  /** Mints a token and its hash. The one place tokens come from, so a test can count them. */
  mint(): { token: string; hash: string } {
    const token = randomBytes(32).toString('base64url');
    return { token, hash: hashToken(token) };
  }
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
