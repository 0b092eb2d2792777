import type { Schemas } from '../http/contract';
import type { AppTokenRecord } from './app-tokens.repository';

/** Records -> response bodies of the app-tokens feature; shapes come from the spec. */

export function toAppToken(r: AppTokenRecord): Schemas['AppToken'] {
  return {
    id: r.id,
    name: r.name,
    created_at: new Date(r.createdAt).toISOString(),
    expires_at: r.expiresAt ? new Date(r.expiresAt).toISOString() : null,
    last_used_at: r.lastUsedAt ? new Date(r.lastUsedAt).toISOString() : null,
  };
}

export function toCreatedAppToken(
  r: AppTokenRecord & { token: string },
): Schemas['CreatedAppToken'] {
  return { ...toAppToken(r), token: r.token };
}
