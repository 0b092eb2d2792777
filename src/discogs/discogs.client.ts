import type { Logger } from 'pino';
import type { Metrics } from '../metrics';
import { freshNonce, signRequest } from './oauth1';

export type DiscogsCall = 'request_token' | 'access_token' | 'identity';

/** How a call ended, as counted in `auth_discogs_upstream_calls_total{outcome}`. */
export type DiscogsOutcome =
  'ok' | 'rejected' | 'server_error' | 'timeout' | 'network_error' | 'bad_response';

/**
 * A Discogs call that did not succeed. It names the call, the outcome and the HTTP status only:
 * Discogs's answer body is never kept, so it cannot reach a client or a log line by accident.
 */
export class DiscogsError extends Error {
  constructor(
    readonly call: DiscogsCall,
    readonly outcome: Exclude<DiscogsOutcome, 'ok'>,
    readonly httpStatus?: number,
  ) {
    super(`Discogs ${call} failed: ${outcome}${httpStatus ? ` (HTTP ${httpStatus})` : ''}`);
    this.name = 'DiscogsError';
  }
}

export interface ConsumerCredentials {
  consumerKey: string;
  consumerSecret: string;
}

export interface TokenPair {
  token: string;
  secret: string;
}

export interface DiscogsIdentity {
  id: number;
  username: string;
}

export interface DiscogsClientOptions {
  apiUrl: string;
  userAgent: string;
  /** Budget of one call, retries included; past it the call fails as `timeout`. */
  timeoutMs: number;
  metrics: Pick<Metrics, 'discogsCalls'>;
  logger: Logger;
  /** Pause before the one retry of an idempotent call. */
  retryDelayMs?: number;
  /** Milliseconds since the epoch; tests pin it. */
  now?: () => number;
  nonce?: () => string;
}

interface CallSpec {
  call: DiscogsCall;
  method: 'GET' | 'POST';
  path: string;
  consumer: ConsumerCredentials;
  tokenSecret?: string;
  oauthParams: Record<string, string>;
  /** Only calls that change nothing at Discogs may be sent twice. */
  retry: boolean;
}

/**
 * The three OAuth 1.0a calls of the Discogs account connection. Every attempt is signed afresh
 * (new nonce and timestamp: Discogs refuses a reused nonce), sends DISCOGS_USER_AGENT, and
 * shares one deadline with the other attempts of its call.
 */
export class DiscogsClient {
  private readonly retryDelayMs: number;
  private readonly now: () => number;
  private readonly nonce: () => string;

  constructor(private readonly opts: DiscogsClientOptions) {
    this.retryDelayMs = opts.retryDelayMs ?? 200;
    this.now = opts.now ?? Date.now;
    this.nonce = opts.nonce ?? freshNonce;
  }

  /** GET /oauth/request_token with `oauth_callback` (a URL, or `oob` for the PIN flow). */
  requestToken(consumer: ConsumerCredentials, callback: string): Promise<TokenPair> {
    return this.send(
      {
        call: 'request_token',
        method: 'GET',
        path: 'oauth/request_token',
        consumer,
        oauthParams: { oauth_callback: callback },
        // Each answer is a fresh request token; an unused one simply expires at Discogs.
        retry: true,
      },
      // RFC 5849 2.1: a server that ignored the callback would send the user somewhere else.
      (body) => tokenPairOf(body, true),
    );
  }

  /**
   * POST /oauth/access_token. Never retried: the verifier is single-use, so a second attempt
   * after a lost answer would be refused and hide the real outcome.
   */
  accessToken(
    consumer: ConsumerCredentials,
    requestToken: TokenPair,
    verifier: string,
  ): Promise<TokenPair> {
    return this.send(
      {
        call: 'access_token',
        method: 'POST',
        path: 'oauth/access_token',
        consumer,
        tokenSecret: requestToken.secret,
        oauthParams: { oauth_token: requestToken.token, oauth_verifier: verifier },
        retry: false,
      },
      (body) => tokenPairOf(body, false),
    );
  }

  /** GET /oauth/identity: who the access token belongs to. */
  identity(consumer: ConsumerCredentials, access: TokenPair): Promise<DiscogsIdentity> {
    return this.send(
      {
        call: 'identity',
        method: 'GET',
        path: 'oauth/identity',
        consumer,
        tokenSecret: access.secret,
        oauthParams: { oauth_token: access.token },
        retry: true,
      },
      identityOf,
    );
  }

  /** `parse` returns null for an answer that is not what the call promises (`bad_response`). */
  private async send<T>(spec: CallSpec, parse: (body: string) => T | null): Promise<T> {
    // Relative to the base, so an API URL with a path prefix (a proxy, a stand-in) keeps it.
    const url = new URL(spec.path, this.opts.apiUrl.replace(/\/?$/, '/')).toString();
    const deadline = AbortSignal.timeout(this.opts.timeoutMs);
    const attempts = spec.retry ? 2 : 1;
    for (let attempt = 1; ; attempt++) {
      const answer = await this.attempt(spec, url, deadline);
      const result =
        typeof answer === 'string'
          ? (parse(answer) ?? new DiscogsError(spec.call, 'bad_response'))
          : answer;
      if (!(result instanceof DiscogsError)) {
        this.count(spec.call, 'ok');
        return result;
      }
      this.count(spec.call, result.outcome);
      this.opts.logger.warn(
        { call: spec.call, outcome: result.outcome, status: result.httpStatus, attempt },
        'Discogs call failed',
      );
      const retriable = result.outcome === 'server_error' || result.outcome === 'network_error';
      if (!retriable || attempt >= attempts || deadline.aborted) throw result;
      await pause(this.retryDelayMs, deadline);
      if (deadline.aborted) throw new DiscogsError(spec.call, 'timeout');
    }
  }

  /** The body of a 2xx answer, or the failure; never throws. */
  private async attempt(
    spec: CallSpec,
    url: string,
    deadline: AbortSignal,
  ): Promise<string | DiscogsError> {
    const signed = signRequest({
      method: spec.method,
      url,
      consumerKey: spec.consumer.consumerKey,
      consumerSecret: spec.consumer.consumerSecret,
      tokenSecret: spec.tokenSecret,
      oauthParams: spec.oauthParams,
      nonce: this.nonce(),
      timestamp: Math.floor(this.now() / 1000),
    });
    const headers: Record<string, string> = {
      Authorization: signed.authorization,
      'User-Agent': this.opts.userAgent,
      Accept: spec.call === 'identity' ? 'application/json' : 'application/x-www-form-urlencoded',
    };
    if (spec.method === 'POST') headers['Content-Type'] = 'application/x-www-form-urlencoded';
    try {
      const res = await fetch(url, {
        method: spec.method,
        headers,
        body: spec.method === 'POST' ? '' : undefined,
        signal: deadline,
        redirect: 'manual',
      });
      // Read (or drain) the body under the same deadline, so the connection can be reused.
      const text = await res.text();
      if (res.status >= 200 && res.status < 300) return text;
      if (res.status >= 500) return new DiscogsError(spec.call, 'server_error', res.status);
      if (res.status >= 400) return new DiscogsError(spec.call, 'rejected', res.status);
      return new DiscogsError(spec.call, 'bad_response', res.status);
    } catch {
      // The cause (an AbortError or a socket error) may quote the URL; the outcome says enough.
      return new DiscogsError(spec.call, deadline.aborted ? 'timeout' : 'network_error');
    }
  }

  private count(call: DiscogsCall, outcome: DiscogsOutcome): void {
    this.opts.metrics.discogsCalls.inc({ call, outcome });
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

function tokenPairOf(body: string, callbackConfirmed: boolean): TokenPair | null {
  const form = new URLSearchParams(body);
  const token = form.get('oauth_token');
  const secret = form.get('oauth_token_secret');
  if (!token || !secret) return null;
  if (callbackConfirmed && form.get('oauth_callback_confirmed') !== 'true') return null;
  return { token, secret };
}

function identityOf(body: string): DiscogsIdentity | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  const { id, username } = (parsed ?? {}) as { id?: unknown; username?: unknown };
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) return null;
  if (typeof username !== 'string' || username.length === 0 || username.length > 255) return null;
  return { id, username };
}
