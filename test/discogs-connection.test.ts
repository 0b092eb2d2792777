import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { oauthTokenPurpose } from '../src/crypto/purposes';
import { keyId } from '../src/crypto/secret-box';
import { MemoryStore } from '../src/state/ephemeral-store';
import {
  requestTokenOf,
  startDiscogsStandIn,
  type DiscogsAccount,
  type DiscogsStandIn,
} from './support/discogs-stand-in';
import {
  signedInAdmin,
  signedInUser,
  startTestApp,
  useTestApp,
  type TestApp,
} from './support/test-app';

/**
 * The Discogs account connection end to end: two app instances (replicas) over one database
 * and one Redis, one in the out-of-band mode and one with a callback URL, in front of a Discogs
 * stand-in that checks every signature. Calls go through the client typed by the spec; raw
 * HTTP (supertest) only where the request itself is the subject.
 */

const CALLBACK = 'https://app.example.com/settings/discogs/done';
const USER_AGENT = 'FlowTest/2.0 +https://app.example.com';
// Generous: the machine running the tests may be busy; only the hang test waits this long.
const TIMEOUT_MS = 3_000;

let discogs: DiscogsStandIn;
/** Filled in once the stand-in listens; useTestApp reads it when its own beforeAll runs. */
const env: Record<string, string> = {
  DISCOGS_USER_AGENT: USER_AGENT,
  DISCOGS_TIMEOUT_MS: String(TIMEOUT_MS),
  ENCRYPTION_MASTER_KEY: randomBytes(32).toString('hex'),
  RATE_LIMIT_ENABLED: 'false',
};
// Registered before useTestApp's hook, so it runs first (jest runs beforeAll in order).
beforeAll(async () => {
  discogs = await startDiscogsStandIn();
  Object.assign(env, {
    DISCOGS_API_URL: discogs.url,
    DISCOGS_AUTHORIZE_URL: discogs.authorizeUrl,
  });
});
/** A second replica: same database, Redis and keys, with a callback URL. */
let cb: TestApp;
// Declared before useTestApp, so it runs before the first app drops the shared database.
afterAll(async () => {
  await cb?.close();
  await discogs?.close();
});
/** DISCOGS_OAUTH_CALLBACK_URL unset: the out-of-band (PIN) flow. */
const oob = useTestApp(env);
let admin: { token: string };
/** Every verifier handed to the service, to look for in logs. */
const verifiers: string[] = [];

beforeAll(async () => {
  cb = await startTestApp(
    { ...env, DISCOGS_OAUTH_CALLBACK_URL: CALLBACK },
    { database: oob.dbName },
  );
  admin = await signedInAdmin(oob);
});
beforeEach(() => discogs.reset());

type Signed = Awaited<ReturnType<typeof signedInUser>>;

/** The four operations as `user`, on one replica. */
async function as(user: Signed, t: TestApp = oob) {
  const api = await t.api(user.token);
  return {
    authorize: () => api.POST('/api/v1/oauth/discogs/authorize'),
    verify: (body: { state: string; oauth_verifier: string }) =>
      api.POST('/api/v1/oauth/discogs/verify', { body }),
    status: () => api.GET('/api/v1/oauth/discogs'),
    disconnect: () => api.DELETE('/api/v1/oauth/discogs'),
  };
}

/** The answer's body, after checking its status. */
async function expectStatus<R extends { response: Response; data?: unknown; error?: unknown }>(
  call: Promise<R>,
  status: number,
): Promise<R> {
  const res = await call;
  if (res.response.status !== status) {
    throw new Error(`expected ${status}, got ${res.response.status}: ${JSON.stringify(res.error)}`);
  }
  return res;
}

async function authorized(user: Signed, t: TestApp = oob) {
  const { data } = await expectStatus((await as(user, t)).authorize(), 200);
  return data!;
}

/** authorize -> the user approves on Discogs -> verify; returns each step's answer. */
async function connect(user: Signed, t: TestApp = oob, account?: DiscogsAccount) {
  const started = await authorized(user, t);
  const { verifier } = discogs.approve(requestTokenOf(started.authorize_url), account);
  verifiers.push(verifier);
  const verified = await expectStatus(
    (await as(user, t)).verify({ state: started.state, oauth_verifier: verifier }),
    200,
  );
  return { started, verified: verified.data!, verifier };
}

async function tokenRows(userId: string) {
  return oob.sql(
    `SELECT row_to_json(t)::text AS raw, access_token, access_token_secret, provider_user_id,
            provider_username, created_at, updated_at
       FROM oauth_tokens t WHERE user_id = $1`,
    [userId],
  );
}

/** A problem answer: its code, and nothing of Discogs's own body. */
async function expectProblem(
  call: Promise<{ response: Response; error?: unknown }>,
  status: number,
  code: string,
) {
  const res = await expectStatus(call, status);
  expect(res.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = res.error as { code: string; detail: string; status: number };
  expect(problem).toMatchObject({ code, status });
  expect(JSON.stringify(problem)).not.toContain(discogs.errorBodyMarker);
  return { problem, response: res.response };
}

async function configureDiscogs(consumerSecret = discogs.consumerSecret) {
  const api = await oob.api(admin.token);
  await expectStatus(
    api.PUT('/api/v1/admin/config/discogs', {
      body: { consumer_key: discogs.consumerKey, consumer_secret: consumerSecret },
    }),
    200,
  );
}

describe('before an administrator sets the Discogs app credentials', () => {
  test('when a user starts a connection, then 503 discogs_not_configured tells what an admin must set, and Discogs is not called', async () => {
    const user = await signedInUser(oob.app);
    const { problem, response } = await expectProblem(
      (await as(user)).authorize(),
      503,
      'discogs_not_configured',
    );
    expect(problem.detail).toMatch(/administrator/);
    expect(problem.detail).toContain('PUT /api/v1/admin/config/discogs');
    expect(problem.detail).toContain('discogs-setup');
    expect(response.headers.get('retry-after')).toBeTruthy();
    expect(discogs.verdicts).toEqual([]);
  });

  test('when a user sends a verifier, then 503 as well, and the status still answers', async () => {
    const user = await signedInUser(oob.app);
    const api = await as(user);
    await expectProblem(
      api.verify({ state: 'a'.repeat(43), oauth_verifier: 'abc' }),
      503,
      'discogs_not_configured',
    );
    expect((await expectStatus(api.status(), 200)).data).toEqual({ connected: false });
  });
});

describe('with the Discogs app credentials set', () => {
  beforeAll(() => configureDiscogs());

  test('when any of the four operations is called without a bearer token, then 401', async () => {
    const BASE = '/api/v1/oauth/discogs';
    for (const r of [
      request(oob.app).post(`${BASE}/authorize`),
      request(oob.app).post(`${BASE}/verify`).send({ state: 'x', oauth_verifier: 'y' }),
      request(oob.app).get(BASE),
      request(oob.app).delete(BASE),
    ]) {
      const res = await r.expect(401);
      expect(res.body.code).toBe('missing_token');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
    expect(discogs.verdicts).toEqual([]);
  });

  test('when a user connects in the out-of-band mode, then every step succeeds and every signature verifies', async () => {
    const user = await signedInUser(oob.app);
    const started = await expectStatus((await as(user)).authorize(), 200);
    expect(started.response.headers.get('cache-control')).toBe('no-store');
    expect(started.data).toEqual({
      authorize_url: expect.stringMatching(
        new RegExp(`^${discogs.authorizeUrl}\\?oauth_token=[0-9a-f]+$`),
      ),
      state: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      expires_in: 600,
      callback_mode: 'oob',
    });
    const requestToken = requestTokenOf(started.data!.authorize_url);
    expect(discogs.callbackOf(requestToken)).toBe('oob');

    // On Discogs the user approves and is shown a code, which they paste into the app.
    const { verifier } = discogs.approve(requestToken, { id: 1234567, username: 'vinyl_ada' });
    verifiers.push(verifier);
    const verified = await expectStatus(
      (await as(user)).verify({ state: started.data!.state, oauth_verifier: verifier }),
      200,
    );
    expect(verified.data).toEqual({
      connected: true,
      discogs_username: 'vinyl_ada',
      discogs_user_id: 1234567,
      connected_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect((await expectStatus((await as(user)).status(), 200)).data).toEqual(verified.data);

    expect(discogs.verdicts.map((v) => [v.call, v.method, v.reason, v.status])).toEqual([
      ['request_token', 'GET', 'valid', 200],
      ['access_token', 'POST', 'valid', 200],
      ['identity', 'GET', 'valid', 200],
    ]);
    for (const v of discogs.verdicts) expect(v.userAgent).toBe(USER_AGENT);
  });

  test('when a user connects in the callback mode, then Discogs is given the callback with the state and the other replica finishes it', async () => {
    const user = await signedInUser(oob.app);
    const started = await authorized(user, cb);
    expect(started.callback_mode).toBe('callback');
    const requestToken = requestTokenOf(started.authorize_url);
    expect(discogs.callbackOf(requestToken)).toBe(`${CALLBACK}?state=${started.state}`);

    // Discogs sends the browser back; the callback page reads the query and calls verify.
    const { redirectTo } = discogs.approve(requestToken, { id: 42, username: 'callback_bo' });
    const back = new URL(redirectTo!);
    expect(`${back.origin}${back.pathname}`).toBe(CALLBACK);
    expect(back.searchParams.get('oauth_token')).toBe(requestToken);
    verifiers.push(back.searchParams.get('oauth_verifier')!);
    const verified = await expectStatus(
      (await as(user, oob)).verify({
        state: back.searchParams.get('state')!,
        oauth_verifier: back.searchParams.get('oauth_verifier')!,
      }),
      200,
    );
    expect(verified.data).toMatchObject({ connected: true, discogs_username: 'callback_bo' });
    expect(discogs.verdicts.map((v) => v.reason)).toEqual(['valid', 'valid', 'valid']);
  });

  test('when two users connect, then each sees only their own Discogs account', async () => {
    const ada = await signedInUser(oob.app);
    const bo = await signedInUser(oob.app);
    await connect(ada, oob, { id: 101, username: 'ada_two' });
    await connect(bo, cb, { id: 202, username: 'bo_two' });
    expect((await (await as(ada, cb)).status()).data).toMatchObject({ discogs_user_id: 101 });
    expect((await (await as(bo, oob)).status()).data).toMatchObject({ discogs_user_id: 202 });
  });

  test('when the tokens are stored, then the raw row holds only envelopes under the master key, bound to the row', async () => {
    const user = await signedInUser(oob.app);
    await connect(user, oob, { id: 555, username: 'raw_row' });
    const issued = discogs.issuedAccessTokens().find((t) => t.account.id === 555)!;
    const [row] = await tokenRows(user.user.id);
    expect(row).toMatchObject({ provider_user_id: '555', provider_username: 'raw_row' });
    const kid = keyId(oob.deps.encryptionKey);
    for (const column of ['access_token', 'access_token_secret'] as const) {
      expect((row![column] as string).startsWith(`v1:${kid}:`)).toBe(true);
    }
    for (const plain of [issued.token, issued.secret]) {
      expect(row!.raw).not.toContain(plain);
      expect(row!.raw).not.toContain(Buffer.from(plain).toString('base64'));
      expect(row!.raw).not.toContain(Buffer.from(plain).toString('base64url'));
    }
    // The service opens them (for calls on the user's behalf); another row's purpose does not.
    expect(await oob.deps.discogs.accessTokenOf(user.user.id)).toEqual({
      token: issued.token,
      secret: issued.secret,
    });
    const other = await signedInUser(oob.app);
    expect(() =>
      oob.deps.secretBox.open(
        row!.access_token as string,
        oauthTokenPurpose('discogs', other.user.id, 'access_token'),
      ),
    ).toThrow();
  });

  test('when a connected user connects again, then the one row is replaced, not duplicated', async () => {
    const user = await signedInUser(oob.app);
    await connect(user, oob, { id: 1, username: 'first_account' });
    const [before] = await tokenRows(user.user.id);
    const { verified } = await connect(user, cb, { id: 2, username: 'second_account' });
    const rows = await tokenRows(user.user.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ provider_user_id: '2', provider_username: 'second_account' });
    expect(rows[0]!.created_at).toEqual(before!.created_at);
    expect(rows[0]!.access_token).not.toBe(before!.access_token);
    expect(new Date(verified.connected_at).getTime()).toBeGreaterThanOrEqual(
      (before!.updated_at as Date).getTime(),
    );
  });

  test('when a user disconnects, then 204, the tokens are gone, and disconnecting again is still 204', async () => {
    const user = await signedInUser(oob.app);
    const other = await signedInUser(oob.app);
    await connect(user);
    await connect(other);
    await expectStatus((await as(user)).disconnect(), 204);
    expect(await tokenRows(user.user.id)).toEqual([]);
    expect((await expectStatus((await as(user, cb)).status(), 200)).data).toEqual({
      connected: false,
    });
    await expectStatus((await as(user, cb)).disconnect(), 204);
    expect(await tokenRows(other.user.id)).toHaveLength(1);
  });

  test('when a user is deleted from the database, then their Discogs tokens go with them', async () => {
    const user = await signedInUser(oob.app);
    await connect(user);
    expect(await tokenRows(user.user.id)).toHaveLength(1);
    await oob.sql('DELETE FROM users WHERE id = $1', [user.user.id]);
    expect(await tokenRows(user.user.id)).toEqual([]);
  });

  test('when the account is deactivated while Discogs answers, then 401 and no tokens are stored', async () => {
    const user = await signedInUser(oob.app);
    const started = await authorized(user);
    const { verifier } = discogs.approve(requestTokenOf(started.authorize_url));
    // Deactivated after the bearer check, before the tokens are written: Discogs's identity
    // answer is held until the account is switched off.
    const held = discogs.holdNext('identity');
    const verifying = (await as(user)).verify({ state: started.state, oauth_verifier: verifier });
    await held.arrived;
    await oob.sql('UPDATE users SET is_active = false WHERE id = $1', [user.user.id]);
    held.release();
    const res = await verifying;
    expect(res.response.status).toBe(401);
    expect(await tokenRows(user.user.id)).toEqual([]);
  });
});

describe('the state', () => {
  async function approved(user: Signed, t: TestApp = oob) {
    const { state, authorize_url } = await authorized(user, t);
    const { verifier } = discogs.approve(requestTokenOf(authorize_url));
    verifiers.push(verifier);
    return { state, oauth_verifier: verifier };
  }

  test('when a state is used a second time, then 400 invalid_oauth_state and Discogs is not asked again', async () => {
    const user = await signedInUser(oob.app);
    const body = await approved(user);
    await expectStatus((await as(user)).verify(body), 200);
    await expectProblem((await as(user, cb)).verify(body), 400, 'invalid_oauth_state');
    expect(discogs.verdictsOf('access_token')).toHaveLength(1);
  });

  test('when two replicas receive the same state at once, then exactly one completes', async () => {
    const user = await signedInUser(oob.app);
    const body = await approved(user);
    const [first, second] = [await as(user, oob), await as(user, cb)];
    const answers = await Promise.all([first.verify(body), second.verify(body)]);
    expect(answers.map((r) => r.response.status).sort()).toEqual([200, 400]);
    expect(answers.find((r) => r.response.status === 400)!.error).toMatchObject({
      code: 'invalid_oauth_state',
    });
    expect(discogs.verdictsOf('access_token')).toHaveLength(1);
  });

  test('when the state is unknown, then 400 invalid_oauth_state', async () => {
    const user = await signedInUser(oob.app);
    await expectProblem(
      (await as(user)).verify({
        state: randomBytes(32).toString('base64url'),
        oauth_verifier: 'abc',
      }),
      400,
      'invalid_oauth_state',
    );
    expect(discogs.verdictsOf('access_token')).toEqual([]);
  });

  test('when the state has expired in Redis, then 400 invalid_oauth_state', async () => {
    const user = await signedInUser(oob.app);
    const body = await approved(user);
    const redis = oob.deps.redis!;
    const keys = [
      `${oob.deps.redisKeyPrefix}discogs:oauth:pending:${user.user.id}:${body.state}`,
      `${oob.deps.redisKeyPrefix}discogs:oauth:owner:${body.state}`,
    ];
    // Issued for ten minutes; let Redis itself expire it now.
    for (const key of keys) {
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(590);
      expect(ttl).toBeLessThanOrEqual(600);
      await redis.pexpire(key, 1);
    }
    for (let i = 0; i < 100 && (await redis.exists(...keys)) > 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await redis.exists(...keys)).toBe(0);
    await expectProblem((await as(user)).verify(body), 400, 'invalid_oauth_state');
  });

  test('when the state is stored, then Redis holds neither the request token nor its secret in clear', async () => {
    const user = await signedInUser(oob.app);
    const { state, authorize_url } = await authorized(user);
    const stored = await oob.deps.redis!.get(
      `${oob.deps.redisKeyPrefix}discogs:oauth:pending:${user.user.id}:${state}`,
    );
    expect(stored).toMatch(/^v1:/);
    expect(stored).not.toContain(requestTokenOf(authorize_url));
  });

  test("when another user presents a user's state, then 403 oauth_state_mismatch and the owner can still finish", async () => {
    const owner = await signedInUser(oob.app);
    const intruder = await signedInUser(oob.app);
    const body = await approved(owner);
    await expectProblem((await as(intruder, cb)).verify(body), 403, 'oauth_state_mismatch');
    expect(discogs.verdictsOf('access_token')).toEqual([]);
    expect(await tokenRows(intruder.user.id)).toEqual([]);
    await expectStatus((await as(owner)).verify(body), 200);
  });

  test.each([
    ['no verifier', { state: 'a'.repeat(43) }, '/body/oauth_verifier'],
    ['a state with other characters', { state: 'a b', oauth_verifier: 'x' }, '/body/state'],
    [
      'a verifier with a space',
      { state: 'a'.repeat(43), oauth_verifier: 'x y' },
      '/body/oauth_verifier',
    ],
    ['an extra member', { state: 'a'.repeat(43), oauth_verifier: 'x', extra: 1 }, '/body/extra'],
  ])('when the body has %s, then 422 and Discogs is not called', async (_what, body, path) => {
    const user = await signedInUser(oob.app);
    const res = await request(oob.app)
      .post('/api/v1/oauth/discogs/verify')
      .set('Authorization', `Bearer ${user.token}`)
      .send(body)
      .expect(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect(discogs.verdicts).toEqual([]);
  });
});

describe('when Discogs refuses or fails', () => {
  test('when the verifier is wrong, then 400 discogs_verifier_rejected, nothing is stored and the state is spent', async () => {
    const user = await signedInUser(oob.app);
    const { state, authorize_url } = await authorized(user);
    discogs.approve(requestTokenOf(authorize_url));
    const body = { state, oauth_verifier: 'not-the-verifier' };
    await expectProblem((await as(user)).verify(body), 400, 'discogs_verifier_rejected');
    expect(discogs.verdictsOf('access_token').map((v) => v.reason)).toEqual(['bad_verifier']);
    expect(await tokenRows(user.user.id)).toEqual([]);
    await expectProblem((await as(user)).verify(body), 400, 'invalid_oauth_state');
  });

  test('when Discogs refuses a correct verifier, then 400 discogs_verifier_rejected as well', async () => {
    const user = await signedInUser(oob.app);
    const { state, authorize_url } = await authorized(user);
    const { verifier } = discogs.approve(requestTokenOf(authorize_url));
    discogs.failNext('access_token', 'refuse_verifier');
    await expectProblem(
      (await as(user)).verify({ state, oauth_verifier: verifier }),
      400,
      'discogs_verifier_rejected',
    );
  });

  test('when request_token fails with a 5xx twice, then 502 discogs_unavailable after one retry, without the upstream body', async () => {
    const user = await signedInUser(oob.app);
    discogs.failNext('request_token', 'server_error', 2);
    await expectProblem((await as(user)).authorize(), 502, 'discogs_unavailable');
    expect(discogs.verdictsOf('request_token').map((v) => [v.reason, v.injected])).toEqual([
      ['valid', 'server_error'],
      ['valid', 'server_error'],
    ]);
  });

  test('when request_token fails with a 5xx once, then the retry succeeds and the user sees 200', async () => {
    const user = await signedInUser(oob.app);
    discogs.failNext('request_token', 'server_error');
    await authorized(user);
    expect(discogs.verdictsOf('request_token')).toHaveLength(2);
  });

  test('when Discogs drops every connection, then 502', async () => {
    const user = await signedInUser(oob.app);
    discogs.failNext('request_token', 'reset', 2);
    await expectProblem((await as(user)).authorize(), 502, 'discogs_unavailable');
  });

  test('when the access_token call hangs, then 502 once the timeout has passed, and the exchange is not retried', async () => {
    const user = await signedInUser(oob.app);
    const { state, authorize_url } = await authorized(user);
    const { verifier } = discogs.approve(requestTokenOf(authorize_url));
    discogs.failNext('access_token', 'hang');
    const began = Date.now();
    const { problem } = await expectProblem(
      (await as(user)).verify({ state, oauth_verifier: verifier }),
      502,
      'discogs_unavailable',
    );
    expect(Date.now() - began).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(problem.detail).toMatch(/in time/);
    expect(discogs.verdictsOf('access_token').map((v) => v.injected)).toEqual(['hang']);
    expect(await tokenRows(user.user.id)).toEqual([]);
  });

  test('when the identity call keeps failing after the exchange, then 502 and nothing is stored', async () => {
    const user = await signedInUser(oob.app);
    const { state, authorize_url } = await authorized(user);
    const { verifier } = discogs.approve(requestTokenOf(authorize_url));
    discogs.failNext('identity', 'server_error', 2);
    await expectProblem(
      (await as(user)).verify({ state, oauth_verifier: verifier }),
      502,
      'discogs_unavailable',
    );
    expect(discogs.verdictsOf('identity')).toHaveLength(2);
    expect(await tokenRows(user.user.id)).toEqual([]);
  });

  test('when Discogs answers request_token with garbage, then 502', async () => {
    const user = await signedInUser(oob.app);
    discogs.failNext('request_token', 'garbage');
    await expectProblem((await as(user)).authorize(), 502, 'discogs_unavailable');
  });

  test("when the stored consumer secret is not the app's, then the stand-in finds a bad signature and the user gets 502 naming the admin's task", async () => {
    const user = await signedInUser(oob.app);
    await configureDiscogs('WrongSecretWrongSecret');
    try {
      const { problem } = await expectProblem(
        (await as(user)).authorize(),
        502,
        'discogs_unavailable',
      );
      expect(problem.detail).toMatch(/administrator should check/);
      expect(discogs.verdicts.map((v) => v.reason)).toEqual(['bad_signature']);
    } finally {
      await configureDiscogs();
    }
  });
});

describe('without Redis (single instance)', () => {
  test('when REDIS_URL is unset, then the flow runs on the in-process store and a state still completes once', async () => {
    const single = await startTestApp({ ...env, REDIS_URL: '' }, { database: oob.dbName });
    try {
      expect(single.deps.store).toBeInstanceOf(MemoryStore);
      const user = await signedInUser(single.app);
      const { state, authorize_url } = await authorized(user, single);
      const { verifier } = discogs.approve(requestTokenOf(authorize_url));
      verifiers.push(verifier);
      const api = await as(user, single);
      const answers = await Promise.all([
        api.verify({ state, oauth_verifier: verifier }),
        api.verify({ state, oauth_verifier: verifier }),
      ]);
      expect(answers.map((r) => r.response.status).sort()).toEqual([200, 400]);
      // The other replicas share Redis, not this process's memory.
      const elsewhere = await authorized(user, oob);
      await expectProblem(
        api.verify({ state: elsewhere.state, oauth_verifier: 'x' }),
        400,
        'invalid_oauth_state',
      );
    } finally {
      await single.close();
    }
  });
});

describe('what operators see', () => {
  test('when /metrics is scraped, then Discogs calls are counted by call and outcome', async () => {
    const res = await request(oob.healthApp).get('/metrics').expect(200);
    const count = (call: string, outcome: string) =>
      Number(
        new RegExp(
          `^auth_discogs_upstream_calls_total\\{call="${call}",outcome="${outcome}"\\} (\\d+)$`,
          'm',
        ).exec(res.text)?.[1] ?? 0,
      );
    expect(count('request_token', 'ok')).toBeGreaterThan(5);
    expect(count('access_token', 'ok')).toBeGreaterThan(5);
    expect(count('identity', 'ok')).toBeGreaterThan(5);
    expect(count('request_token', 'server_error')).toBeGreaterThanOrEqual(3);
    expect(count('request_token', 'network_error')).toBe(2);
    expect(count('access_token', 'timeout')).toBe(1);
    expect(count('access_token', 'rejected')).toBeGreaterThanOrEqual(2);
    expect(count('request_token', 'bad_response')).toBe(1);
  });

  test('when the flows have run, then no log line holds a Discogs token, secret or verifier', () => {
    const logs = [...oob.logs, ...cb.logs].join('\n');
    expect(logs).toContain('Discogs account connected');
    const secrets = discogs
      .issuedAccessTokens()
      .flatMap((t) => [t.token, t.secret])
      .concat(verifiers, [discogs.consumerSecret]);
    expect(secrets.length).toBeGreaterThan(20);
    for (const s of secrets) expect(logs).not.toContain(s);
    expect(logs).not.toContain(discogs.errorBodyMarker);
  });
});
