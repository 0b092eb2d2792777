import { createHmac, randomBytes } from 'node:crypto';

/**
 * OAuth 1.0a request signing (RFC 5849, HMAC-SHA1), as Discogs expects it. Pure functions:
 * the nonce and the timestamp are inputs, so the known-answer vectors pin the output exactly.
 */

/** RFC 3986 unreserved characters stay; everything else is %XX, including ! ' ( ) *. */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** RFC 5849 3.4.1.2: scheme and host lower-case, default port dropped, no query or fragment. */
export function baseStringUri(url: string): string {
  const u = new URL(url);
  // WHATWG URL already lower-cases scheme and host and drops the scheme's default port.
  return `${u.protocol}//${u.host}${u.pathname}`;
}

export type Param = readonly [name: string, value: string];

/**
 * RFC 5849 3.4.1: METHOD & encoded base URI & encoded normalised parameters, where the
 * parameters are the query, a form body and the oauth_* values (never oauth_signature),
 * each name and value encoded, then sorted by name and by value.
 */
export function signatureBaseString(method: string, url: string, params: readonly Param[]): string {
  const query = [...new URL(url).searchParams.entries()];
  const normalised = [...query, ...params]
    .filter(([k]) => k !== 'oauth_signature')
    .map(([k, v]) => [percentEncode(k), percentEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return [method.toUpperCase(), percentEncode(baseStringUri(url)), percentEncode(normalised)].join(
    '&',
  );
}

export function hmacSha1Signature(
  baseString: string,
  consumerSecret: string,
  tokenSecret = '',
): string {
  const key = `${percentEncode(consumerSecret)}&${percentEncode(tokenSecret)}`;
  return createHmac('sha1', key).update(baseString).digest('base64');
}

/** `OAuth name="value", ...`, names sorted, values percent-encoded (RFC 5849 3.5.1). */
export function authorizationHeader(oauthParams: Record<string, string>): string {
  return (
    'OAuth ' +
    Object.keys(oauthParams)
      .sort()
      .map((k) => `${percentEncode(k)}="${percentEncode(oauthParams[k]!)}"`)
      .join(', ')
  );
}

/** 128 random bits, hex: unique per request, which is all RFC 5849 3.3 asks of a nonce. */
export function freshNonce(): string {
  return randomBytes(16).toString('hex');
}

export interface SignInput {
  method: string;
  url: string;
  consumerKey: string;
  consumerSecret: string;
  /** The request or access token secret; empty when there is no token yet. */
  tokenSecret?: string;
  /** oauth_callback, oauth_token, oauth_verifier: whichever the call needs. */
  oauthParams?: Record<string, string>;
  /** Form body parameters, which are signed too. */
  bodyParams?: readonly Param[];
  nonce: string;
  /** Whole seconds since the epoch, as RFC 5849 3.3 requires. */
  timestamp: number;
}

export interface Signed {
  signature: string;
  authorization: string;
  oauthParams: Record<string, string>;
}

export function signRequest(input: SignInput): Signed {
  const oauthParams: Record<string, string> = {
    ...input.oauthParams,
    oauth_consumer_key: input.consumerKey,
    oauth_nonce: input.nonce,
    oauth_signature_method: 'HMAC-SHA1',
    oauth_timestamp: String(input.timestamp),
    oauth_version: '1.0',
  };
  const base = signatureBaseString(input.method, input.url, [
    ...Object.entries(oauthParams),
    ...(input.bodyParams ?? []),
  ]);
  const signature = hmacSha1Signature(base, input.consumerSecret, input.tokenSecret ?? '');
  const all = { ...oauthParams, oauth_signature: signature };
  return { signature, authorization: authorizationHeader(all), oauthParams: all };
}
