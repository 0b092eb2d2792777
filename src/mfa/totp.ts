import { Secret, TOTP } from 'otpauth';

/** RFC 6238 as every authenticator app implements it: SHA-1, 6 digits, 30-second steps. */
const PARAMS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
/** Codes of the step before and after the current one are accepted too (clock drift). */
const WINDOW = 1;
const ISSUER = 'Auth service';

/** A new secret: 160 random bits (RFC 4226's recommended length), base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

export function otpauthUri(secretBase32: string, accountLabel: string): string {
  return new TOTP({
    ...PARAMS,
    issuer: ISSUER,
    label: accountLabel,
    secret: Secret.fromBase32(secretBase32),
  }).toString();
}

/**
 * The 30-second step a code belongs to, if it is right for the step at `nowMs` or one either
 * side; null otherwise. Callers accept a step only once (replay refusal).
 */
export function matchTotpStep(secretBase32: string, code: string, nowMs: number): number | null {
  const totp = new TOTP({ ...PARAMS, secret: Secret.fromBase32(secretBase32) });
  const delta = totp.validate({ token: code, timestamp: nowMs, window: WINDOW });
  return delta === null ? null : totp.counter({ timestamp: nowMs }) + delta;
}
