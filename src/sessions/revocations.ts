import type { EphemeralStore } from '../state/ephemeral-store';

/**
 * Revoked access-token ids, kept until the token would have expired anyway. Backed by the
 * ephemeral store, so with Redis every replica refuses a token revoked on any of them.
 */
export interface RevocationStore {
  revoke(jti: string, expiresAt: Date): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
}

export class StoreRevocations implements RevocationStore {
  constructor(private readonly store: EphemeralStore) {}

  async revoke(jti: string, expiresAt: Date): Promise<void> {
    const ttl = Math.ceil((expiresAt.getTime() - Date.now()) / 1000) + 5;
    if (ttl > 0) await this.store.set(`revoked:${jti}`, '1', ttl);
  }

  async isRevoked(jti: string): Promise<boolean> {
    return (await this.store.get(`revoked:${jti}`)) !== null;
  }
}
