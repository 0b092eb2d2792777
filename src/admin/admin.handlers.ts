import type { HandlerMap, RequestContext } from '../http/contract';
import { requireAuth } from '../http/contract';
import type { AuthContext } from '../sessions/authenticator';
import type { AdminUsersService, UserChanges } from './admin-users.service';
import { toAdminUser, toAuditEntry, toDiscogsConfig } from './admin.views';
import type { Actor, AuditLogRepository } from './audit-log.repository';
import type { DiscogsConfigService } from './discogs-config.service';

export interface AdminHandlerDeps {
  discogsConfig: DiscogsConfigService;
  adminUsers: AdminUsersService;
  auditLog: AuditLogRepository;
}

/** The spec's defaults for `limit` and `offset`; the validator does not fill query defaults in. */
const DEFAULT_LIMIT = 20;

function pageOf(query: { limit?: number; offset?: number }): { limit: number; offset: number } {
  return { limit: query.limit ?? DEFAULT_LIMIT, offset: query.offset ?? 0 };
}

function actorOf(auth: AuthContext | null, ctx: RequestContext): Actor {
  const { user } = requireAuth(auth);
  return { userId: user.id, label: user.email, requestId: ctx.requestId, ip: ctx.ip };
}

export function adminHandlers(
  d: AdminHandlerDeps,
): Pick<
  HandlerMap,
  | 'getDiscogsConfig'
  | 'putDiscogsConfig'
  | 'deleteDiscogsConfig'
  | 'listUsers'
  | 'updateUser'
  | 'listAuditLog'
> {
  return {
    async getDiscogsConfig() {
      return { status: 200, body: toDiscogsConfig(await d.discogsConfig.status()) };
    },
    async putDiscogsConfig({ body, auth, ctx }) {
      const status = await d.discogsConfig.update(
        { consumerKey: body.consumer_key, consumerSecret: body.consumer_secret },
        actorOf(auth, ctx),
      );
      return { status: 200, body: toDiscogsConfig(status) };
    },
    async deleteDiscogsConfig({ auth, ctx }) {
      await d.discogsConfig.remove(actorOf(auth, ctx));
      return { status: 204 };
    },
    async listUsers({ query }) {
      const { limit, offset } = pageOf(query);
      const page = await d.adminUsers.list({
        limit,
        offset,
        email: query.email,
        isActive: query.is_active,
        isAdmin: query.is_admin,
      });
      return {
        status: 200,
        body: { items: page.items.map(toAdminUser), total: page.total, limit, offset },
      };
    },
    async updateUser({ params, body, auth, ctx }) {
      const changes: UserChanges = {};
      if (body.is_active !== undefined) changes.isActive = body.is_active;
      if (body.is_admin !== undefined) changes.isAdmin = body.is_admin;
      if (body.mfa_enabled === false) changes.mfaEnabled = false;
      const user = await d.adminUsers.update(params.id, changes, actorOf(auth, ctx));
      return { status: 200, body: toAdminUser(user) };
    },
    async listAuditLog({ query }) {
      const { limit, offset } = pageOf(query);
      const page = await d.auditLog.list({
        limit,
        offset,
        action: query.action,
        targetId: query.target_id,
      });
      return {
        status: 200,
        body: { items: page.items.map(toAuditEntry), total: page.total, limit, offset },
      };
    },
  };
}
