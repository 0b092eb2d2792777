import type { Database } from '../db/database';
import { appConfigPurpose } from '../crypto/purposes';
import { SecretBoxError, type SecretBox } from '../crypto/secret-box';
import { StoredSecretUnreadableError, ValidationError, type FieldError } from '../errors';
import type { AppConfigRepository } from './app-config.repository';
import type { Actor, AuditLogRepository } from './audit-log.repository';

export const DISCOGS_KEY = 'discogs_consumer_key';
export const DISCOGS_SECRET = 'discogs_consumer_secret';
const KEYS = [DISCOGS_KEY, DISCOGS_SECRET] as const;
/** Bound into the ciphertext, so the value opens only as this setting. */
const SECRET_PURPOSE = appConfigPurpose(DISCOGS_SECRET);

/** Same rule as the spec's DiscogsCredential schema; the CLI has no validator in front of it. */
const CREDENTIAL = /^[\x21-\x7E]{1,200}$/;

export interface DiscogsCredentials {
  consumerKey: string;
  consumerSecret: string;
}

export interface DiscogsConfigStatus {
  configured: boolean;
  maskedKey: string | null;
  secretSet: boolean;
  updatedAt: Date | null;
}

/** At most the last 4 characters, and only of a key long enough that they give little away. */
export function maskKey(key: string): string {
  return key.length >= 12 ? `****${key.slice(-4)}` : '****';
}

export class DiscogsConfigService {
  constructor(
    private readonly db: Pick<Database, 'transaction'>,
    private readonly appConfig: AppConfigRepository,
    private readonly audit: AuditLogRepository,
    private readonly box: SecretBox,
  ) {}

  async status(): Promise<DiscogsConfigStatus> {
    const rows = await this.appConfig.getMany(KEYS);
    const key = rows.get(DISCOGS_KEY);
    const secret = rows.get(DISCOGS_SECRET);
    const times = [key, secret]
      .filter((r) => r !== undefined)
      .map((r) => new Date(r.updatedAt).getTime());
    return {
      configured: key !== undefined && secret !== undefined,
      maskedKey: key ? maskKey(key.value) : null,
      secretSet: secret !== undefined,
      updatedAt: times.length ? new Date(Math.max(...times)) : null,
    };
  }

  /** The consumer credentials in clear, for signing requests to Discogs; null when not configured. */
  async credentials(): Promise<DiscogsCredentials | null> {
    const rows = await this.appConfig.getMany(KEYS);
    const key = rows.get(DISCOGS_KEY);
    const secret = rows.get(DISCOGS_SECRET);
    if (!key || !secret) return null;
    try {
      return {
        consumerKey: key.value,
        consumerSecret: this.box.open(secret.value, SECRET_PURPOSE),
      };
    } catch (err) {
      if (!(err instanceof SecretBoxError)) throw err;
      throw new StoredSecretUnreadableError(
        'The stored Discogs consumer secret cannot be decrypted with the configured keys; ' +
          'an operator must restore the key it was encrypted with.',
        err,
      );
    }
  }

  async update(input: DiscogsCredentials, actor: Actor): Promise<DiscogsConfigStatus> {
    assertCredentials(input);
    await this.db.transaction(async (transaction) => {
      const before = await this.appConfig.getMany(KEYS, transaction);
      const changed: string[] = [];
      if (before.get(DISCOGS_KEY)?.value !== input.consumerKey) changed.push('consumer_key');
      if (!this.sameSecret(before.get(DISCOGS_SECRET)?.value, input.consumerSecret)) {
        changed.push('consumer_secret');
      }
      await this.appConfig.upsert(DISCOGS_KEY, input.consumerKey, transaction);
      await this.appConfig.upsert(
        DISCOGS_SECRET,
        this.box.seal(input.consumerSecret, SECRET_PURPOSE),
        transaction,
      );
      await this.audit.record(
        actor,
        {
          action: 'discogs_config.update',
          targetType: 'app_config',
          targetId: 'discogs',
          details: { changed, consumer_key: maskKey(input.consumerKey) },
        },
        transaction,
      );
    });
    return this.status();
  }

  async remove(actor: Actor): Promise<void> {
    await this.db.transaction(async (transaction) => {
      const deleted = await this.appConfig.deleteMany(KEYS, transaction);
      await this.audit.record(
        actor,
        {
          action: 'discogs_config.delete',
          targetType: 'app_config',
          targetId: 'discogs',
          details: { was_configured: deleted > 0 },
        },
        transaction,
      );
    });
  }

  private sameSecret(sealed: string | undefined, candidate: string): boolean {
    if (sealed === undefined) return false;
    try {
      return this.box.open(sealed, SECRET_PURPOSE) === candidate;
    } catch {
      // Sealed under a key no longer configured: it is being replaced either way.
      return false;
    }
  }
}

function assertCredentials(input: DiscogsCredentials): void {
  const errors: FieldError[] = [];
  const message = 'must be 1 to 200 printable ASCII characters without spaces';
  if (!CREDENTIAL.test(input.consumerKey)) errors.push({ path: '/body/consumer_key', message });
  if (!CREDENTIAL.test(input.consumerSecret))
    errors.push({ path: '/body/consumer_secret', message });
  if (errors.length) throw new ValidationError(errors);
}
