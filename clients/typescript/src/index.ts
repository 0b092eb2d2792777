import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from '../../../generated/openapi';

/**
 * A typed client for the auth service: openapi-fetch over the types generated from the
 * contract, plus token handling. `client.api` is the raw typed client for any operation;
 * the methods below cover the common flows and throw `AuthApiError` on a problem+json answer.
 */

export type { paths, components };
export type Schemas = components['schemas'];
export type User = Schemas['User'];
export type TokenResponse = Schemas['TokenResponse'];
export type Problem = Schemas['Problem'] & Partial<Schemas['OAuth2Error']>;
/** The second step of a login with a TOTP factor: a current code or an unused recovery code. */
export type SecondFactor = { code: string } | { recovery_code: string };

/** Where the tokens live between calls; in memory unless you pass your own (e.g. secure storage). */
export interface TokenStore {
  get(): TokenResponse | undefined;
  set(tokens: TokenResponse | undefined): void;
}

export interface AuthClientOptions {
  /** The service's API origin, e.g. `https://auth.example.com`. */
  baseUrl: string;
  tokens?: TokenStore;
  /**
   * An app token (`ast_...`) for scripts: sent instead of a stored access token, never
   * refreshed. Only operations that accept app tokens (such as `me`) take it.
   */
  appToken?: string;
  fetch?: typeof globalThis.fetch;
}

/** A problem+json answer (or any non-2xx) from the service. Branch on `code`. */
export class AuthApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problem: Problem | undefined;

  constructor(status: number, problem: Problem | undefined) {
    super(problem ? `${problem.code}: ${problem.detail}` : `HTTP ${status}`);
    this.name = 'AuthApiError';
    this.status = status;
    this.code = problem?.code ?? 'unknown';
    this.problem = problem;
  }
}

const TOKEN_PATH = '/api/v1/auth/token';

export function memoryTokenStore(initial?: TokenResponse): TokenStore {
  let tokens = initial;
  return { get: () => tokens, set: (t) => (tokens = t) };
}

async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw new AuthApiError(response.status, error as Problem | undefined);
  return data as T;
}

export function createAuthClient(opts: AuthClientOptions) {
  const store = opts.tokens ?? memoryTokenStore();
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const api: Client<paths> = createClient<paths>({
    baseUrl: opts.baseUrl,
    fetch: (r) => fetchFn(r),
  });
  const retries = new Map<string, Request>();
  let refreshing: Promise<TokenResponse> | undefined;

  async function refresh(): Promise<TokenResponse> {
    // One refresh at a time: a refresh token is single-use, so parallel 401s share it.
    refreshing ??= (async () => {
      const current = store.get();
      if (!current) throw new AuthApiError(401, undefined);
      try {
        const tokens = await unwrap(
          api.POST(TOKEN_PATH, {
            body: { grant_type: 'refresh_token', refresh_token: current.refresh_token },
          }),
        );
        store.set(tokens);
        return tokens;
      } catch (err) {
        if (err instanceof AuthApiError && err.status === 401) store.set(undefined);
        throw err;
      }
    })().finally(() => (refreshing = undefined));
    return refreshing;
  }

  const auth: Middleware = {
    onRequest({ request, schemaPath, id }) {
      if (schemaPath === TOKEN_PATH) return undefined;
      if (opts.appToken) {
        request.headers.set('Authorization', `Bearer ${opts.appToken}`);
        return request;
      }
      const tokens = store.get();
      if (!tokens) return undefined;
      request.headers.set('Authorization', `Bearer ${tokens.access_token}`);
      retries.set(id, request.clone());
      return request;
    },
    async onResponse({ response, id }) {
      const retry = retries.get(id);
      retries.delete(id);
      // An expired or revoked access token: refresh once and repeat the call.
      if (response.status !== 401 || !retry) return undefined;
      try {
        const tokens = await refresh();
        retry.headers.set('Authorization', `Bearer ${tokens.access_token}`);
        return await fetchFn(retry);
      } catch {
        return undefined; // the original 401 stands
      }
    },
    onError({ id }) {
      retries.delete(id);
    },
  };
  api.use(auth);

  return {
    /** The typed openapi-fetch client, with the stored access token and refresh applied. */
    api,
    tokens: store,
    register: (email: string, password: string): Promise<User> =>
      unwrap(api.POST('/api/v1/auth/register', { body: { email, password } })),
    /** The password grant; keeps the token pair in the store. */
    async login(email: string, password: string): Promise<TokenResponse> {
      const tokens = await unwrap(api.POST(TOKEN_PATH, { body: { email, password } }));
      store.set(tokens);
      return tokens;
    },
    /**
     * Finishes a login that `login` refused with `code: mfa_required`: pass the problem's
     * `mfa_token` and a TOTP code or a recovery code; keeps the token pair in the store.
     */
    async verifyMfa(mfaToken: string, factor: SecondFactor): Promise<TokenResponse> {
      const tokens = await unwrap(
        api.POST('/api/v1/auth/mfa/verify', { body: { mfa_token: mfaToken, ...factor } }),
      );
      store.set(tokens);
      return tokens;
    },
    refresh,
    me: (): Promise<User> => unwrap(api.GET('/api/v1/auth/me')),
    async logout(): Promise<void> {
      const tokens = store.get();
      await unwrap(
        api.POST('/api/v1/auth/logout', {
          body: tokens ? { refresh_token: tokens.refresh_token } : {},
        }),
      );
      store.set(undefined);
    },
    changePassword: (currentPassword: string, newPassword: string): Promise<void> =>
      unwrap(
        api.POST('/api/v1/auth/password', {
          body: { current_password: currentPassword, new_password: newPassword },
        }),
      ).then(() => undefined),
    /** Mails a reset token if the account exists; answers the same either way. */
    requestPasswordReset: (email: string): Promise<void> =>
      unwrap(api.POST('/api/v1/auth/password-reset/request', { body: { email } })).then(
        () => undefined,
      ),
    /** Sets a new password with the mailed token; every session of the account ends. */
    confirmPasswordReset: (token: string, newPassword: string): Promise<void> =>
      unwrap(
        api.POST('/api/v1/auth/password-reset/confirm', {
          body: { token, new_password: newPassword },
        }),
      ).then(() => undefined),
    verifyEmail: (token: string): Promise<void> =>
      unwrap(api.POST('/api/v1/auth/email/verify', { body: { token } })).then(() => undefined),
    resendVerificationEmail: (): Promise<void> =>
      unwrap(api.POST('/api/v1/auth/email/verify/resend')).then(() => undefined),
    /** A TOTP second factor (RFC 6238) for the caller's account. */
    totp: {
      /** A new secret and its otpauth:// URI for an authenticator app; not active yet. */
      setup: () => unwrap(api.POST('/api/v1/auth/mfa/totp/setup')),
      /** Activates the factor with a current code; returns the recovery codes, shown once. */
      confirm: (code: string) =>
        unwrap(api.POST('/api/v1/auth/mfa/totp/confirm', { body: { code } })).then(
          (r) => r.recovery_codes,
        ),
      disable: (password: string, code: string) =>
        unwrap(api.POST('/api/v1/auth/mfa/totp/disable', { body: { password, code } })).then(
          () => undefined,
        ),
    },
    /** Deletes the caller's account and everything that belongs to it; `code` when TOTP is on. */
    async deleteAccount(password: string, code?: string): Promise<void> {
      await unwrap(
        api.DELETE('/api/v1/auth/me', { body: code ? { password, code } : { password } }),
      );
      store.set(undefined);
    },
    /** The caller's sessions (one per login), newest first; `current` marks this one. */
    sessions: {
      list: () => unwrap(api.GET('/api/v1/auth/sessions')).then((r) => r.sessions),
      end: (id: string) =>
        unwrap(api.DELETE('/api/v1/auth/sessions/{id}', { params: { path: { id } } })).then(
          () => undefined,
        ),
      endOthers: () => unwrap(api.DELETE('/api/v1/auth/sessions')).then(() => undefined),
    },
    /** Long-lived tokens for scripts; `create` shows the token once. */
    appTokens: {
      create: (name: string, expiresInDays?: number) =>
        unwrap(
          api.POST('/api/v1/auth/app-tokens', {
            body: expiresInDays === undefined ? { name } : { name, expires_in_days: expiresInDays },
          }),
        ),
      list: () => unwrap(api.GET('/api/v1/auth/app-tokens')).then((r) => r.app_tokens),
      delete: (id: string) =>
        unwrap(api.DELETE('/api/v1/auth/app-tokens/{id}', { params: { path: { id } } })).then(
          () => undefined,
        ),
    },
    /** The caller's Discogs account connection (OAuth 1.0a, run by the service). */
    discogs: {
      /** Starts a connection: send the user to `authorize_url`, keep `state` for `verify`. */
      authorize: () => unwrap(api.POST('/api/v1/oauth/discogs/authorize')),
      /** Finishes it with the verifier (PIN) Discogs showed the user, or got on the callback. */
      verify: (state: string, oauthVerifier: string) =>
        unwrap(
          api.POST('/api/v1/oauth/discogs/verify', {
            body: { state, oauth_verifier: oauthVerifier },
          }),
        ),
      connection: () => unwrap(api.GET('/api/v1/oauth/discogs')),
      disconnect: () => unwrap(api.DELETE('/api/v1/oauth/discogs')).then(() => undefined),
    },
    admin: {
      getDiscogsConfig: () => unwrap(api.GET('/api/v1/admin/config/discogs')),
      putDiscogsConfig: (body: Schemas['DiscogsConfigUpdate']) =>
        unwrap(api.PUT('/api/v1/admin/config/discogs', { body })),
      deleteDiscogsConfig: () =>
        unwrap(api.DELETE('/api/v1/admin/config/discogs')).then(() => undefined),
      listUsers: (
        query: NonNullable<paths['/api/v1/admin/users']['get']['parameters']['query']> = {},
      ) => unwrap(api.GET('/api/v1/admin/users', { params: { query } })),
      updateUser: (id: string, body: Schemas['AdminUserUpdate']) =>
        unwrap(api.PATCH('/api/v1/admin/users/{id}', { params: { path: { id } }, body })),
      listAuditLog: (
        query: NonNullable<paths['/api/v1/admin/audit-log']['get']['parameters']['query']> = {},
      ) => unwrap(api.GET('/api/v1/admin/audit-log', { params: { query } })),
    },
  };
}

export type AuthClient = ReturnType<typeof createAuthClient>;
