import type { EphemeralStore } from '../state/ephemeral-store';

/**
 * A password change refuses every access token of the user issued before it
 * (`users.tokens_valid_after`), except the one that made the change. That one token is
 * remembered here, tied to that exact cutoff: a later change or reset moves the cutoff and so
 * ends the exemption too. Kept until the token would have expired anyway.
 */
export class TokenCutoffExemptions {
  constructor(private readonly store: EphemeralStore) {}

  async exempt(jti: string, cutoff: Date, expiresAt: Date): Promise<void> {
    const ttl = Math.ceil((expiresAt.getTime() - Date.now()) / 1000) + 5;
    if (ttl > 0) await this.store.set(key(jti), String(cutoff.getTime()), ttl);
  }

  async isExempt(jti: string, cutoff: Date): Promise<boolean> {
    return (await this.store.get(key(jti))) === String(cutoff.getTime());
  }
}

function key(jti: string): string {
  return `cutoff-exempt:${jti}`;
}

/**
 * JWT `iat` has whole seconds. A token is accepted only when `iat * 1000 >= cutoff`, so a token
 * minted in the same second as a cutoff, but after it, would be refused. Issuers therefore wait
 * (at most a second, and only right after a password change) until that holds.
 */
export async function waitPastCutoff(cutoff: Date | null): Promise<void> {
  if (!cutoff) return;
  const target = Math.ceil(cutoff.getTime() / 1000) * 1000;
  // A loop, because timers may fire a millisecond before the wall clock agrees.
  while (Date.now() < target) {
    await new Promise((resolve) => setTimeout(resolve, target - Date.now()));
  }
}

/** True when a token issued at `iat` (seconds) predates the user's cutoff. */
export function issuedBeforeCutoff(iat: number, cutoff: Date | null): boolean {
  return cutoff !== null && iat * 1000 < cutoff.getTime();
}
