import { toUser } from '../accounts/accounts.views';
import type { UserRecord } from '../accounts/users.repository';
import type { Schemas } from '../http/contract';
import type { AuditEntryRecord } from './audit-log.repository';
import type { DiscogsConfigStatus } from './discogs-config.service';

/** Records -> response bodies of the admin feature; shapes come from the spec. */

export function toAdminUser(u: UserRecord): Schemas['AdminUser'] {
  return { ...toUser(u), updated_at: new Date(u.updatedAt).toISOString() };
}

export function toAuditEntry(e: AuditEntryRecord): Schemas['AuditLogEntry'] {
  return {
    id: e.id,
    actor_user_id: e.actorUserId,
    actor_label: e.actorLabel,
    action: e.action,
    target_type: e.targetType,
    target_id: e.targetId,
    details: e.details,
    request_id: e.requestId,
    client_ip: e.clientIp,
    created_at: new Date(e.createdAt).toISOString(),
  };
}

/** Also what the CLI's `discogs-show` prints, so both show the same document. */
export function toDiscogsConfig(s: DiscogsConfigStatus): Schemas['DiscogsConfig'] {
  return {
    configured: s.configured,
    consumer_key: s.maskedKey,
    consumer_secret_set: s.secretSet,
    updated_at: s.updatedAt ? s.updatedAt.toISOString() : null,
  };
}
