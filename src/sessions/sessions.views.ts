import type { Schemas } from '../http/contract';
import type { SessionRecord } from './sessions.repository';
import type { TokenPair } from './sessions.service';

/** Records -> response bodies of the sessions feature; shapes come from the spec. */

export function toTokenResponse(pair: TokenPair): Schemas['TokenResponse'] {
  return {
    access_token: pair.accessToken,
    token_type: 'bearer',
    expires_in: pair.expiresIn,
    refresh_token: pair.refreshToken,
  };
}

export function toSession(s: SessionRecord, currentSessionId: string): Schemas['Session'] {
  return {
    id: s.id,
    created_at: new Date(s.createdAt).toISOString(),
    last_used_at: new Date(s.lastUsedAt).toISOString(),
    ip: s.ip,
    user_agent: s.userAgent,
    current: s.id === currentSessionId,
  };
}
