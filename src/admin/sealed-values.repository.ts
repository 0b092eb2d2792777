import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';

export interface SealedAppConfigValue {
  key: string;
  value: string;
}

export interface SealedTotpSecret {
  userId: string;
  secret: string;
}

export interface SealedOAuthTokenRow {
  id: string;
  userId: string;
  provider: string;
  accessToken: string;
  accessTokenSecret: string;
}

/**
 * The columns that hold sealed secrets, read under row locks and rewritten in place, for key
 * rotation. `updated_at` is left alone: the secret did not change, only the key sealing it.
 */
export class SealedValuesRepository {
  constructor(private readonly sequelize: Sequelize) {}

  async lockAppConfig(keys: readonly string[], transaction: Tx): Promise<SealedAppConfigValue[]> {
    return this.sequelize.query<SealedAppConfigValue>(
      `SELECT key, value FROM app_config WHERE key IN (:keys) ORDER BY key FOR UPDATE`,
      { type: QueryTypes.SELECT, replacements: { keys: [...keys] }, transaction },
    );
  }

  async setAppConfigValue(key: string, value: string, transaction: Tx): Promise<void> {
    await this.sequelize.query(`UPDATE app_config SET value = :value WHERE key = :key`, {
      type: QueryTypes.UPDATE,
      replacements: { key, value },
      transaction,
    });
  }

  async lockOAuthTokens(transaction: Tx): Promise<SealedOAuthTokenRow[]> {
    return this.sequelize.query<SealedOAuthTokenRow>(
      `SELECT CAST(id AS text) AS id, CAST(user_id AS text) AS "userId",
              CAST(provider AS text) AS provider, access_token AS "accessToken",
              access_token_secret AS "accessTokenSecret"
         FROM oauth_tokens ORDER BY id FOR UPDATE`,
      { type: QueryTypes.SELECT, transaction },
    );
  }

  async setOAuthTokenValues(
    id: string,
    values: { accessToken: string; accessTokenSecret: string },
    transaction: Tx,
  ): Promise<void> {
    await this.sequelize.query(
      `UPDATE oauth_tokens SET access_token = :accessToken, access_token_secret = :accessTokenSecret
        WHERE id = :id`,
      { type: QueryTypes.UPDATE, replacements: { id, ...values }, transaction },
    );
  }

  /**
   * TOTP secrets (active or pending), read without locking the user rows: those are locked
   * only through UsersRepository. Each is rewritten with `replaceTotpSecret`, which only takes
   * when the value is still the one read.
   */
  async listTotpSecrets(transaction: Tx): Promise<SealedTotpSecret[]> {
    return this.sequelize.query<SealedTotpSecret>(
      `SELECT CAST(id AS text) AS "userId", totp_secret AS secret
         FROM users WHERE totp_secret IS NOT NULL ORDER BY id`,
      { type: QueryTypes.SELECT, transaction },
    );
  }

  /**
   * Compare-and-set: a secret replaced meanwhile (a new setup, a removal) was written under the
   * current key anyway, so losing that race leaves nothing to re-encrypt.
   */
  async replaceTotpSecret(
    userId: string,
    from: string,
    to: string,
    transaction: Tx,
  ): Promise<void> {
    await this.sequelize.query(
      `UPDATE users SET totp_secret = :to WHERE id = :userId AND totp_secret = :from`,
      { type: QueryTypes.UPDATE, replacements: { userId, from, to }, transaction },
    );
  }
}
