import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';

export type OAuthProvider = 'discogs';

/** A row of `oauth_tokens`; the two token columns hold secret-box envelopes, never plaintext. */
export interface StoredOAuthToken {
  userId: string;
  provider: OAuthProvider;
  sealedAccessToken: string;
  sealedAccessTokenSecret: string;
  providerUserId: string | null;
  providerUsername: string | null;
  /** When the account was last connected (the row's `updated_at`). */
  connectedAt: Date;
}

export interface NewOAuthToken {
  userId: string;
  provider: OAuthProvider;
  sealedAccessToken: string;
  sealedAccessTokenSecret: string;
  providerUserId: string;
  providerUsername: string;
}

const COLUMNS = `CAST(user_id AS text) AS "userId", CAST(provider AS text) AS provider,
  access_token AS "sealedAccessToken", access_token_secret AS "sealedAccessTokenSecret",
  provider_user_id AS "providerUserId", provider_username AS "providerUsername",
  updated_at AS "connectedAt"`;

export class OAuthTokensRepository {
  constructor(private readonly sequelize: Sequelize) {}

  /**
   * One row per user and provider: the unique constraint decides, so two connections finishing
   * at once leave one row (the later one's tokens), never two.
   */
  async upsert(row: NewOAuthToken, transaction?: Tx): Promise<StoredOAuthToken> {
    const [stored] = await this.sequelize.query<StoredOAuthToken>(
      `INSERT INTO oauth_tokens (user_id, provider, access_token, access_token_secret,
                                 provider_user_id, provider_username)
       VALUES (:userId, :provider, :sealedAccessToken, :sealedAccessTokenSecret,
               :providerUserId, :providerUsername)
       ON CONFLICT ON CONSTRAINT oauth_tokens_user_provider_key DO UPDATE SET
         access_token = EXCLUDED.access_token,
         access_token_secret = EXCLUDED.access_token_secret,
         provider_user_id = EXCLUDED.provider_user_id,
         provider_username = EXCLUDED.provider_username,
         updated_at = clock_timestamp()
       RETURNING ${COLUMNS}`,
      { type: QueryTypes.SELECT, replacements: { ...row }, transaction },
    );
    return stored!;
  }

  async find(
    userId: string,
    provider: OAuthProvider,
    transaction?: Tx,
  ): Promise<StoredOAuthToken | null> {
    const [row] = await this.sequelize.query<StoredOAuthToken>(
      `SELECT ${COLUMNS} FROM oauth_tokens WHERE user_id = :userId AND provider = :provider`,
      { type: QueryTypes.SELECT, replacements: { userId, provider }, transaction },
    );
    return row ?? null;
  }

  /** True when there was a row to delete. */
  async delete(userId: string, provider: OAuthProvider, transaction?: Tx): Promise<boolean> {
    const rows = await this.sequelize.query(
      `DELETE FROM oauth_tokens WHERE user_id = :userId AND provider = :provider RETURNING id`,
      { type: QueryTypes.SELECT, replacements: { userId, provider }, transaction },
    );
    return rows.length > 0;
  }
}
