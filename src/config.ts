import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * Environment -> typed, frozen configuration. Every variable is documented in .env.example.
 * Parsing collects every problem before failing, so an operator fixes them all in one go;
 * messages name the variable and never echo its value (it may be a secret).
 */

export type DatabaseConfig = { kind: 'url'; url: string } | { kind: 'embedded'; dataDir: string };

export interface Config {
  production: boolean;
  host: string;
  port: number;
  healthPort: number;
  logLevel: string;
  dataDir: string;
  database: DatabaseConfig;
  redisUrl: string | null;
  /** Deadline of every Redis command; past it the caller's fallback takes over. */
  redisCommandTimeoutMs: number;
  migrateOnStart: boolean;
  shutdownTimeoutSeconds: number;
  /** Seconds between passes of the expiry clean-up; 0 turns it off. */
  cleanupIntervalSeconds: number;
  validateResponses: boolean;
  /** Raw key material; null means "generate or reuse one in DATA_DIR" (never in production). */
  jwtSecret: Buffer | null;
  jwtExpireMinutes: number;
  jwtIssuer: string;
  jwtAudience: string;
  bcryptCost: number;
  hashConcurrency: number;
  hashQueueLimit: number;
  refreshTokenExpireDays: number;
  refreshTokenReuseGraceSeconds: number;
  encryptionMasterKey: Buffer | null;
  /** Older master keys: stored values sealed with them still open, and get re-sealed. */
  encryptionPreviousKeys: Buffer[];
  rateLimit: {
    enabled: boolean;
    loginPerMinute: number;
    /** Failed logins per client address across all emails. */
    loginIpPerMinute: number;
    registerPerHour: number;
    /** Password-reset requests per client IP and per email; verification resends per account. */
    resetPerHour: number;
  };
  mail: {
    /** smtp:// or smtps:// with credentials; null: log transport (or no mail in production). */
    smtpUrl: string | null;
    from: string;
    /** Where the client's pages live; mailed links point under it. No trailing slash. */
    publicBaseUrl: string;
  };
  passwordResetTtlMinutes: number;
  emailVerifyTtlHours: number;
  requireVerifiedEmail: boolean;
  trustProxy: string | number | boolean;
  corsOrigins: string[];
  discogs: {
    apiUrl: string;
    authorizeUrl: string;
    userAgent: string;
    callbackUrl: string | null;
    /** Budget of one Discogs call, its retry included; verify makes two, so the default (2 s) keeps it under 5 s. */
    timeoutMs: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.problems.push(`${name} must be an integer between ${min} and ${max}`);
      return fallback;
    }
    return Number(v);
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    this.problems.push(`${name} must be true or false`);
    return fallback;
  }

  url(name: string, fallback: string | null, protocols: string[]): string | null {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) throw new Error('protocol');
      return v;
    } catch {
      // The value may carry a password: name the variable only.
      this.problems.push(`${name} must be a URL starting with ${protocols.join(' or ')}//`);
      return fallback;
    }
  }

  /** 32 bytes given as base64 or hex. */
  key32(name: string): Buffer | null {
    const v = this.raw(name);
    if (v === undefined) return null;
    const buf = decodeKey32(v);
    if (!buf) this.problems.push(`${name} must be 32 bytes, base64- or hex-encoded`);
    return buf;
  }

  /** A comma-separated list of key32 values; bad entries are named by position only. */
  key32List(name: string): Buffer[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    const keys: Buffer[] = [];
    const bad: number[] = [];
    v.split(',').forEach((entry, i) => {
      if (entry.trim() === '') return; // a stray comma is harmless
      const buf = decodeKey32(entry.trim());
      if (buf) keys.push(buf);
      else bad.push(i + 1);
    });
    if (bad.length > 0) {
      this.problems.push(
        `${name} ${bad.length === 1 ? 'entry' : 'entries'} ${bad.join(', ')} (counting from 1) ` +
          'must be 32 bytes, base64- or hex-encoded; separate keys with commas',
      );
    }
    return keys;
  }
}

function decodeKey32(v: string): Buffer | null {
  const buf = /^[0-9a-fA-F]{64}$/.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  return buf.length === 32 ? buf : null;
}

function databaseFrom(r: Reader, dataDir: string): DatabaseConfig {
  const url = r.url('DATABASE_URL', null, ['postgres:', 'postgresql:']);
  if (url) return { kind: 'url', url };
  const address = r.raw('POSTGRES_ADDRESS');
  const parts = ['POSTGRES_USERNAME', 'POSTGRES_PASSWORD', 'POSTGRES_DATABASE'];
  if (address === undefined) {
    const stray = parts.filter((p) => r.raw(p) !== undefined);
    if (stray.length > 0) r.problems.push(`POSTGRES_ADDRESS is required with ${stray.join(', ')}`);
    return { kind: 'embedded', dataDir };
  }
  const m = /^([^:]+|\[[^\]]+\]):(\d{1,5})$/.exec(address);
  if (!m) r.problems.push('POSTGRES_ADDRESS must be host:port');
  const user = r.raw('POSTGRES_USERNAME');
  const database = r.raw('POSTGRES_DATABASE');
  if (!user) r.problems.push('POSTGRES_USERNAME is required with POSTGRES_ADDRESS');
  if (!database) r.problems.push('POSTGRES_DATABASE is required with POSTGRES_ADDRESS');
  const password = r.raw('POSTGRES_PASSWORD');
  const auth =
    encodeURIComponent(user ?? '') + (password ? `:${encodeURIComponent(password)}` : '');
  return {
    kind: 'url',
    url: `postgres://${auth}@${address}/${encodeURIComponent(database ?? '')}`,
  };
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** One TRUST_PROXY entry: a name Express knows, an address, or an address/prefix subnet. */
function validProxyEntry(entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  const family = net.isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return net.isIP(prefix) === 4 && family === 4; // netmask form
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Which proxies may set X-Forwarded-For: false, true, a hop count, or a list (Express syntax). */
function trustProxyFrom(r: Reader): string | number | boolean {
  const v = r.raw('TRUST_PROXY');
  if (v === undefined) return false;
  const lower = v.toLowerCase();
  if (lower === 'false') return false;
  if (lower === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  const entries = lower.split(',').map((e) => e.trim());
  if (entries.some((e) => !validProxyEntry(e))) {
    r.problems.push(
      'TRUST_PROXY must be true, false, a hop count, or a comma-separated list of addresses, subnets, loopback, linklocal or uniquelocal',
    );
    return false;
  }
  return entries.join(',');
}

/** A bare address or `Name <address>`, on one line (it becomes a mail header). */
const MAIL_ADDRESS = /^(?:[^<>\r\n]*<[^<>@\s]+@[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+)$/;

function mailFrom(r: Reader, production: boolean): Config['mail'] {
  const smtpUrl = r.url('SMTP_URL', null, ['smtp:', 'smtps:']);
  const from = r.string('MAIL_FROM', 'Auth service <no-reply@localhost>');
  if (!MAIL_ADDRESS.test(from)) {
    r.problems.push('MAIL_FROM must be an email address, optionally as "Name <address>"');
  }
  if (production && smtpUrl && r.raw('PUBLIC_BASE_URL') === undefined) {
    r.problems.push('PUBLIC_BASE_URL is required with SMTP_URL when NODE_ENV=production');
  }
  const base = r.url('PUBLIC_BASE_URL', 'http://localhost:8004', ['https:', 'http:'])!;
  return { smtpUrl, from, publicBaseUrl: base.replace(/\/+$/, '') };
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const r = new Reader(env);
  const nodeEnv = r.string('NODE_ENV', 'development');
  const production = nodeEnv === 'production';
  const dataDir = path.resolve(r.string('DATA_DIR', './.data'));

  const jwtRaw = r.raw('JWT_SECRET_KEY');
  let jwtSecret: Buffer | null = null;
  if (jwtRaw !== undefined) {
    if (Buffer.byteLength(jwtRaw, 'utf8') < 32)
      r.problems.push('JWT_SECRET_KEY must be at least 32 bytes');
    else jwtSecret = Buffer.from(jwtRaw, 'utf8');
  } else if (production) {
    r.problems.push('JWT_SECRET_KEY is required when NODE_ENV=production');
  }
  const algorithm = r.string('JWT_ALGORITHM', 'HS256');
  if (algorithm !== 'HS256') r.problems.push('JWT_ALGORITHM may only be HS256');

  const bcryptCost = r.int('BCRYPT_COST', 12, 4, 31);
  if (production && bcryptCost < 10)
    r.problems.push('BCRYPT_COST below 10 is refused when NODE_ENV=production');

  const encryptionMasterKey = r.key32('ENCRYPTION_MASTER_KEY');
  if (production && r.raw('ENCRYPTION_MASTER_KEY') === undefined) {
    r.problems.push('ENCRYPTION_MASTER_KEY is required when NODE_ENV=production');
  }

  const hashConcurrency = r.int('HASH_CONCURRENCY', Math.max(1, os.availableParallelism()), 1, 256);

  const config: Config = {
    production,
    host: r.string('HOST', '0.0.0.0'),
    port: r.int('PORT', 8004, 0, 65535),
    healthPort: r.int('HEALTH_PORT', 8005, 0, 65535),
    logLevel: r.string('LOG_LEVEL', production ? 'info' : 'info'),
    dataDir,
    database: databaseFrom(r, dataDir),
    redisUrl: r.url('REDIS_URL', null, ['redis:', 'rediss:']),
    redisCommandTimeoutMs: r.int('REDIS_COMMAND_TIMEOUT_MS', 1000, 10, 60_000),
    migrateOnStart: r.bool('MIGRATE_ON_START', true),
    shutdownTimeoutSeconds: r.int('SHUTDOWN_TIMEOUT_SECONDS', 10, 0, 600),
    cleanupIntervalSeconds: r.int('CLEANUP_INTERVAL_SECONDS', 3600, 0, 7 * 24 * 3600),
    validateResponses: r.bool('VALIDATE_RESPONSES', true),
    jwtSecret,
    jwtExpireMinutes: r.int('JWT_EXPIRE_MINUTES', 30, 1, 24 * 60),
    jwtIssuer: r.string('JWT_ISSUER', 'auth-service'),
    jwtAudience: r.string('JWT_AUDIENCE', 'music-catalogue'),
    bcryptCost,
    hashConcurrency,
    hashQueueLimit: r.int('HASH_QUEUE_LIMIT', hashConcurrency * 8, 0, 10_000),
    refreshTokenExpireDays: r.int('REFRESH_TOKEN_EXPIRE_DAYS', 14, 1, 365),
    refreshTokenReuseGraceSeconds: r.int('REFRESH_TOKEN_REUSE_GRACE_SECONDS', 10, 0, 3600),
    encryptionMasterKey,
    encryptionPreviousKeys: r.key32List('ENCRYPTION_PREVIOUS_KEYS'),
    rateLimit: {
      enabled: r.bool('RATE_LIMIT_ENABLED', true),
      loginPerMinute: r.int('RATE_LIMIT_LOGIN_PER_MINUTE', 10, 1, 1_000_000),
      loginIpPerMinute: r.int('RATE_LIMIT_LOGIN_IP_PER_MINUTE', 30, 1, 1_000_000),
      registerPerHour: r.int('RATE_LIMIT_REGISTER_PER_HOUR', 20, 1, 1_000_000),
      resetPerHour: r.int('RATE_LIMIT_RESET_PER_HOUR', 5, 1, 1_000_000),
    },
    mail: mailFrom(r, production),
    passwordResetTtlMinutes: r.int('PASSWORD_RESET_TTL_MINUTES', 30, 1, 24 * 60),
    emailVerifyTtlHours: r.int('EMAIL_VERIFY_TTL_HOURS', 48, 1, 24 * 30),
    requireVerifiedEmail: r.bool('REQUIRE_VERIFIED_EMAIL', false),
    trustProxy: trustProxyFrom(r),
    corsOrigins: (r.raw('CORS_ORIGINS') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    discogs: {
      apiUrl: r.url('DISCOGS_API_URL', 'https://api.discogs.com', ['https:', 'http:'])!,
      authorizeUrl: r.url('DISCOGS_AUTHORIZE_URL', 'https://www.discogs.com/oauth/authorize', [
        'https:',
        'http:',
      ])!,
      userAgent: r.string('DISCOGS_USER_AGENT', 'MusicCatalogueAuth/0.1'),
      callbackUrl: r.url('DISCOGS_OAUTH_CALLBACK_URL', null, ['https:', 'http:']),
      timeoutMs: r.int('DISCOGS_TIMEOUT_MS', 2_000, 100, 120_000),
    },
  };
  if (config.port !== 0 && config.port === config.healthPort) {
    r.problems.push('PORT and HEALTH_PORT must differ');
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze(config);
}
