import { randomBytes } from 'node:crypto';
import { describe, expect, test } from '@jest/globals';
import { SecretBox, SecretBoxError, keyId } from '../src/crypto/secret-box';

const PURPOSE = 'app_config:discogs_consumer_secret';

function failure(fn: () => unknown): SecretBoxError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SecretBoxError);
    return err as SecretBoxError;
  }
  throw new Error('expected a SecretBoxError');
}

/** Flips one bit of the base64url part at `index` of the envelope. */
function flip(sealed: string, index: number): string {
  const parts = sealed.split(':');
  const bytes = Buffer.from(parts[index]!, 'base64url');
  bytes[bytes.length - 1]! ^= 0x01;
  parts[index] = bytes.toString('base64url');
  return parts.join(':');
}

describe('secret box', () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);

  test('when a value is sealed and opened with the same key and purpose, then the plaintext comes back', () => {
    for (const plain of ['s3cr3t', '', 'ünïcödé ✓ with spaces', 'x'.repeat(5000)]) {
      expect(box.open(box.seal(plain, PURPOSE), PURPOSE)).toBe(plain);
    }
  });

  test('when a value is sealed, then it is a v1 envelope with the key id and does not contain the plaintext', () => {
    const sealed = box.seal('plain-secret-value', PURPOSE);
    expect(sealed).toMatch(/^v1:[A-Za-z0-9_-]{11}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
    expect(sealed.split(':')[1]).toBe(keyId(key));
    expect(sealed).not.toContain('plain-secret-value');
    expect(sealed).not.toContain(Buffer.from('plain-secret-value').toString('base64url'));
  });

  test('when the same value is sealed twice, then the envelopes differ (fresh IV each time)', () => {
    expect(box.seal('same', PURPOSE)).not.toBe(box.seal('same', PURPOSE));
  });

  test('when the ciphertext, the tag or the IV is tampered with, then opening fails authentication', () => {
    const sealed = box.seal('tamper-me', PURPOSE);
    expect(failure(() => box.open(flip(sealed, 3), PURPOSE)).reason).toBe('authentication_failed');
    expect(failure(() => box.open(flip(sealed, 2), PURPOSE)).reason).toBe('authentication_failed');
    const parts = sealed.split(':');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0]! ^= 0x80; // first ciphertext byte rather than the tag
    parts[3] = body.toString('base64url');
    expect(failure(() => box.open(parts.join(':'), PURPOSE)).reason).toBe('authentication_failed');
  });

  test('when the envelope is opened for another purpose, then it fails (AAD binds it to its use)', () => {
    const sealed = box.seal('bound', PURPOSE);
    const err = failure(() => box.open(sealed, 'app_config:discogs_consumer_key'));
    expect(err.reason).toBe('authentication_failed');
    expect(err.message).not.toContain('bound');
  });

  test('when the key id in the envelope is rewritten to another configured key, then it fails authentication', () => {
    const other = randomBytes(32);
    const both = new SecretBox(key, [other]);
    const parts = both.seal('kid-bound', PURPOSE).split(':');
    parts[1] = keyId(other);
    expect(failure(() => both.open(parts.join(':'), PURPOSE)).reason).toBe('authentication_failed');
  });

  test('when a different key opens the envelope, then it is refused as an unknown key id, named clearly', () => {
    const sealed = box.seal('wrong-key', PURPOSE);
    const stranger = new SecretBox(randomBytes(32));
    const err = failure(() => stranger.open(sealed, PURPOSE));
    expect(err.reason).toBe('unknown_key');
    expect(err.message).toContain(keyId(key));
    expect(err.message).not.toContain(key.toString('hex'));
  });

  test('when the key id matches but the key bytes are wrong, then opening fails authentication', () => {
    const sealed = box.seal('forged-kid', PURPOSE);
    const impostor = new SecretBox(randomBytes(32));
    const forged = sealed.split(':');
    forged[1] = impostor.kid;
    expect(failure(() => impostor.open(forged.join(':'), PURPOSE)).reason).toBe(
      'authentication_failed',
    );
  });

  test('when the key is rotated, then old values still open with the old key listed as previous, and are flagged for re-sealing', () => {
    const oldSealed = box.seal('rotate-me', PURPOSE);
    const rotated = new SecretBox(randomBytes(32), [key]);
    expect(rotated.open(oldSealed, PURPOSE)).toBe('rotate-me');
    expect(rotated.needsReseal(oldSealed)).toBe(true);
    const resealed = rotated.seal(rotated.open(oldSealed, PURPOSE), PURPOSE);
    expect(rotated.needsReseal(resealed)).toBe(false);
    expect(resealed.split(':')[1]).toBe(rotated.kid);
  });

  test.each([
    ['plaintext', 'not-an-envelope'],
    ['a wrong version', 'v2:abc:def:ghi'],
    ['too few parts', 'v1:abc:def'],
    ['non-base64url parts', 'v1:abc:d*f:ghi'],
    ['a short IV', `v1:${keyId(key)}:AAAA:${'A'.repeat(40)}`],
  ])('when the stored value is %s, then it is refused as malformed', (_what, value) => {
    expect(failure(() => box.open(value, PURPOSE)).reason).toBe('malformed');
  });

  test('when a key is not 32 bytes, then the box refuses it', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
    expect(() => new SecretBox(randomBytes(32), [randomBytes(31)])).toThrow(/32 bytes/);
  });

  test('when key ids are computed, then they are stable per key and differ between keys', () => {
    expect(keyId(key)).toBe(keyId(Buffer.from(key)));
    expect(keyId(key)).not.toBe(keyId(randomBytes(32)));
    expect(SecretBox.isSealed(box.seal('x', PURPOSE))).toBe(true);
    expect(SecretBox.isSealed('plain')).toBe(false);
  });
});
