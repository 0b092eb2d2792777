import { accountHandlers } from '../accounts/accounts.handlers';
import { contractHandlers } from '../contract/contract.handlers';
import type { Deps } from '../deps';
import { healthHandlers } from '../health/health.handlers';
import { sessionHandlers } from '../sessions/sessions.handlers';
import type { HandlerMap } from './contract';

/** operationId -> handler. The type makes a missing or misnamed handler a compile error. */
export function createHandlers(deps: Deps): HandlerMap {
  return {
    ...healthHandlers(deps.health),
    ...contractHandlers(deps.spec),
    ...accountHandlers(deps.accounts),
    ...sessionHandlers(deps.sessions),
  };
}
