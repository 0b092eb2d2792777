import { requireAuth, type HandlerMap } from '../http/contract';
import type { DiscogsConnectionService } from './discogs-connection.service';
import { toDiscogsAuthorization, toDiscogsConnected, toDiscogsConnection } from './discogs.views';

export function discogsHandlers(
  discogs: DiscogsConnectionService,
): Pick<
  HandlerMap,
  'authorizeDiscogs' | 'verifyDiscogs' | 'getDiscogsConnection' | 'deleteDiscogsConnection'
> {
  return {
    async authorizeDiscogs({ auth }) {
      const start = await discogs.authorize(requireAuth(auth).user.id);
      return { status: 200, body: toDiscogsAuthorization(start) };
    },
    async verifyDiscogs({ body, auth }) {
      const connected = await discogs.verify(
        requireAuth(auth).user.id,
        body.state,
        body.oauth_verifier,
      );
      return { status: 200, body: toDiscogsConnected(connected) };
    },
    async getDiscogsConnection({ auth }) {
      return {
        status: 200,
        body: toDiscogsConnection(await discogs.status(requireAuth(auth).user.id)),
      };
    },
    async deleteDiscogsConnection({ auth }) {
      await discogs.disconnect(requireAuth(auth).user.id);
      return { status: 204 };
    },
  };
}
