import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the Discogs OAuth 1.0a endpoints, for tests and manual runs.
 *
 * It checks every request the way Discogs does, with its own implementation of RFC 5849 (not
 * the service's, so a shared mistake cannot pass unnoticed): it rebuilds the signature base
 * string from the method, the URL it was called on, the query, a form body and the oauth_*
 * parameters of the Authorization header, and checks the consumer key, the token and its
 * secret, the verifier, the timestamp window and nonce reuse. Every request leaves a verdict.
 *
 *   const discogs = await startDiscogsStandIn();          // consumer key/secret generated
 *   env: DISCOGS_API_URL=discogs.url, DISCOGS_AUTHORIZE_URL=discogs.authorizeUrl
 *   const { verifier, redirectTo } = discogs.approve(requestTokenOf(authorizeUrl));
 *   discogs.failNext('access_token', 'server_error');     // or 'hang', 'reset', ...
 *   const held = discogs.holdNext('identity');            // await held.arrived; held.release()
 *   discogs.verdicts                                      // [{ call, reason: 'valid', ... }]
 *   await discogs.close();
 *
 * `GET /oauth/authorize?oauth_token=...` approves as a generated account, for a manual run in
 * a browser or with curl: it redirects to the callback, or shows the PIN for `oob`.
 */

export type StandInCall = 'request_token' | 'access_token' | 'identity' | 'authorize' | 'unknown';

/** What the stand-in decided about a request; `valid` means it was answered normally. */
export type VerdictReason =
  | 'valid'
  | 'not_found'
  | 'wrong_method'
  | 'missing_user_agent'
  | 'missing_authorization'
  | 'unsupported_signature_method'
  | 'unknown_consumer'
  | 'stale_timestamp'
  | 'nonce_reused'
  | 'unknown_token'
  | 'bad_signature'
  | 'missing_callback'
  | 'bad_verifier';

/** Failures a test can ask for; they are applied after the request's checks passed. */
export type InjectedFailure =
  /** 503 with a body that must never reach the service's clients. */
  | 'server_error'
  /** No answer at all until the stand-in closes. */
  | 'hang'
  /** The connection is dropped without an answer. */
  | 'reset'
  /** 401 as Discogs answers a wrong verifier (access_token). */
  | 'refuse_verifier'
  /** 200 with a body that is not what the call promises. */
  | 'garbage';

export interface Verdict {
  call: StandInCall;
  method: string;
  reason: VerdictReason;
  /** Set when the request passed its checks and then failed on demand. */
  injected?: InjectedFailure;
  status: number | null;
  userAgent: string | undefined;
  /** The oauth_* parameters received, oauth_signature excluded. */
  oauth: Record<string, string>;
}

export interface DiscogsAccount {
  id: number;
  username: string;
}

export interface Approval {
  verifier: string;
  /** Where Discogs would send the browser: the callback with oauth_token and oauth_verifier; null for oob. */
  redirectTo: string | null;
}

export interface DiscogsStandInOptions {
  consumerKey?: string;
  consumerSecret?: string;
  /** Timestamps further than this from the stand-in's clock are refused (Discogs: minutes). */
  timestampWindowSeconds?: number;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

export interface DiscogsStandIn {
  /** For DISCOGS_API_URL. */
  readonly url: string;
  /** For DISCOGS_AUTHORIZE_URL. */
  readonly authorizeUrl: string;
  readonly consumerKey: string;
  readonly consumerSecret: string;
  /** Text put into every error body; a client-facing answer must never contain it. */
  readonly errorBodyMarker: string;
  /** One per request, in arrival order. */
  readonly verdicts: Verdict[];
  /** The user approves the request token on Discogs's page (as `account`, or a new one). */
  approve(requestToken: string, account?: DiscogsAccount): Approval;
  /** The oauth_callback a request token was issued with. */
  callbackOf(requestToken: string): string | undefined;
  /** Every access token and secret handed out, to look for them where they must not be. */
  issuedAccessTokens(): { token: string; secret: string; account: DiscogsAccount }[];
  /** The next `times` requests to `call` that pass their checks fail this way. */
  failNext(
    call: Exclude<StandInCall, 'authorize' | 'unknown'>,
    failure: InjectedFailure,
    times?: number,
  ): void;
  /**
   * Holds the next request to `call` that passes its checks until `release()`, then answers it
   * normally: for tests that change something while the service waits on Discogs.
   */
  holdNext(call: Exclude<StandInCall, 'authorize' | 'unknown'>): {
    arrived: Promise<void>;
    release(): void;
  };
  /** Verdicts of one call. */
  verdictsOf(call: StandInCall): Verdict[];
  /** Forgets verdicts and failures not yet used (issued tokens stay valid). */
  reset(): void;
  close(): Promise<void>;
}

/** The request token in an authorize URL the service handed out. */
export function requestTokenOf(authorizeUrl: string): string {
  const token = new URL(authorizeUrl).searchParams.get('oauth_token');
  if (!token) throw new Error('the authorize URL carries no oauth_token');
  return token;
}

const CALLS: Record<string, { call: StandInCall; method: string }> = {
  '/oauth/request_token': { call: 'request_token', method: 'GET' },
  '/oauth/access_token': { call: 'access_token', method: 'POST' },
  '/oauth/identity': { call: 'identity', method: 'GET' },
  '/oauth/authorize': { call: 'authorize', method: 'GET' },
};

// RFC 3986 as RFC 5849 3.6 wants it: only A-Z a-z 0-9 - . _ ~ stay as they are.
function enc(s: string): string {
  return Buffer.from(s, 'utf8').reduce(
    (out, b) =>
      out +
      (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) && b < 0x80
        ? String.fromCharCode(b)
        : '%' + b.toString(16).toUpperCase().padStart(2, '0')),
    '',
  );
}

function parseAuthorization(header: string | undefined): Record<string, string> | null {
  if (!header || !/^OAuth\s/i.test(header)) return null;
  const params: Record<string, string> = {};
  for (const m of header.slice(6).matchAll(/([A-Za-z0-9_%.~-]+)="([^"]*)"/g)) {
    try {
      params[decodeURIComponent(m[1]!)] = decodeURIComponent(m[2]!);
    } catch {
      return null;
    }
  }
  return params;
}

const secret = (bytes = 12) => randomBytes(bytes).toString('hex');

export async function startDiscogsStandIn(
  opts: DiscogsStandInOptions = {},
): Promise<DiscogsStandIn> {
  const consumerKey = opts.consumerKey ?? `standin-key-${secret(6)}`;
  const consumerSecret = opts.consumerSecret ?? `standin-secret-${secret()}`;
  const window = opts.timestampWindowSeconds ?? 300;
  const now = opts.now ?? Date.now;
  const marker = `STAND-IN-UPSTREAM-BODY-${secret(6)}`;

  const requestTokens = new Map<
    string,
    { secret: string; callback: string; approval?: { account: DiscogsAccount; verifier: string } }
  >();
  const accessTokens = new Map<string, { secret: string; account: DiscogsAccount }>();
  /** Kept after the exchange, so a test can still ask what a request token was issued with. */
  const callbacks = new Map<string, string>();
  const nonces = new Set<string>();
  const verdicts: Verdict[] = [];
  const failures = new Map<StandInCall, InjectedFailure[]>();
  const hanging = new Set<http.ServerResponse>();
  const holds = new Map<StandInCall, { arrive: () => void; released: Promise<void> }[]>();
  let accounts = 0;
  const newAccount = (): DiscogsAccount => {
    accounts++;
    return { id: 4_000_000 + accounts, username: `standin_user_${accounts}_${secret(3)}` };
  };

  function approve(requestToken: string, account = newAccount()): Approval {
    const entry = requestTokens.get(requestToken);
    if (!entry) throw new Error('the stand-in never issued this request token');
    const verifier = secret(5);
    entry.approval = { account, verifier };
    if (entry.callback === 'oob') return { verifier, redirectTo: null };
    const to = new URL(entry.callback);
    to.searchParams.set('oauth_token', requestToken);
    to.searchParams.set('oauth_verifier', verifier);
    return { verifier, redirectTo: to.toString() };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: string) {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const route = CALLS[url.pathname];
    const userAgent = req.headers['user-agent'];
    const verdict: Verdict = {
      call: route?.call ?? 'unknown',
      method: req.method ?? '',
      reason: 'valid',
      status: null,
      userAgent,
      oauth: {},
    };
    verdicts.push(verdict);
    const answer = (
      status: number,
      text: string,
      type = 'application/x-www-form-urlencoded',
      headers: Record<string, string> = {},
    ) => {
      verdict.status = status;
      res.writeHead(status, { 'Content-Type': type, ...headers }).end(text);
    };
    const refuse = (status: number, reason: VerdictReason) => {
      verdict.reason = reason;
      answer(status, `${reason}: ${marker}`, 'text/plain');
    };

    if (!route) return refuse(404, 'not_found');
    if (req.method !== route.method) return refuse(405, 'wrong_method');
    if (route.call === 'authorize') return authorizePage(url, answer, refuse);
    // Discogs refuses clients that do not say who they are.
    if (!userAgent) return refuse(403, 'missing_user_agent');

    const oauth = parseAuthorization(req.headers.authorization);
    if (!oauth) return refuse(401, 'missing_authorization');
    const { oauth_signature: signature, ...signed } = oauth;
    verdict.oauth = signed;
    if (signed.oauth_signature_method !== 'HMAC-SHA1' || (signed.oauth_version ?? '1.0') !== '1.0')
      return refuse(401, 'unsupported_signature_method');
    if (signed.oauth_consumer_key !== consumerKey) return refuse(401, 'unknown_consumer');
    const ts = signed.oauth_timestamp ?? '';
    if (!/^\d{1,12}$/.test(ts) || Math.abs(Number(ts) - now() / 1000) > window)
      return refuse(401, 'stale_timestamp');
    const nonce = signed.oauth_nonce ?? '';
    if (nonce === '' || nonces.has(`${ts}:${nonce}`)) return refuse(401, 'nonce_reused');

    let tokenSecret = '';
    const token = signed.oauth_token;
    if (route.call === 'access_token') {
      const entry = token === undefined ? undefined : requestTokens.get(token);
      if (!entry) return refuse(401, 'unknown_token');
      tokenSecret = entry.secret;
    } else if (route.call === 'identity') {
      const entry = token === undefined ? undefined : accessTokens.get(token);
      if (!entry) return refuse(401, 'unknown_token');
      tokenSecret = entry.secret;
    } else if (token !== undefined) {
      return refuse(401, 'unknown_token');
    }

    const params: [string, string][] = [...url.searchParams.entries()];
    if (/^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? ''))
      params.push(...new URLSearchParams(body).entries());
    params.push(...Object.entries(signed));
    const normalised = params
      .map(([k, v]) => [enc(k), enc(v)])
      .sort(([a, x], [b, y]) => (a! < b! ? -1 : a! > b! ? 1 : x! < y! ? -1 : x! > y! ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const base = `${req.method}&${enc(`http://${req.headers.host}${url.pathname}`)}&${enc(normalised)}`;
    const expected = createHmac('sha1', `${enc(consumerSecret)}&${enc(tokenSecret)}`)
      .update(base)
      .digest();
    const given = Buffer.from(signature ?? '', 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return refuse(401, 'bad_signature');
    nonces.add(`${ts}:${nonce}`);

    const failure = failures.get(route.call)?.shift();
    if (failure) {
      verdict.injected = failure;
      switch (failure) {
        case 'server_error':
          return answer(503, `Service Unavailable ${marker}`, 'text/plain');
        case 'hang':
          hanging.add(res);
          return;
        case 'reset':
          req.socket.destroy();
          return;
        case 'refuse_verifier':
          return answer(401, `Invalid verifier. ${marker}`, 'text/plain');
        case 'garbage':
          return answer(200, `<html>${marker}</html>`, 'text/html');
      }
    }

    const hold = holds.get(route.call)?.shift();
    if (hold) {
      hold.arrive();
      await hold.released;
    }

    switch (route.call) {
      case 'request_token': {
        const callback = signed.oauth_callback;
        if (!callback) return refuse(400, 'missing_callback');
        const issued = { token: secret(), secret: secret() };
        requestTokens.set(issued.token, { secret: issued.secret, callback });
        callbacks.set(issued.token, callback);
        return answer(
          200,
          `oauth_token=${issued.token}&oauth_token_secret=${issued.secret}&oauth_callback_confirmed=true`,
        );
      }
      case 'access_token': {
        const entry = requestTokens.get(token!)!;
        if (!entry.approval || entry.approval.verifier !== signed.oauth_verifier)
          return refuse(401, 'bad_verifier');
        // A request token is exchanged once.
        requestTokens.delete(token!);
        const issued = { token: secret(), secret: secret() };
        accessTokens.set(issued.token, { secret: issued.secret, account: entry.approval.account });
        return answer(200, `oauth_token=${issued.token}&oauth_token_secret=${issued.secret}`);
      }
      case 'identity': {
        const { account } = accessTokens.get(token!)!;
        return answer(
          200,
          JSON.stringify({
            id: account.id,
            username: account.username,
            resource_url: `${origin}/users/${account.username}`,
            consumer_name: 'Stand-in consumer',
          }),
          'application/json',
        );
      }
    }
  }

  function authorizePage(
    url: URL,
    answer: (status: number, text: string, type: string, headers?: Record<string, string>) => void,
    refuse: (status: number, reason: VerdictReason) => void,
  ) {
    const token = url.searchParams.get('oauth_token') ?? '';
    if (!requestTokens.has(token)) return refuse(400, 'unknown_token');
    const { verifier, redirectTo } = approve(token);
    if (redirectTo) {
      return answer(302, `Redirecting to ${redirectTo}\n`, 'text/plain', { Location: redirectTo });
    }
    answer(200, `Authorized. Enter this code in the application: ${verifier}\n`, 'text/plain');
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: origin,
    authorizeUrl: `${origin}/oauth/authorize`,
    consumerKey,
    consumerSecret,
    errorBodyMarker: marker,
    verdicts,
    approve,
    callbackOf: (requestToken) => callbacks.get(requestToken),
    issuedAccessTokens: () =>
      [...accessTokens].map(([token, e]) => ({ token, secret: e.secret, account: e.account })),
    failNext(call, failure, times = 1) {
      const queue = failures.get(call) ?? [];
      for (let i = 0; i < times; i++) queue.push(failure);
      failures.set(call, queue);
    },
    holdNext(call) {
      let arrive!: () => void;
      let release!: () => void;
      const arrived = new Promise<void>((resolve) => (arrive = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      holds.set(call, [...(holds.get(call) ?? []), { arrive, released }]);
      return { arrived, release };
    },
    verdictsOf: (call) => verdicts.filter((v) => v.call === call),
    reset() {
      verdicts.length = 0;
      failures.clear();
      holds.clear();
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
