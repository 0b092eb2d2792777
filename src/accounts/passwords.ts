import { randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import { ValidationError } from '../errors';
import type { Metrics } from '../metrics';
import { HashGate } from './hash-gate';
import { HashWorkers } from './hash-workers';

/** bcrypt reads at most 72 bytes; longer passwords are refused, never silently truncated. */
export const MAX_PASSWORD_BYTES = 72;
export const MIN_PASSWORD_CHARS = 8;

/** The register rules, for every place that sets a password. `field` is the JSON Pointer for errors. */
export function assertNewPassword(password: string, field: string): void {
  if ([...password].length < MIN_PASSWORD_CHARS) {
    throw new ValidationError([
      { path: field, message: `must be at least ${MIN_PASSWORD_CHARS} characters` },
    ]);
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new ValidationError([
      { path: field, message: `must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8` },
    ]);
  }
  // bcrypt ends a password at NUL, so "abcdefgh\0anything" would equal "abcdefgh". The spec's
  // NewPassword schema refuses it too; this holds for callers the spec does not front.
  if (password.includes('\u0000')) {
    throw new ValidationError([{ path: field, message: 'must not contain NUL characters' }]);
  }
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A well-formed bcrypt hash at `cost` that no password matches, made without hashing: a fresh
 * salt and 31 random digest characters. Comparing against it runs the full key schedule at
 * `cost` (bcrypt hashes the candidate, then compares digests), so it costs what a real check
 * costs; a match would need a 184-bit preimage. Start-up no longer spends a hash on it.
 */
export function unmatchableHash(cost: number): string {
  const digest = [...randomBytes(31)].map((b) => BCRYPT_ALPHABET[b & 63]).join('');
  return bcrypt.genSaltSync(cost) + digest;
}

export class PasswordHasher {
  private readonly gate: HashGate;
  /** As many threads as the gate lets hashes through: a hash past the gate never waits. */
  private readonly workers: HashWorkers;
  private dummyHash: string | undefined;

  constructor(
    private readonly cost: number,
    gate: { concurrency: number; queueLimit: number },
    private readonly metrics: Metrics,
  ) {
    this.gate = new HashGate(gate.concurrency, gate.queueLimit);
    this.workers = new HashWorkers(gate.concurrency);
  }

  /** Ends the hashing threads (shutdown). */
  close(): Promise<void> {
    return this.workers.close();
  }

  get capacity(): HashGate {
    return this.gate;
  }

  /** `client` (the caller's address) gets its fair share of the hashing queue. */
  hash(password: string, client?: string): Promise<string> {
    return this.timed('hash', client, () => this.workers.hash(password, this.cost));
  }

  /** True when `hash` was made under another cost than the current one; unreadable ones stay. */
  needsRehash(hash: string): boolean {
    try {
      return bcrypt.getRounds(hash) !== this.cost;
    } catch {
      return false;
    }
  }

  /** Constant-ish time compare. Passwords over 72 bytes can never match: bcrypt would truncate them. */
  async verify(password: string, hash: string, client?: string): Promise<boolean> {
    const ok = await this.timed('verify', client, () => this.workers.compare(password, hash));
    return ok && Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES;
  }

  /**
   * For unknown emails: spend the same bcrypt work as a real check, so response time does not
   * reveal whether an account exists. Always false.
   */
  async verifyDummy(password: string, client?: string): Promise<false> {
    this.dummyHash ??= unmatchableHash(this.cost);
    const hash = this.dummyHash;
    await this.timed('verify', client, () => this.workers.compare(password, hash));
    return false;
  }

  private timed<T>(op: 'hash' | 'verify', client: string | undefined, fn: () => Promise<T>) {
    return this.gate.run(async () => {
      const end = this.metrics.passwordHashDuration.startTimer({ op });
      try {
        return await fn();
      } finally {
        end();
      }
    }, client);
  }
}
