import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { UsersRepository } from '../accounts/users.repository';
import type { DiscogsCredentials } from '../admin/discogs-config.service';
import { oauthStatePurpose, oauthTokenPurpose } from '../crypto/purposes';
import { SecretBoxError, type SecretBox } from '../crypto/secret-box';
import {
  BadGatewayError,
  BadRequestError,
  ErrorCode,
  ForbiddenError,
  ServiceUnavailableError,
  StoredSecretUnreadableError,
  UnauthorizedError,
} from '../errors';
import type { Database } from '../db/database';
import type { EphemeralStore } from '../state/ephemeral-store';
import { DiscogsError, type DiscogsClient, type TokenPair } from './discogs.client';
import type { OAuthTokensRepository, StoredOAuthToken } from './oauth-tokens.repository';

const PROVIDER = 'discogs';
/** How long a started connection may wait for the user's approval on Discogs. */
export const STATE_TTL_SECONDS = 600;

export type CallbackMode = 'oob' | 'callback';

export interface AuthorizationStart {
  authorizeUrl: string;
  state: string;
  expiresIn: typeof STATE_TTL_SECONDS;
  callbackMode: CallbackMode;
}

export interface Connected {
  connected: true;
  username: string;
  userId: number;
  connectedAt: Date;
}
export type ConnectionStatus = { connected: false } | Connected;

export interface DiscogsConnectionOptions {
  db: Database;
  users: UsersRepository;
  /** The app's consumer credentials, null when an admin has not configured them. */
  credentials: () => Promise<DiscogsCredentials | null>;
  client: DiscogsClient;
  store: EphemeralStore;
  tokens: OAuthTokensRepository;
  box: SecretBox;
  logger: Logger;
  authorizeUrl: string;
  /** DISCOGS_OAUTH_CALLBACK_URL; null means the out-of-band (PIN) flow. */
  callbackUrl: string | null;
}

/**
 * Pending authorisations live in the short-lived store under two keys:
 *   pending:<user>:<state>  the request token and its secret, sealed (Redis holds no plaintext)
 *   owner:<state>           the user the state was issued to
 * Completing takes the first key with one atomic read-and-delete (GETDEL in Redis; get and
 * delete without an await between them in process), so a state completes at most once even
 * when two replicas race. The key names the user, so another user's attempt cannot take it;
 * the owner key only lets that attempt be told 403 instead of 400, and is never consumed by it.
 */
const pendingKey = (userId: string, state: string) => `discogs:oauth:pending:${userId}:${state}`;
const ownerKey = (state: string) => `discogs:oauth:owner:${state}`;

export class DiscogsConnectionService {
  constructor(private readonly o: DiscogsConnectionOptions) {}

  async authorize(userId: string): Promise<AuthorizationStart> {
    const consumer = await this.consumer();
    const state = randomBytes(32).toString('base64url');
    const callbackMode: CallbackMode = this.o.callbackUrl ? 'callback' : 'oob';
    const requestToken = await this.upstream(() =>
      this.o.client.requestToken(consumer, this.callbackFor(state)),
    );
    const sealed = this.o.box.seal(
      JSON.stringify(requestToken),
      oauthStatePurpose(PROVIDER, userId, state),
    );
    await this.o.store.set(ownerKey(state), userId, STATE_TTL_SECONDS);
    await this.o.store.set(pendingKey(userId, state), sealed, STATE_TTL_SECONDS);
    const authorizeUrl = new URL(this.o.authorizeUrl);
    authorizeUrl.searchParams.set('oauth_token', requestToken.token);
    return {
      authorizeUrl: authorizeUrl.toString(),
      state,
      expiresIn: STATE_TTL_SECONDS,
      callbackMode,
    };
  }

  /**
   * Consumes the state first: whatever happens next (a refused verifier, Discogs down), the
   * user starts again with a new authorisation, because Discogs may already have spent the
   * verifier and a retry could not tell.
   */
  async verify(userId: string, state: string, verifier: string): Promise<Connected> {
    // Before consuming anything: a missing configuration must not cost the user their state.
    const consumer = await this.consumer();
    const sealed = await this.o.store.take(pendingKey(userId, state));
    if (sealed === null) {
      const owner = await this.o.store.get(ownerKey(state));
      if (owner !== null && owner !== userId) {
        throw new ForbiddenError(
          'This authorisation was started by another account.',
          ErrorCode.oauthStateMismatch,
        );
      }
      throw invalidState();
    }
    await this.o.store.delete(ownerKey(state));
    let requestToken: TokenPair;
    try {
      requestToken = JSON.parse(
        this.o.box.open(sealed, oauthStatePurpose(PROVIDER, userId, state)),
      ) as TokenPair;
    } catch (err) {
      // Sealed under a key removed in the last few minutes: as good as expired.
      if (!(err instanceof SecretBoxError)) throw err;
      throw invalidState();
    }

    const access = await this.upstream(
      () => this.o.client.accessToken(consumer, requestToken, verifier),
      (err) =>
        err.call === 'access_token' && err.outcome === 'rejected'
          ? new BadRequestError(
              'Discogs did not accept this verification code. Start the connection again.',
              ErrorCode.discogsVerifierRejected,
            )
          : null,
    );
    const identity = await this.upstream(() => this.o.client.identity(consumer, access));
    const stored = await this.o.db.transaction(async (tx) => {
      // The user row first (the house order): an account deleted or deactivated while Discogs
      // was answering gets no tokens, and a delete waits for this insert rather than racing it.
      const user = await this.o.users.lock(userId, 'share', tx);
      if (!user || !user.isActive) throw new UnauthorizedError();
      return this.o.tokens.upsert(
        {
          userId,
          provider: PROVIDER,
          sealedAccessToken: this.o.box.seal(
            access.token,
            oauthTokenPurpose(PROVIDER, userId, 'access_token'),
          ),
          sealedAccessTokenSecret: this.o.box.seal(
            access.secret,
            oauthTokenPurpose(PROVIDER, userId, 'access_token_secret'),
          ),
          providerUserId: String(identity.id),
          providerUsername: identity.username,
        },
        tx,
      );
    });
    this.o.logger.info({ userId, discogsUserId: identity.id }, 'Discogs account connected');
    return statusOf(stored);
  }

  async status(userId: string): Promise<ConnectionStatus> {
    const row = await this.o.tokens.find(userId, PROVIDER);
    return row ? statusOf(row) : { connected: false };
  }

  /** Idempotent: disconnecting an account that is not connected changes nothing. */
  async disconnect(userId: string): Promise<void> {
    if (await this.o.tokens.delete(userId, PROVIDER)) {
      this.o.logger.info({ userId }, 'Discogs account disconnected');
    }
  }

  /** The user's access token in clear, for calls made on their behalf; null when not connected. */
  async accessTokenOf(userId: string): Promise<TokenPair | null> {
    const row = await this.o.tokens.find(userId, PROVIDER);
    if (!row) return null;
    try {
      return {
        token: this.o.box.open(
          row.sealedAccessToken,
          oauthTokenPurpose(PROVIDER, userId, 'access_token'),
        ),
        secret: this.o.box.open(
          row.sealedAccessTokenSecret,
          oauthTokenPurpose(PROVIDER, userId, 'access_token_secret'),
        ),
      };
    } catch (err) {
      if (!(err instanceof SecretBoxError)) throw err;
      throw new StoredSecretUnreadableError(
        'A stored Discogs token cannot be decrypted with the configured keys; an operator must restore the key it was encrypted with.',
        err,
      );
    }
  }

  private async consumer(): Promise<DiscogsCredentials> {
    const credentials = await this.o.credentials();
    if (!credentials) {
      throw new ServiceUnavailableError(
        'Connecting Discogs accounts is not set up yet: an administrator must set the Discogs ' +
          'consumer key and secret (PUT /api/v1/admin/config/discogs, or ' +
          '`npm run admin -- discogs-setup`).',
        ErrorCode.discogsNotConfigured,
        60,
      );
    }
    return credentials;
  }

  /** In callback mode the state rides along, so the page Discogs returns to can finish the flow. */
  private callbackFor(state: string): string {
    if (!this.o.callbackUrl) return 'oob';
    const url = new URL(this.o.callbackUrl);
    url.searchParams.set('state', state);
    return url.toString();
  }

  /** Runs a Discogs call; a failure becomes a 502 unless `special` maps it otherwise. */
  private async upstream<T>(
    call: () => Promise<T>,
    special: (err: DiscogsError) => BadRequestError | null = () => null,
  ): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof DiscogsError)) throw err;
      throw special(err) ?? badGateway(err);
    }
  }
}

function badGateway(err: DiscogsError): BadGatewayError {
  // Discogs refusing the request token call means it refused this service's own credentials.
  const detail =
    err.call === 'request_token' && err.outcome === 'rejected'
      ? "Discogs refused this service's application credentials; an administrator should check " +
        'the Discogs consumer key and secret.'
      : err.outcome === 'timeout'
        ? 'Discogs did not answer in time. Try again shortly.'
        : 'Discogs could not be reached or gave an unexpected answer. Try again shortly.';
  return new BadGatewayError(detail);
}

function invalidState(): BadRequestError {
  return new BadRequestError(
    'This authorisation is unknown, has expired (after 10 minutes) or was already used. ' +
      'Start the connection again.',
    ErrorCode.invalidOAuthState,
  );
}

function statusOf(row: StoredOAuthToken): Connected {
  return {
    connected: true,
    username: row.providerUsername ?? '',
    userId: Number(row.providerUserId),
    connectedAt: new Date(row.connectedAt),
  };
}
