import { QueryTypes, type Sequelize } from 'sequelize';
import { USER_COLUMNS, type UserRecord } from '../accounts/users.repository';

/** What the authenticated path needs to know about a token's user and session. */
export interface SessionCheck {
  /** Null when the user no longer exists. */
  user: UserRecord | null;
  /** True when the session exists, belongs to the user and has not ended. */
  sessionLive: boolean;
}

/**
 * The revocation check of every authenticated request. A cache may wrap it for speed, but only
 * one that the database invalidates (a trigger's NOTIFY), never one that can outlive a change.
 */
export interface SessionState {
  /** `fresh`: read the database even where a cache could answer (admin operations). */
  check(userId: string, sessionId: string, opts?: { fresh?: boolean }): Promise<SessionCheck>;
}

/**
 * Reads the user and the session in one round trip to PostgreSQL, the record of every
 * revocation: losing or freezing Redis can neither bring an ended session back nor stall this.
 */
export class DatabaseSessionState implements SessionState {
  constructor(private readonly sequelize: Sequelize) {}

  async check(userId: string, sessionId: string): Promise<SessionCheck> {
    const [row] = await this.sequelize.query<UserRecord & { sessionLive: boolean }>(
      `SELECT ${USER_COLUMNS},
              EXISTS (SELECT 1 FROM sessions s
                       WHERE s.id = :sessionId AND s.user_id = users.id AND s.ended_at IS NULL)
                AS "sessionLive"
         FROM users WHERE id = :userId`,
      { replacements: { userId, sessionId }, type: QueryTypes.SELECT },
    );
    if (!row) return { user: null, sessionLive: false };
    const { sessionLive, ...user } = row;
    return { user, sessionLive };
  }
}
