import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric the service exports, on a registry owned by deps (never the global one). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration, labelled by operationId (or route template) and status.',
      labelNames: ['method', 'operation', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    registrations: new Counter({
      name: 'auth_registrations_total',
      help: 'Registration attempts by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    logins: new Counter({
      name: 'auth_logins_total',
      help: 'Login attempts by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    tokenVerifications: new Counter({
      name: 'auth_token_verifications_total',
      help: 'Access-token verifications by outcome.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    sessionsEnded: new Counter({
      name: 'auth_sessions_ended_total',
      help: 'Sessions ended by logout, reuse detection or their owner (outcome = the reason), and requests to end one that named no live session of the caller (not_found).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    appTokensCreated: new Counter({
      name: 'auth_app_tokens_created_total',
      help: 'App token creations by outcome (created, limit_reached).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    appTokenUses: new Counter({
      name: 'auth_app_token_uses_total',
      help: 'Requests carrying an app token, by outcome (accepted, not_allowed, unknown, expired, ended, inactive_user).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    accountDeletions: new Counter({
      name: 'auth_account_deletions_total',
      help: 'Account deletion attempts by outcome (deleted, invalid_password, invalid_mfa_code, last_admin).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    rateLimitRejections: new Counter({
      name: 'auth_rate_limit_rejections_total',
      help: 'Requests refused by a rate limiter.',
      labelNames: ['limiter'] as const,
      registers,
    }),
    passwordHashDuration: new Histogram({
      name: 'auth_password_hash_duration_seconds',
      help: 'Time spent in bcrypt, by operation.',
      labelNames: ['op'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2],
      registers,
    }),
    mails: new Counter({
      name: 'auth_mails_total',
      help: 'Mails by kind and outcome: sent, retried (an attempt failed), failed (given up), skipped (mail not configured).',
      labelNames: ['kind', 'outcome'] as const,
      registers,
    }),
    mfaChallenges: new Counter({
      name: 'auth_mfa_challenges_total',
      help: 'Second-factor login steps by outcome: issued, totp, recovery_code, invalid_code, replayed, exhausted, invalid_token.',
      labelNames: ['outcome'] as const,
      registers,
    }),
    expiredRowsDeleted: new Counter({
      name: 'auth_expired_rows_deleted_total',
      help: 'Rows past their lifetime deleted by the expiry clean-up, by table.',
      labelNames: ['table'] as const,
      registers,
    }),
    expiryCleanupPasses: new Counter({
      name: 'auth_expiry_cleanup_passes_total',
      help: 'Expiry clean-up passes by outcome (done, skipped: another replica held the lock, failed).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    discogsCalls: new Counter({
      name: 'auth_discogs_upstream_calls_total',
      help: 'Calls to the Discogs API by endpoint and outcome.',
      labelNames: ['call', 'outcome'] as const,
      registers,
    }),
    userStateCache: new Counter({
      name: 'auth_user_state_cache_total',
      help: 'User-and-session checks of the authenticated path: answered from memory (hit), read from the database and kept (miss), or read because the cache was not trusted or not asked (bypass).',
      labelNames: ['result'] as const,
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
