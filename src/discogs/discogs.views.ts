import type { Schemas } from '../http/contract';
import type { AuthorizationStart, Connected, ConnectionStatus } from './discogs-connection.service';

/** Records -> response bodies of the Discogs connection; shapes come from the spec. */

export function toDiscogsAuthorization(s: AuthorizationStart): Schemas['DiscogsAuthorization'] {
  return {
    authorize_url: s.authorizeUrl,
    state: s.state,
    expires_in: s.expiresIn,
    callback_mode: s.callbackMode,
  };
}

export function toDiscogsConnected(s: Connected): Schemas['DiscogsConnected'] {
  return {
    connected: true,
    discogs_username: s.username,
    discogs_user_id: s.userId,
    connected_at: s.connectedAt.toISOString(),
  };
}

export function toDiscogsConnection(s: ConnectionStatus): Schemas['DiscogsConnection'] {
  return s.connected ? toDiscogsConnected(s) : { connected: false };
}
