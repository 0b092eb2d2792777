import { requireSession, type HandlerMap } from '../http/contract';
import type { AppTokensService } from './app-tokens.service';
import { toAppToken, toCreatedAppToken } from './app-tokens.views';

export function appTokenHandlers(
  appTokens: AppTokensService,
): Pick<HandlerMap, 'createAppToken' | 'listAppTokens' | 'deleteAppToken'> {
  return {
    async createAppToken({ body, auth }) {
      const { user } = requireSession(auth);
      const created = await appTokens.create(user.id, body.name, body.expires_in_days);
      return { status: 201, body: toCreatedAppToken(created) };
    },
    async listAppTokens({ auth }) {
      const list = await appTokens.list(requireSession(auth).user);
      return { status: 200, body: { app_tokens: list.map(toAppToken) } };
    },
    async deleteAppToken({ params, auth }) {
      await appTokens.remove(requireSession(auth).user.id, params.id);
      return { status: 204 };
    },
  };
}
