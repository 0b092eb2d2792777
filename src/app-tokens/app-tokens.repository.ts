import { QueryTypes, type Sequelize } from 'sequelize';
import { USER_COLUMNS, type UserRecord } from '../accounts/users.repository';
import type { Tx } from '../db/database';

export interface AppTokenRecord {
  id: string;
  userId: string;
  name: string;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
}

const COLUMNS = `CAST(id AS text) AS id, CAST(user_id AS text) AS "userId", name,
  created_at AS "createdAt", expires_at AS "expiresAt", last_used_at AS "lastUsedAt"`;

/**
 * A token is live while it is not expired and was created after the owner's
 * `tokens_valid_after` (moved by a password reset and by a deactivation, from the API or SQL,
 * which thereby end every app token created before them). The one definition of "live" for
 * every query here; `:userId`, `:cutoff` and `:now` are bound by the caller.
 */
const LIVE = `user_id = :userId AND (expires_at IS NULL OR expires_at > :now)
  AND (CAST(:cutoff AS timestamptz) IS NULL OR created_at > :cutoff)`;

/** A token and its owner's columns (USER_COLUMNS), read in one query. */
type FoundRow = UserRecord & {
  tokenId: string;
  tokenName: string;
  tokenCreatedAt: Date;
  tokenExpiresAt: Date | null;
  tokenLastUsedAt: Date | null;
};

/** SQL for app tokens; returns plain objects. Only SHA-256 hashes of tokens are stored. */
export class AppTokensRepository {
  constructor(private readonly sequelize: Sequelize) {}

  async insert(
    input: Pick<AppTokenRecord, 'userId' | 'name' | 'createdAt' | 'expiresAt'> & {
      tokenHash: string;
    },
    tx: Tx,
  ): Promise<AppTokenRecord> {
    const [row] = await this.sequelize.query<AppTokenRecord>(
      `INSERT INTO app_tokens (user_id, name, token_hash, created_at, expires_at)
       VALUES (:userId, :name, :tokenHash, :createdAt, :expiresAt) RETURNING ${COLUMNS}`,
      { type: QueryTypes.SELECT, replacements: input, transaction: tx },
    );
    return row!;
  }

  /**
   * The token with this hash and its owner, in one query on the unique index of token_hash:
   * every request that carries an app token comes through here.
   */
  async findByHash(tokenHash: string): Promise<{ token: AppTokenRecord; user: UserRecord } | null> {
    const [row] = await this.sequelize.query<FoundRow>(
      `SELECT CAST(t.id AS text) AS "tokenId", t.name AS "tokenName",
              t.created_at AS "tokenCreatedAt", t.expires_at AS "tokenExpiresAt",
              t.last_used_at AS "tokenLastUsedAt", u.*
         FROM app_tokens t
         CROSS JOIN LATERAL (SELECT ${USER_COLUMNS} FROM users WHERE users.id = t.user_id) u
        WHERE t.token_hash = :tokenHash`,
      { type: QueryTypes.SELECT, replacements: { tokenHash } },
    );
    if (!row) return null;
    const { tokenId, tokenName, tokenCreatedAt, tokenExpiresAt, tokenLastUsedAt, ...user } = row;
    return {
      token: {
        id: tokenId,
        userId: user.id,
        name: tokenName,
        createdAt: tokenCreatedAt,
        expiresAt: tokenExpiresAt,
        lastUsedAt: tokenLastUsedAt,
      },
      user,
    };
  }

  async listLive(userId: string, cutoff: Date | null, now: Date): Promise<AppTokenRecord[]> {
    return this.sequelize.query<AppTokenRecord>(
      `SELECT ${COLUMNS} FROM app_tokens WHERE ${LIVE} ORDER BY created_at DESC, id DESC`,
      { type: QueryTypes.SELECT, replacements: { userId, cutoff, now } },
    );
  }

  async countLive(userId: string, cutoff: Date | null, now: Date, tx: Tx): Promise<number> {
    const [row] = await this.sequelize.query<{ n: number }>(
      `SELECT CAST(count(*) AS int) AS n FROM app_tokens WHERE ${LIVE}`,
      { type: QueryTypes.SELECT, replacements: { userId, cutoff, now }, transaction: tx },
    );
    return row!.n;
  }

  /** Deletes the user's tokens that can never work again (expired, or ended by the cutoff). */
  async deleteDead(userId: string, cutoff: Date | null, now: Date, tx: Tx): Promise<void> {
    await this.sequelize.query(`DELETE FROM app_tokens WHERE user_id = :userId AND NOT (${LIVE})`, {
      type: QueryTypes.DELETE,
      replacements: { userId, cutoff, now },
      transaction: tx,
    });
  }

  /** Deletes one of the user's tokens; false when the user has no token with this id. */
  async delete(userId: string, id: string): Promise<boolean> {
    const rows = await this.sequelize.query(
      `DELETE FROM app_tokens WHERE id = :id AND user_id = :userId RETURNING id`,
      { type: QueryTypes.SELECT, replacements: { id, userId } },
    );
    return rows.length === 1;
  }

  /** Deletes every token of the user (a password change ends them). */
  async deleteAllOfUser(userId: string, tx: Tx): Promise<void> {
    await this.sequelize.query(`DELETE FROM app_tokens WHERE user_id = :userId`, {
      type: QueryTypes.DELETE,
      replacements: { userId },
      transaction: tx,
    });
  }

  /**
   * Records a use when the stored one is missing or older than `staleBefore`. The condition
   * makes concurrent requests on any replica write at most once per window.
   */
  async touch(id: string, now: Date, staleBefore: Date): Promise<void> {
    await this.sequelize.query(
      `UPDATE app_tokens SET last_used_at = :now
        WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :staleBefore)`,
      { type: QueryTypes.UPDATE, replacements: { id, now, staleBefore } },
    );
  }
}
