/**
 * The `purpose` (additional authenticated data) each stored secret is sealed for, in one place:
 * whatever writes, reads or re-encrypts a column must agree on it, or the value will not open.
 * A purpose names the table, the row and the column, so a ciphertext copied elsewhere is refused.
 */

/** A secret value of the `app_config` row with this key. */
export function appConfigPurpose(key: string): string {
  return `app_config:${key}`;
}

export const OAUTH_TOKEN_SEALED_COLUMNS = ['access_token', 'access_token_secret'] as const;
export type OAuthTokenSealedColumn = (typeof OAUTH_TOKEN_SEALED_COLUMNS)[number];

/** A token column of the `oauth_tokens` row of this user and provider (unique together). */
export function oauthTokenPurpose(
  provider: string,
  userId: string,
  column: OAuthTokenSealedColumn,
): string {
  return `oauth_tokens:${provider}:${userId}:${column}`;
}

/** The pending request token kept in the short-lived store under an OAuth `state`. */
export function oauthStatePurpose(provider: string, userId: string, state: string): string {
  return `oauth_state:${provider}:${userId}:${state}`;
}

/** The TOTP secret of this user (`users.totp_secret`). */
export function totpSecretPurpose(userId: string): string {
  return `users:${userId}:totp_secret`;
}
