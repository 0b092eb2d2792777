import { isIP } from 'node:net';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';

/** Who performed an admin action, and from which request. */
export interface Actor {
  userId: string | null;
  /** The actor's email at the time, or `cli` for the command-line tool. */
  label: string;
  requestId: string | null;
  ip: string | null;
}

export const CLI_ACTOR: Actor = { userId: null, label: 'cli', requestId: null, ip: null };

export interface AuditEntryInput {
  action: string;
  targetType: string | null;
  targetId: string | null;
  /** Changed fields and such; never a secret. */
  details: Record<string, unknown>;
}

export interface AuditEntryRecord {
  id: string;
  actorUserId: string | null;
  actorLabel: string;
  action: string;
  targetType: string | null;
  targetId: string | null;
  details: Record<string, unknown>;
  requestId: string | null;
  clientIp: string | null;
  createdAt: Date;
}

export interface AuditListQuery {
  limit: number;
  offset: number;
  action?: string;
  targetId?: string;
}

const COLUMNS = `CAST(id AS text) AS "id", actor_user_id AS "actorUserId", actor_label AS "actorLabel",
  action, target_type AS "targetType", target_id AS "targetId", details,
  request_id AS "requestId", host(client_ip) AS "clientIp", created_at AS "createdAt"`;

export class AuditLogRepository {
  constructor(private readonly sequelize: Sequelize) {}

  /** Always inside the transaction of the change it records, so neither exists without the other. */
  async record(actor: Actor, entry: AuditEntryInput, transaction: Tx): Promise<void> {
    await this.sequelize.query(
      `INSERT INTO admin_audit_log
         (actor_user_id, actor_label, action, target_type, target_id, details, request_id, client_ip)
       VALUES (:actorUserId, :actorLabel, :action, :targetType, :targetId, CAST(:details AS jsonb),
               :requestId, CAST(:clientIp AS inet))`,
      {
        transaction,
        type: QueryTypes.INSERT,
        replacements: {
          actorUserId: actor.userId,
          actorLabel: actor.label.slice(0, 255),
          action: entry.action,
          targetType: entry.targetType,
          targetId: entry.targetId,
          details: JSON.stringify(entry.details),
          requestId: actor.requestId,
          // An address the proxy setup could not resolve is recorded as unknown, not refused.
          clientIp: actor.ip && isIP(actor.ip) ? actor.ip : null,
        },
      },
    );
  }

  async list(q: AuditListQuery): Promise<{ items: AuditEntryRecord[]; total: number }> {
    const where: string[] = [];
    const replacements: Record<string, unknown> = { limit: q.limit, offset: q.offset };
    if (q.action !== undefined) {
      where.push('action = :action');
      replacements.action = q.action;
    }
    if (q.targetId !== undefined) {
      where.push('target_id = :targetId');
      replacements.targetId = q.targetId;
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const items = await this.sequelize.query<AuditEntryRecord>(
      `SELECT ${COLUMNS} FROM admin_audit_log ${clause}
       ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset`,
      { type: QueryTypes.SELECT, replacements },
    );
    const [count] = await this.sequelize.query<{ n: number }>(
      `SELECT CAST(count(*) AS int) AS n FROM admin_audit_log ${clause}`,
      { type: QueryTypes.SELECT, replacements },
    );
    return { items, total: count?.n ?? 0 };
  }
}
