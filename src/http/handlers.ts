import { accountHandlers } from '../accounts/accounts.handlers';
import { adminHandlers } from '../admin/admin.handlers';
import { appTokenHandlers } from '../app-tokens/app-tokens.handlers';
import { contractHandlers } from '../contract/contract.handlers';
import { discogsHandlers } from '../discogs/discogs.handlers';
import type { Deps } from '../deps';
import { healthHandlers } from '../health/health.handlers';
import { metricsHandlers } from '../health/metrics.handlers';
import { mfaHandlers } from '../mfa/mfa.handlers';
import { sessionHandlers } from '../sessions/sessions.handlers';
import type { HandlerMap } from './contract';

/** operationId -> handler. The type makes a missing or misnamed handler a compile error. */
export function createHandlers(deps: Deps): HandlerMap {
  return {
    ...healthHandlers(deps.health),
    ...metricsHandlers(deps.metrics),
    ...contractHandlers(deps.spec),
    ...accountHandlers({ ...deps, deletion: deps.accountDeletion }),
    ...appTokenHandlers(deps.appTokens),
    ...mfaHandlers(deps.mfa),
    ...sessionHandlers(deps.sessions),
    ...adminHandlers(deps),
    ...discogsHandlers(deps.discogs),
  };
}
