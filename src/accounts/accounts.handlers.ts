import type { HandlerMap } from '../http/contract';
import { requireAuth, requireSession } from '../http/contract';
import type { RateLimits } from '../sessions/rate-limits';
import type { AccountDeletionService } from './account-deletion.service';
import type { AccountsService } from './accounts.service';
import { toUser } from './accounts.views';

export function accountHandlers(
  accounts: AccountsService,
  rateLimits: Pick<RateLimits, 'registration'>,
  deletion: AccountDeletionService,
): Pick<HandlerMap, 'registerUser' | 'getCurrentUser' | 'deleteAccount'> {
  return {
    async registerUser({ body, ctx }) {
      await rateLimits.registration(ctx.ip);
      const user = await accounts.register(body.email, body.password, ctx.ip);
      return { status: 201, body: toUser(user) };
    },
    async getCurrentUser({ auth }) {
      return { status: 200, body: toUser(requireAuth(auth).user) };
    },
    async deleteAccount({ body, auth, ctx }) {
      await deletion.deleteAccount(requireSession(auth).user, {
        password: body.password,
        ip: ctx.ip,
        requestId: ctx.requestId,
      });
      return { status: 204 };
    },
  };
}
