import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';

export type AccountTokenPurpose = 'password_reset' | 'email_verify';

/**
 * Mailed single-use tokens, by SHA-256. A row exists only while its token may be spent, so
 * "spent", "voided by a newer one" and "never existed" all look the same: no row.
 */
export class AccountTokensRepository {
  constructor(private readonly sequelize: Sequelize) {}

  /**
   * Stores a new token of `purpose` for the user and deletes the user's older ones in the same
   * transaction: a newer request voids the older tokens. Expired rows of anyone are swept too.
   */
  async issue(
    userId: string,
    purpose: AccountTokenPurpose,
    tokenHash: string,
    expiresAt: Date,
    transaction: Tx,
  ): Promise<void> {
    await this.sequelize.query(
      `DELETE FROM account_tokens
        WHERE (user_id = :userId AND purpose = :purpose) OR expires_at < now() - interval '1 day'`,
      { type: QueryTypes.DELETE, replacements: { userId, purpose }, transaction },
    );
    await this.sequelize.query(
      `INSERT INTO account_tokens (user_id, purpose, token_hash, expires_at)
       VALUES (:userId, :purpose, :tokenHash, :expiresAt)`,
      {
        type: QueryTypes.INSERT,
        replacements: { userId, purpose, tokenHash, expiresAt },
        transaction,
      },
    );
  }

  /** The owner of a live token, without spending it (to refuse bad tokens before slow work). */
  async peek(purpose: AccountTokenPurpose, tokenHash: string): Promise<string | null> {
    const [row] = await this.sequelize.query<{ userId: string }>(
      `SELECT CAST(user_id AS text) AS "userId" FROM account_tokens
        WHERE token_hash = :tokenHash AND purpose = :purpose AND expires_at > now()`,
      { type: QueryTypes.SELECT, replacements: { purpose, tokenHash } },
    );
    return row?.userId ?? null;
  }

  /**
   * Spends a live token: deletes it and returns its owner. The DELETE decides races: of two
   * concurrent spends of one token exactly one gets the row.
   */
  async spend(
    purpose: AccountTokenPurpose,
    tokenHash: string,
    transaction: Tx,
  ): Promise<string | null> {
    const [rows] = (await this.sequelize.query(
      `DELETE FROM account_tokens
        WHERE token_hash = :tokenHash AND purpose = :purpose AND expires_at > now()
        RETURNING CAST(user_id AS text) AS "userId"`,
      { replacements: { purpose, tokenHash }, transaction },
    )) as [{ userId: string }[], unknown];
    return rows[0]?.userId ?? null;
  }
}
