import type { Logger } from 'pino';
import type { Config } from '../config';
import { loadOrCreateSecret } from '../local-secrets';

export interface SecretKeys {
  /** HS256 key for access tokens. */
  jwt: Buffer;
  /** AES-256-GCM key for third-party secrets at rest. */
  encryption: Buffer;
}

/** The configured keys, or keys generated once into DATA_DIR (outside production only). */
export function loadSecretKeys(config: Readonly<Config>, logger: Logger): SecretKeys {
  let jwt = config.jwtSecret;
  if (!jwt) {
    const { key, created } = loadOrCreateSecret(config.dataDir, 'jwt-secret.key', 48);
    jwt = key;
    logger.warn(
      { dataDir: config.dataDir, created },
      'JWT_SECRET_KEY is not set: using a generated key kept in DATA_DIR (never do this in production)',
    );
  }
  let encryption = config.encryptionMasterKey;
  if (!encryption) {
    const { key, created } = loadOrCreateSecret(config.dataDir, 'encryption-master.key', 32);
    encryption = key;
    logger.warn(
      { dataDir: config.dataDir, created },
      'ENCRYPTION_MASTER_KEY is not set: using a generated key kept in DATA_DIR (never do this in production)',
    );
  }
  return { jwt, encryption };
}
