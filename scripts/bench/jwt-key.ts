import { createSecretKey, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import { AccessTokens } from '../../src/sessions/access-tokens';

/**
 * Side-by-side measurements, printed as ratios from one run (absolute numbers depend on the
 * machine; the ratios are what the design decisions rest on).
 */

function measure(
  label: string,
  iterations: number,
  fn: () => void,
): { label: string; perOpUs: number } {
  for (let i = 0; i < Math.min(1000, iterations / 10); i++) fn(); // warm-up
  const start = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  const perOpUs = ((performance.now() - start) * 1000) / iterations;
  return { label, perOpUs };
}

function report(
  title: string,
  baseline: { label: string; perOpUs: number },
  other: { label: string; perOpUs: number },
) {
  console.log(`\n${title}`);
  for (const r of [baseline, other])
    console.log(`  ${r.label.padEnd(44)} ${r.perOpUs.toFixed(2).padStart(9)} µs/op`);
  console.log(`  ratio: ${(other.perOpUs / baseline.perOpUs).toFixed(1)}x`);
}

const secret = randomUUID() + randomUUID();
const key = createSecretKey(Buffer.from(secret));
const claims = { sub: randomUUID(), jti: randomUUID() };
const opts = {
  algorithm: 'HS256' as const,
  expiresIn: 1800,
  issuer: 'auth-service',
  audience: 'music-catalogue',
};
const token = jwt.sign(claims, key, opts);
const verifyOpts = {
  algorithms: ['HS256' as const],
  issuer: 'auth-service',
  audience: 'music-catalogue',
};
const N = 20_000;

report(
  'JWT verification: secret as a KeyObject made once vs a string secret',
  measure('jwt.verify(token, KeyObject)', N, () => jwt.verify(token, key, verifyOpts)),
  measure('jwt.verify(token, string)', N, () => jwt.verify(token, secret, verifyOpts)),
);

const tokens = new AccessTokens({
  secret: Buffer.from(secret),
  issuer: 'auth-service',
  audience: 'music-catalogue',
  expireMinutes: 30,
});
const own = tokens.issue(claims.sub, randomUUID()).token;
report(
  'The service verify path (claim checks included) vs bare jwt.verify with a KeyObject',
  measure('jwt.verify(token, KeyObject)', N, () => jwt.verify(own, key, verifyOpts)),
  measure('AccessTokens.verify(token)', N, () => tokens.verify(own)),
);
