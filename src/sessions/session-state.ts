import { QueryTypes, type Sequelize } from 'sequelize';
import type { UserRecord } from '../accounts/users.repository';

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
  check(userId: string, sessionId: string): Promise<SessionCheck>;
}

interface Row {
  id: string;
  email: string;
  hashed_password: string;
  is_active: boolean;
  is_admin: boolean;
  tokens_valid_after: Date | null;
  created_at: Date;
  updated_at: Date;
  session_live: boolean;
}

/**
 * Reads the user and the session in one round trip to PostgreSQL, the record of every
 * revocation: losing or freezing Redis can neither bring an ended session back nor stall this.
 */
export class DatabaseSessionState implements SessionState {
  constructor(private readonly sequelize: Sequelize) {}

  async check(userId: string, sessionId: string): Promise<SessionCheck> {
    const rows = await this.sequelize.query<Row>(
      `SELECT u.id, u.email, u.hashed_password, u.is_active, u.is_admin, u.tokens_valid_after,
              u.created_at, u.updated_at, s.id IS NOT NULL AS session_live
       FROM users u
       LEFT JOIN sessions s ON s.id = :sessionId AND s.user_id = u.id AND s.ended_at IS NULL
       WHERE u.id = :userId`,
      { replacements: { userId, sessionId }, type: QueryTypes.SELECT },
    );
    const r = rows[0];
    if (!r) return { user: null, sessionLive: false };
    return {
      user: {
        id: r.id,
        email: r.email,
        hashedPassword: r.hashed_password,
        isActive: r.is_active,
        isAdmin: r.is_admin,
        tokensValidAfter: r.tokens_valid_after,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      },
      sessionLive: r.session_live,
    };
  }
}
