import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM envelope for third-party secrets at rest (Discogs consumer secret, Discogs user
 * tokens, TOTP secrets).
 *
 * Stored form: `v1:<kid>:<iv>:<ciphertext+tag>` (base64url parts). The key id lets values
 * sealed under an older key still open after a rotation: build the box with the new key as
 * `current` and the old one in `previous`, then re-seal values for which `needsReseal` holds.
 *
 * The caller's `purpose` (for example the app_config key name) is bound as additional
 * authenticated data, so a ciphertext copied into another column or row does not open there.
 */

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const B64URL = /^[A-Za-z0-9_-]+$/;

export type SecretBoxFailure = 'malformed' | 'unknown_key' | 'authentication_failed';

/** Opening failed. The message names the reason and the key id, never any secret material. */
export class SecretBoxError extends Error {
  constructor(
    readonly reason: SecretBoxFailure,
    message: string,
  ) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

/** A short, non-reversible fingerprint of a key: identifies it without revealing it. */
export function keyId(key: Buffer): string {
  return createHash('sha256')
    .update('secret-box key id\0')
    .update(key)
    .digest('base64url')
    .slice(0, 11);
}

function checkKey(key: Buffer): Buffer {
  if (key.length !== KEY_BYTES) throw new Error(`a secret-box key must be ${KEY_BYTES} bytes`);
  return key;
}

function aad(kid: string, purpose: string): Buffer {
  return Buffer.from(`${VERSION}:${kid}:${purpose}`, 'utf8');
}

export class SecretBox {
  private readonly currentKid: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(current: Buffer, previous: readonly Buffer[] = []) {
    this.currentKid = keyId(checkKey(current));
    this.keys.set(this.currentKid, Buffer.from(current));
    for (const k of previous) {
      const kid = keyId(checkKey(k));
      if (!this.keys.has(kid)) this.keys.set(kid, Buffer.from(k));
    }
  }

  /** The id of the key new values are sealed with. */
  get kid(): string {
    return this.currentKid;
  }

  seal(plaintext: string, purpose: string): string {
    const key = this.keys.get(this.currentKid)!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(this.currentKid, purpose));
    const body = Buffer.concat([
      cipher.update(plaintext, 'utf8'),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    return `${VERSION}:${this.currentKid}:${iv.toString('base64url')}:${body.toString('base64url')}`;
  }

  open(sealed: string, purpose: string): string {
    const parts = sealed.split(':');
    if (
      parts.length !== 4 ||
      parts[0] !== VERSION ||
      !parts.slice(1).every((p) => B64URL.test(p))
    ) {
      throw new SecretBoxError('malformed', 'The stored value is not a v1 secret-box envelope.');
    }
    const [, kid, ivText, bodyText] = parts as [string, string, string, string];
    const key = this.keys.get(kid);
    if (!key) {
      throw new SecretBoxError(
        'unknown_key',
        `The stored value was sealed with key id ${kid}, which is not configured (current key id ${this.currentKid}).`,
      );
    }
    const iv = Buffer.from(ivText, 'base64url');
    const body = Buffer.from(bodyText, 'base64url');
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) {
      throw new SecretBoxError('malformed', 'The stored value is not a v1 secret-box envelope.');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(kid, purpose));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(body.subarray(0, body.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new SecretBoxError(
        'authentication_failed',
        `The stored value under key id ${kid} failed authentication (tampered, or sealed for another purpose).`,
      );
    }
  }

  /** True when the value was sealed under an older key and should be re-sealed. */
  needsReseal(sealed: string): boolean {
    return sealed.split(':')[1] !== this.currentKid;
  }

  /** Whether a stored value looks like an envelope (not that it opens). */
  static isSealed(value: string): boolean {
    return value.startsWith(`${VERSION}:`) && value.split(':').length === 4;
  }
}
