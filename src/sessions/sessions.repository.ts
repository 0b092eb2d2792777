import { isIP } from 'node:net';
import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';

export type SessionEndReason =
  'logout' | 'reuse' | 'password_change' | 'sessions_ended' | 'session_ended';

/** Where a login came from, recorded with its session. */
export interface SessionClient {
  ip: string;
  userAgent: string | undefined;
}

/** The column's width: longer User-Agent headers are cut, not refused. */
const USER_AGENT_MAX = 512;

export interface SessionRecord {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  ip: string | null;
  userAgent: string | null;
}

/** Which of a user's sessions to end: some by id, or every one but (optionally) one. */
export type SessionScope = { ids: string[] } | { allExcept: string | null };

/**
 * The `sessions` table: one row per login (the refresh-token family it starts, and the `sid`
 * of its access tokens). PostgreSQL is the record of every ended session; nothing else is.
 */
export class SessionsRepository {
  constructor(private readonly sequelize: Sequelize) {}

  async create(userId: string, at: Date, client: SessionClient, tx: Tx): Promise<string> {
    const [row] = await this.sequelize.query<{ id: string }>(
      `INSERT INTO sessions (user_id, created_at, last_used_at, ip, user_agent)
       VALUES (:userId, :at, :at, CAST(:ip AS inet), :userAgent)
       RETURNING id`,
      {
        replacements: {
          userId,
          at,
          // An address the proxy setup could not resolve is recorded as unknown, not refused.
          ip: isIP(client.ip) ? client.ip : null,
          userAgent: client.userAgent ? client.userAgent.slice(0, USER_AGENT_MAX) : null,
        },
        transaction: tx,
        type: QueryTypes.SELECT,
      },
    );
    return row!.id;
  }

  /**
   * The user's live sessions, newest first: not ended, and not expired (the newest refresh
   * token of the family, issued at the last login or refresh, has not expired).
   */
  async listLive(userId: string, now: Date): Promise<SessionRecord[]> {
    return this.sequelize.query<SessionRecord>(
      `SELECT CAST(s.id AS text) AS id, s.created_at AS "createdAt",
              s.last_used_at AS "lastUsedAt", host(s.ip) AS ip, s.user_agent AS "userAgent"
         FROM sessions s
        WHERE s.user_id = :userId AND s.ended_at IS NULL
          AND EXISTS (SELECT 1 FROM refresh_tokens r
                       WHERE r.family_id = s.id AND r.expires_at > :now)
        ORDER BY s.created_at DESC, s.id DESC`,
      { replacements: { userId, now }, type: QueryTypes.SELECT },
    );
  }

  /** Records a refresh as the session's last use; false when the session has ended. */
  async touch(id: string, at: Date, tx: Tx): Promise<boolean> {
    const rows = await this.sequelize.query<{ id: string }>(
      `UPDATE sessions SET last_used_at = :at WHERE id = :id AND ended_at IS NULL RETURNING id`,
      { replacements: { id, at }, transaction: tx, type: QueryTypes.SELECT },
    );
    return rows.length === 1;
  }

  /**
   * Ends the user's live sessions in `scope` and revokes their refresh tokens in the same
   * statement, so that an ended session can never be refreshed back to life. Returns the ids
   * of the sessions it ended (an id that is not the user's, or already ended, is skipped).
   */
  async end(
    userId: string,
    scope: SessionScope,
    reason: SessionEndReason,
    at: Date,
    tx: Tx,
  ): Promise<string[]> {
    if ('ids' in scope && scope.ids.length === 0) return [];
    const which = 'ids' in scope ? 'AND id IN (:ids)' : scope.allExcept ? 'AND id <> :except' : '';
    const rows = await this.sequelize.query<{ id: string }>(
      `WITH ended AS (
         UPDATE sessions SET ended_at = :at, end_reason = :reason
         WHERE user_id = :userId AND ended_at IS NULL ${which}
         RETURNING id
       ), revoked AS (
         UPDATE refresh_tokens SET revoked_at = :at, revoked_reason = :reason
         WHERE family_id IN (SELECT id FROM ended) AND revoked_at IS NULL
       )
       SELECT id FROM ended`,
      {
        replacements: {
          userId,
          at,
          reason,
          ids: 'ids' in scope ? scope.ids : null,
          except: 'allExcept' in scope ? scope.allExcept : null,
        },
        transaction: tx,
        type: QueryTypes.SELECT,
      },
    );
    return rows.map((r) => r.id);
  }
}
