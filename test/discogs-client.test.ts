import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import {
  DiscogsClient,
  DiscogsError,
  type ConsumerCredentials,
  type DiscogsClientOptions,
} from '../src/discogs/discogs.client';
import {
  authorizationHeader,
  percentEncode,
  signRequest,
  signatureBaseString,
} from '../src/discogs/oauth1';
import { createMetrics } from '../src/metrics';
import {
  requestTokenOf,
  startDiscogsStandIn,
  type DiscogsStandIn,
} from './support/discogs-stand-in';

interface VectorCase {
  call: string;
  method: string;
  url: string;
  oauth_params: Record<string, string>;
  token_secret: string;
  signature: string;
  authorization_header?: string;
}
/** Known answers that come with the product contract (see test/fixtures/README.md). */
const vectors = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'discogs-oauth-vectors.json'), 'utf8'),
) as {
  consumer_key: string;
  consumer_secret: string;
  nonce: string;
  timestamp: string;
  cases: VectorCase[];
  all_cases_also_send: Record<string, string>;
};

describe('RFC 5849 signing against the known-answer vectors', () => {
  test.each(vectors.cases.map((c) => [c.call, c] as const))(
    'when the %s call is signed with the vector nonce and timestamp, then the signature matches',
    (_call, c) => {
      const signed = signRequest({
        method: c.method,
        url: c.url,
        consumerKey: vectors.consumer_key,
        consumerSecret: vectors.consumer_secret,
        tokenSecret: c.token_secret,
        oauthParams: c.oauth_params,
        nonce: vectors.nonce,
        timestamp: Number(vectors.timestamp),
      });
      expect(signed.signature).toBe(c.signature);
      expect(signed.oauthParams).toMatchObject({
        ...c.oauth_params,
        ...vectors.all_cases_also_send,
        oauth_consumer_key: vectors.consumer_key,
        oauth_nonce: vectors.nonce,
        oauth_timestamp: vectors.timestamp,
        oauth_signature: c.signature,
      });
      if (c.authorization_header) expect(signed.authorization).toBe(c.authorization_header);
    },
  );

  test('when a vector signature is sent, then the header percent-encodes its + / =', () => {
    const identity = vectors.cases.find((c) => c.call === 'identity')!;
    const header = authorizationHeader({ oauth_signature: identity.signature });
    expect(header).toBe(`OAuth oauth_signature="r93%2BNrsmNykUA1S%2BU7YXoAZBFW4%3D"`);
  });
});

describe('percent-encoding and the base string', () => {
  test("when a value holds ! ' ( ) *, then each is encoded, which encodeURIComponent alone does not", () => {
    expect(percentEncode("!'()*")).toBe('%21%27%28%29%2A');
    expect(encodeURIComponent("!'()*")).toBe("!'()*");
  });

  test('when a value holds unreserved, reserved and non-ASCII characters, then only A-Z a-z 0-9 - . _ ~ stay', () => {
    expect(percentEncode('Az09-._~')).toBe('Az09-._~');
    expect(percentEncode('a b+c&d=e/f:g')).toBe('a%20b%2Bc%26d%3De%2Ff%3Ag');
    expect(percentEncode('é€😀')).toBe('%C3%A9%E2%82%AC%F0%9F%98%80');
  });

  test('when the URL has a query, an upper-case host and a default port, then the base string normalises them and sorts names then values', () => {
    const base = signatureBaseString(
      'get',
      'HTTPS://API.Discogs.com:443/oauth/identity?b=2&a=2&a=1',
      [
        ['oauth_nonce', 'n'],
        ['oauth_signature', 'never-signed'],
        ['c', "it's (x)"],
      ],
    );
    expect(base).toBe(
      'GET&https%3A%2F%2Fapi.discogs.com%2Foauth%2Fidentity&' +
        percentEncode(`a=1&a=2&b=2&c=${percentEncode("it's (x)")}&oauth_nonce=n`),
    );
  });
});

describe('the Discogs client against the stand-in', () => {
  let discogs: DiscogsStandIn;
  let consumer: ConsumerCredentials;
  const logger = pino({ level: 'silent' });

  function client(overrides: Partial<DiscogsClientOptions> = {}) {
    const metrics = createMetrics();
    const c = new DiscogsClient({
      apiUrl: discogs.url,
      userAgent: 'ClientTest/1.0 +https://example.com',
      timeoutMs: 2_000,
      retryDelayMs: 10,
      metrics,
      logger,
      ...overrides,
    });
    const counted = async () =>
      (await metrics.discogsCalls.get()).values.map((v) => ({ ...v.labels, n: v.value }));
    return { c, counted };
  }

  async function connect(c: DiscogsClient) {
    const requestToken = await c.requestToken(consumer, 'oob');
    const { verifier } = discogs.approve(requestToken.token, { id: 77, username: 'ada' });
    const access = await c.accessToken(consumer, requestToken, verifier);
    return { requestToken, access, verifier };
  }

  beforeAll(async () => {
    discogs = await startDiscogsStandIn();
    consumer = { consumerKey: discogs.consumerKey, consumerSecret: discogs.consumerSecret };
  });
  afterEach(() => {
    discogs.reset();
  });
  afterAll(async () => {
    await discogs.close();
  });

  test('when the three calls run in order, then every signature verifies and the identity comes back', async () => {
    const { c, counted } = client();
    const { access } = await connect(c);
    expect(await c.identity(consumer, access)).toEqual({ id: 77, username: 'ada' });
    expect(discogs.verdicts.map((v) => [v.call, v.method, v.reason])).toEqual([
      ['request_token', 'GET', 'valid'],
      ['access_token', 'POST', 'valid'],
      ['identity', 'GET', 'valid'],
    ]);
    for (const v of discogs.verdicts) {
      expect(v.userAgent).toBe('ClientTest/1.0 +https://example.com');
      // Whole seconds, close to now: Discogs refuses milliseconds and stale clocks.
      expect(v.oauth.oauth_timestamp).toMatch(/^\d{10}$/);
      expect(Math.abs(Number(v.oauth.oauth_timestamp) - Date.now() / 1000)).toBeLessThan(60);
    }
    const nonces = discogs.verdicts.map((v) => v.oauth.oauth_nonce);
    expect(new Set(nonces).size).toBe(3);
    expect(await counted()).toEqual(
      expect.arrayContaining([
        { call: 'request_token', outcome: 'ok', n: 1 },
        { call: 'access_token', outcome: 'ok', n: 1 },
        { call: 'identity', outcome: 'ok', n: 1 },
      ]),
    );
  });

  test('when the consumer secret is wrong, then the stand-in finds a bad signature and the error carries only the status', async () => {
    const { c, counted } = client();
    const err = await c
      .requestToken({ ...consumer, consumerSecret: 'not-the-secret' }, 'oob')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscogsError);
    expect(err).toMatchObject({ call: 'request_token', outcome: 'rejected', httpStatus: 401 });
    expect(discogs.verdicts.map((v) => v.reason)).toEqual(['bad_signature']);
    const everything = `${String(err)} ${JSON.stringify(err)} ${(err as Error).stack}`;
    expect(everything).not.toContain(discogs.errorBodyMarker);
    expect(await counted()).toEqual([{ call: 'request_token', outcome: 'rejected', n: 1 }]);
  });

  test('when the client clock is an hour off, then the stand-in refuses the timestamp', async () => {
    const { c } = client({ now: () => Date.now() - 3_600_000 });
    await expect(c.requestToken(consumer, 'oob')).rejects.toMatchObject({ outcome: 'rejected' });
    expect(discogs.verdicts.map((v) => v.reason)).toEqual(['stale_timestamp']);
  });

  test('when a nonce is used twice in the same second, then the stand-in refuses the second request', async () => {
    const now = Date.now();
    const { c } = client({ nonce: () => 'always-the-same', now: () => now });
    await c.requestToken(consumer, 'oob');
    await expect(c.requestToken(consumer, 'oob')).rejects.toMatchObject({ httpStatus: 401 });
    expect(discogs.verdicts.map((v) => v.reason)).toEqual(['valid', 'nonce_reused']);
  });

  test('when identity fails once with a 5xx, then it is retried once, signed afresh, and succeeds', async () => {
    const { c, counted } = client();
    const { access } = await connect(c);
    discogs.failNext('identity', 'server_error');
    expect(await c.identity(consumer, access)).toEqual({ id: 77, username: 'ada' });
    const identity = discogs.verdictsOf('identity');
    expect(identity.map((v) => [v.reason, v.injected, v.status])).toEqual([
      ['valid', 'server_error', 503],
      ['valid', undefined, 200],
    ]);
    expect(identity[0]!.oauth.oauth_nonce).not.toBe(identity[1]!.oauth.oauth_nonce);
    expect(await counted()).toEqual(
      expect.arrayContaining([
        { call: 'identity', outcome: 'server_error', n: 1 },
        { call: 'identity', outcome: 'ok', n: 1 },
      ]),
    );
  });

  test('when the connection drops on a request_token call, then it is retried as a network error', async () => {
    const { c, counted } = client();
    discogs.failNext('request_token', 'reset');
    await c.requestToken(consumer, 'oob');
    expect(discogs.verdictsOf('request_token').map((v) => v.injected ?? v.reason)).toEqual([
      'reset',
      'valid',
    ]);
    expect(await counted()).toEqual(
      expect.arrayContaining([{ call: 'request_token', outcome: 'network_error', n: 1 }]),
    );
  });

  test('when a GET keeps failing, then it gives up after the second attempt', async () => {
    const { c } = client();
    discogs.failNext('request_token', 'server_error', 3);
    await expect(c.requestToken(consumer, 'oob')).rejects.toMatchObject({
      outcome: 'server_error',
      httpStatus: 503,
    });
    expect(discogs.verdictsOf('request_token')).toHaveLength(2);
  });

  test('when the verifier exchange fails with a 5xx, then it is not retried', async () => {
    const { c } = client();
    const requestToken = await c.requestToken(consumer, 'oob');
    const { verifier } = discogs.approve(requestToken.token);
    discogs.failNext('access_token', 'server_error');
    await expect(c.accessToken(consumer, requestToken, verifier)).rejects.toMatchObject({
      call: 'access_token',
      outcome: 'server_error',
    });
    expect(discogs.verdictsOf('access_token')).toHaveLength(1);
  });

  test('when the verifier is wrong, then the exchange is rejected and the stand-in says why', async () => {
    const { c } = client();
    const requestToken = await c.requestToken(consumer, 'oob');
    discogs.approve(requestToken.token);
    await expect(c.accessToken(consumer, requestToken, 'wrong-verifier')).rejects.toMatchObject({
      outcome: 'rejected',
      httpStatus: 401,
    });
    expect(discogs.verdictsOf('access_token').map((v) => v.reason)).toEqual(['bad_verifier']);
  });

  test('when Discogs hangs, then the call fails as a timeout once the budget is spent, without a retry', async () => {
    const { c, counted } = client({ timeoutMs: 300 });
    discogs.failNext('request_token', 'hang');
    await expect(c.requestToken(consumer, 'oob')).rejects.toMatchObject({ outcome: 'timeout' });
    expect(discogs.verdictsOf('request_token').map((v) => v.injected)).toEqual(['hang']);
    expect(await counted()).toEqual([{ call: 'request_token', outcome: 'timeout', n: 1 }]);
  });

  test('when Discogs answers 200 with something else, then the call fails as a bad response without its body', async () => {
    const { c, counted } = client();
    discogs.failNext('request_token', 'garbage');
    const err = await c.requestToken(consumer, 'oob').catch((e: unknown) => e);
    expect(err).toMatchObject({ outcome: 'bad_response' });
    expect(String(err)).not.toContain(discogs.errorBodyMarker);
    expect(await counted()).toEqual([{ call: 'request_token', outcome: 'bad_response', n: 1 }]);
  });

  test('when a callback URL is given, then the stand-in receives it as signed', async () => {
    const { c } = client();
    const callback = "https://app.example.com/discogs/done?state=a'b(c)*!";
    const requestToken = await c.requestToken(consumer, callback);
    expect(discogs.callbackOf(requestToken.token)).toBe(callback);
    expect(discogs.verdicts.map((v) => v.reason)).toEqual(['valid']);
    expect(requestTokenOf(`${discogs.authorizeUrl}?oauth_token=${requestToken.token}`)).toBe(
      requestToken.token,
    );
  });
});
