import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';
import type { SessionEndReason } from './sessions.repository';

/**
 * Why a refresh token was revoked (`refresh_tokens.revoked_reason`): the end reason of its
 * session, or `deactivated`, written by the database itself (the deactivation trigger ends the
 * sessions of a user whose `is_active` turns false, whoever makes that change).
 */
export type RevokedReason = SessionEndReason | 'deactivated';

export interface RefreshTokenRecord {
  id: string;
  userId: string;
  familyId: string;
  parentId: string | null;
  tokenHash: string;
  accessJti: string | null;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  replacedBy: string | null;
  revokedAt: Date | null;
  revokedReason: RevokedReason | null;
}

type NewRefreshToken = Pick<
  RefreshTokenRecord,
  'userId' | 'familyId' | 'parentId' | 'tokenHash' | 'accessJti' | 'createdAt' | 'expiresAt'
>;

const COLUMNS = `id, user_id AS "userId", family_id AS "familyId", parent_id AS "parentId",
  token_hash AS "tokenHash", access_jti AS "accessJti", created_at AS "createdAt",
  expires_at AS "expiresAt", used_at AS "usedAt", replaced_by AS "replacedBy",
  revoked_at AS "revokedAt", revoked_reason AS "revokedReason"`;

/**
 * SQL for refresh tokens; returns plain objects. Only hashes are ever stored. Times are set by
 * the service from one clock, never by column defaults.
 */
export class RefreshTokensRepository {
  constructor(private readonly sequelize: Sequelize) {}

  async insert(input: NewRefreshToken, tx?: Tx): Promise<RefreshTokenRecord> {
    const [row] = await this.select(
      `INSERT INTO refresh_tokens
         (user_id, family_id, parent_id, token_hash, access_jti, created_at, expires_at)
       VALUES (:userId, :familyId, :parentId, :tokenHash, :accessJti, :createdAt, :expiresAt)
       RETURNING ${COLUMNS}`,
      input,
      tx,
    );
    return row!;
  }

  /**
   * Reads a token and locks its row until the transaction ends: a concurrent refresh of the
   * same token waits here and then sees the first one's outcome.
   */
  async findByHashForUpdate(tokenHash: string, tx: Tx): Promise<RefreshTokenRecord | null> {
    const [row] = await this.select(
      `SELECT ${COLUMNS} FROM refresh_tokens WHERE token_hash = :tokenHash FOR UPDATE`,
      { tokenHash },
      tx,
    );
    return row ?? null;
  }

  async findByHash(tokenHash: string): Promise<RefreshTokenRecord | null> {
    const [row] = await this.select(
      `SELECT ${COLUMNS} FROM refresh_tokens WHERE token_hash = :tokenHash`,
      { tokenHash },
    );
    return row ?? null;
  }

  async markUsed(id: string, replacedBy: string, at: Date, tx: Tx): Promise<void> {
    await this.sequelize.query(
      `UPDATE refresh_tokens SET used_at = :at, replaced_by = :replacedBy WHERE id = :id`,
      { type: QueryTypes.UPDATE, replacements: { id, replacedBy, at }, transaction: tx },
    );
  }

  private select(
    sql: string,
    replacements: Record<string, unknown>,
    tx?: Tx,
  ): Promise<RefreshTokenRecord[]> {
    return this.sequelize.query<RefreshTokenRecord>(sql, {
      type: QueryTypes.SELECT,
      replacements,
      transaction: tx,
    });
  }
}
