/**
 * `users.tokens_valid_after`: access tokens issued before it are refused. Set by ending every
 * session of a user (a password reset) and by deactivation, as a second line behind the
 * sessions those end.
 */

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
