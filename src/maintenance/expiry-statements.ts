/**
 * What the expiry clean-up deletes: one entry per table that collects rows with a lifetime.
 * A feature that adds such a table appends its entry here; the job, its lock and its metric
 * need no change.
 *
 * Each `sql` deletes at most `:limit` rows that nothing needs any more and returns one row per
 * deleted row (`RETURNING 1`). `FOR UPDATE SKIP LOCKED` keeps it from waiting on (or
 * deadlocking with) a request that holds one of the rows, and makes it safe even if two
 * passes ever ran at once: a row is deleted by one of them only.
 */
export interface ExpiryStatement {
  /** The table, used as the metric's `table` label. */
  table: string;
  sql: string;
}

export const EXPIRY_STATEMENTS: readonly ExpiryStatement[] = [
  {
    // A day past expiry: an access token lives at most JWT_EXPIRE_MINUTES <= 1440, so every
    // access token issued with (or recorded as revoked through) this row has expired too, and
    // a replay of the refresh token itself is refused as expired or unknown either way.
    table: 'refresh_tokens',
    sql: `DELETE FROM refresh_tokens WHERE id IN (
            SELECT id FROM refresh_tokens WHERE expires_at < now() - interval '1 day'
            ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)
          RETURNING 1`,
  },
  {
    // Sessions ended a day ago, or past their lifetime (no refresh token that has not been a day
    // expired, unused for a day): every access token naming them has expired by then, and a
    // token whose session is gone is refused anyway. Their refresh tokens go with them (cascade).
    table: 'sessions',
    sql: `DELETE FROM sessions WHERE id IN (
            SELECT s.id FROM sessions s
            WHERE s.ended_at < now() - interval '1 day'
               OR (s.last_used_at < now() - interval '1 day'
                   AND NOT EXISTS (SELECT 1 FROM refresh_tokens r
                                   WHERE r.family_id = s.id
                                     AND r.expires_at >= now() - interval '1 day'))
            ORDER BY s.last_used_at LIMIT :limit FOR UPDATE OF s SKIP LOCKED)
          RETURNING 1`,
  },
  {
    // Mailed reset and verification tokens: an expired one is refused like an unknown one.
    table: 'account_tokens',
    sql: `DELETE FROM account_tokens WHERE id IN (
            SELECT id FROM account_tokens WHERE expires_at < now()
            ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)
          RETURNING 1`,
  },
  {
    // Pending second login steps (mfa_token): an expired one is refused like an unknown one.
    table: 'mfa_challenges',
    sql: `DELETE FROM mfa_challenges WHERE id IN (
            SELECT id FROM mfa_challenges WHERE expires_at < now()
            ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)
          RETURNING 1`,
  },
  {
    // App tokens past their expiry: refused like unknown ones, and no longer listed.
    table: 'app_tokens',
    sql: `DELETE FROM app_tokens WHERE id IN (
            SELECT id FROM app_tokens WHERE expires_at < now()
            ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)
          RETURNING 1`,
  },
];
