import type { Schemas } from '../http/contract';
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
