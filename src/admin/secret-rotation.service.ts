import type { Database } from '../db/database';
import { appConfigPurpose, oauthTokenPurpose, totpSecretPurpose } from '../crypto/purposes';
import { SecretBoxError, type SecretBox } from '../crypto/secret-box';
import { StoredSecretUnreadableError } from '../errors';
import type { Actor, AuditLogRepository } from './audit-log.repository';
import { DISCOGS_SECRET } from './discogs-config.service';
import type { SealedValuesRepository } from './sealed-values.repository';

/** `app_config` keys whose values are sealed; a new secret setting must be listed here. */
const SEALED_APP_CONFIG_KEYS = [DISCOGS_SECRET] as const;

/** Failures listed in the error; the rest are only counted, to keep the message readable. */
const LISTED_FAILURES = 10;

export interface ReencryptTally {
  /** Values that were sealed under an older key and now are under the current one. */
  reencrypted: number;
  /** Values already under the current key, left as they were. */
  unchanged: number;
}

export interface ReencryptResult {
  /** Id (fingerprint) of the current key; not secret. */
  keyId: string;
  appConfig: ReencryptTally;
  oauthTokens: ReencryptTally;
  /** TOTP secrets in `users.totp_secret`. */
  totpSecrets: ReencryptTally;
}

/** Moves every stored secret onto the current ENCRYPTION_MASTER_KEY, so older keys can go. */
export class SecretRotationService {
  constructor(
    private readonly db: Pick<Database, 'transaction'>,
    private readonly sealed: SealedValuesRepository,
    private readonly audit: AuditLogRepository,
    private readonly box: SecretBox,
  ) {}

  /**
   * All or nothing, in one transaction: if any value does not open with the configured keys,
   * nothing is rewritten and the error names each such value (where it is, never what it is).
   * Values already under the current key are not touched, so running it again is harmless.
   */
  async reencryptAll(actor: Actor): Promise<ReencryptResult> {
    return this.db.transaction(async (transaction) => {
      const failures: string[] = [];
      const reseal = (tally: ReencryptTally, value: string, purpose: string, where: string) => {
        if (!this.box.needsReseal(value)) {
          tally.unchanged++;
          return value;
        }
        try {
          const resealed = this.box.seal(this.box.open(value, purpose), purpose);
          tally.reencrypted++;
          return resealed;
        } catch (err) {
          if (!(err instanceof SecretBoxError)) throw err;
          failures.push(`${where}: ${err.message}`);
          return value;
        }
      };

      const appConfig: ReencryptTally = { reencrypted: 0, unchanged: 0 };
      for (const row of await this.sealed.lockAppConfig(SEALED_APP_CONFIG_KEYS, transaction)) {
        const value = reseal(
          appConfig,
          row.value,
          appConfigPurpose(row.key),
          `app_config ${row.key}`,
        );
        if (value !== row.value) await this.sealed.setAppConfigValue(row.key, value, transaction);
      }

      const oauthTokens: ReencryptTally = { reencrypted: 0, unchanged: 0 };
      for (const row of await this.sealed.lockOAuthTokens(transaction)) {
        const where = `oauth_tokens ${row.id}`;
        const values = {
          accessToken: reseal(
            oauthTokens,
            row.accessToken,
            oauthTokenPurpose(row.provider, row.userId, 'access_token'),
            `${where} access_token`,
          ),
          accessTokenSecret: reseal(
            oauthTokens,
            row.accessTokenSecret,
            oauthTokenPurpose(row.provider, row.userId, 'access_token_secret'),
            `${where} access_token_secret`,
          ),
        };
        if (
          values.accessToken !== row.accessToken ||
          values.accessTokenSecret !== row.accessTokenSecret
        ) {
          await this.sealed.setOAuthTokenValues(row.id, values, transaction);
        }
      }

      const totpSecrets: ReencryptTally = { reencrypted: 0, unchanged: 0 };
      for (const row of await this.sealed.listTotpSecrets(transaction)) {
        const value = reseal(
          totpSecrets,
          row.secret,
          totpSecretPurpose(row.userId),
          `users ${row.userId} totp_secret`,
        );
        if (value !== row.secret) {
          await this.sealed.replaceTotpSecret(row.userId, row.secret, value, transaction);
        }
      }

      if (failures.length > 0) {
        // Thrown inside the transaction: everything above is rolled back.
        const more = failures.length - LISTED_FAILURES;
        throw new StoredSecretUnreadableError(
          `${failures.length} stored secret(s) do not decrypt with the configured keys, so ` +
            'nothing was re-encrypted; add the missing key to ENCRYPTION_PREVIOUS_KEYS and run ' +
            `again. ${failures.slice(0, LISTED_FAILURES).join('; ')}` +
            (more > 0 ? `; and ${more} more` : ''),
        );
      }

      // Like the other admin actions, a run that changes nothing leaves no audit entry.
      if (appConfig.reencrypted + oauthTokens.reencrypted + totpSecrets.reencrypted > 0) {
        await this.audit.record(
          actor,
          {
            action: 'secrets.reencrypt',
            targetType: 'encryption_key',
            targetId: this.box.kid,
            details: {
              app_config: { ...appConfig },
              oauth_tokens: { ...oauthTokens },
              totp_secrets: { ...totpSecrets },
            },
          },
          transaction,
        );
      }
      return { keyId: this.box.kid, appConfig, oauthTokens, totpSecrets };
    });
  }
}
