import type { HandlerMap } from '../http/contract';
import { requireAuth } from '../http/contract';
import type { RateLimits } from '../sessions/rate-limits';
import type { AccountsService } from './accounts.service';
import { toUser } from './accounts.views';

export function accountHandlers(
  accounts: AccountsService,
  rateLimits: Pick<RateLimits, 'registration'>,
): Pick<HandlerMap, 'registerUser' | 'getCurrentUser'> {
  return {
    async registerUser({ body, ctx }) {
      await rateLimits.registration(ctx.ip);
      const user = await accounts.register(body.email, body.password, ctx.ip);
      return { status: 201, body: toUser(user) };
    },
    async getCurrentUser({ auth }) {
      return { status: 200, body: toUser(requireAuth(auth).user) };
    },
  };
}
