import { hashToken, type SecretTokens } from '../accounts/mailed-tokens';
import type { Metrics } from '../metrics';
import type { MfaRepository } from './mfa.repository';

/** How long the second step of a login may take. */
export const MFA_CHALLENGE_TTL_SECONDS = 300;
/** Wrong codes an mfa_token survives; the last of them ends it. */
export const MFA_MAX_FAILED_ATTEMPTS = 5;

/**
 * Starts the second step of a login: an opaque mfa_token whose hash is stored in PostgreSQL,
 * so that whichever replica gets the code can finish the login.
 */
export class MfaChallenges {
  constructor(
    private readonly repo: MfaRepository,
    private readonly secretTokens: SecretTokens,
    private readonly metrics: Metrics,
  ) {}

  async create(userId: string): Promise<{ token: string; expiresIn: number }> {
    const { token, hash } = this.secretTokens.mint();
    await this.repo.createChallenge(
      userId,
      hash,
      new Date(Date.now() + MFA_CHALLENGE_TTL_SECONDS * 1000),
    );
    this.metrics.mfaChallenges.inc({ outcome: 'issued' });
    return { token, expiresIn: MFA_CHALLENGE_TTL_SECONDS };
  }
}

export { hashToken as hashMfaToken };
