import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';

/**
 * Why a refresh token was revoked (`refresh_tokens.revoked_reason`). `deactivated` is written
 * by the database itself: the trigger of migration 20261126003000 ends the sessions of a user
 * whose `is_active` turns false, whoever makes that change.
 */
export type RevokedReason =
  'logout' | 'reuse' | 'password_change' | 'sessions_ended' | 'deactivated';

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

  async revokeFamily(familyId: string, reason: RevokedReason, at: Date, tx?: Tx): Promise<number> {
    return this.revokeWhere('family_id = :familyId', { familyId }, reason, at, tx);
  }

  /** Revokes every live refresh token of the user, optionally sparing one family (the caller's). */
  async revokeAllForUser(
    userId: string,
    reason: RevokedReason,
    at: Date,
    opts: { exceptFamilyId?: string | null; tx?: Tx } = {},
  ): Promise<number> {
    return opts.exceptFamilyId
      ? this.revokeWhere(
          'user_id = :userId AND family_id <> :exceptFamilyId',
          { userId, exceptFamilyId: opts.exceptFamilyId },
          reason,
          at,
          opts.tx,
        )
      : this.revokeWhere('user_id = :userId', { userId }, reason, at, opts.tx);
  }

  /** The session (family) an access token was issued into, if it was issued with a refresh token. */
  async familyOfAccessToken(userId: string, jti: string, tx?: Tx): Promise<string | null> {
    const [row] = await this.sequelize.query<{ familyId: string }>(
      `SELECT family_id AS "familyId" FROM refresh_tokens
        WHERE user_id = :userId AND access_jti = :jti LIMIT 1`,
      { type: QueryTypes.SELECT, replacements: { userId, jti }, transaction: tx },
    );
    return row?.familyId ?? null;
  }

  /**
   * The access tokens issued into these families at or after `since`, whatever the state of
   * their refresh tokens: those are the ones that may still be live.
   */
  async accessTokensOfFamilies(
    familyIds: string[],
    since: Date,
    tx?: Tx,
  ): Promise<{ accessJti: string; createdAt: Date }[]> {
    if (familyIds.length === 0) return [];
    return this.sequelize.query<{ accessJti: string; createdAt: Date }>(
      `SELECT access_jti AS "accessJti", created_at AS "createdAt" FROM refresh_tokens
        WHERE family_id IN (:familyIds) AND access_jti IS NOT NULL AND created_at >= :since`,
      { type: QueryTypes.SELECT, replacements: { familyIds, since }, transaction: tx },
    );
  }

  private async revokeWhere(
    where: string,
    replacements: Record<string, unknown>,
    reason: RevokedReason,
    at: Date,
    tx?: Tx,
  ): Promise<number> {
    const rows = await this.sequelize.query<{ id: string }>(
      `UPDATE refresh_tokens SET revoked_at = :at, revoked_reason = :reason
        WHERE ${where} AND revoked_at IS NULL RETURNING id`,
      { type: QueryTypes.SELECT, replacements: { ...replacements, reason, at }, transaction: tx },
    );
    return rows.length;
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
