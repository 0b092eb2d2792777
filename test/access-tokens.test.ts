import { createSecretKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { TEST_JWT_SECRET, register, signedInUser, useTestApp } from './support/test-app';

const t = useTestApp();

const ME = '/api/v1/auth/me';
const ISS = 'auth-service';
const AUD = 'music-catalogue';
const key = createSecretKey(Buffer.from(TEST_JWT_SECRET));
const now = () => Math.floor(Date.now() / 1000);

function b64(obj: unknown): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

/** A correctly signed HS256 token with chosen claims. */
function sign(
  claims: Record<string, unknown>,
  secret: jwt.Secret = key,
  alg: jwt.Algorithm = 'HS256',
) {
  // jsonwebtoken adds iat unless told not to; keep it exactly as given.
  return jwt.sign(claims, secret, { algorithm: alg, noTimestamp: !('iat' in claims) });
}

function goodClaims(sub: string): Record<string, unknown> {
  return { sub, sid, iat: now(), exp: now() + 600, jti: randomUUID(), iss: ISS, aud: AUD };
}

async function expect401(token: string | undefined, code = 'invalid_token') {
  const req = request(t.app).get(ME);
  if (token !== undefined) req.set('Authorization', token);
  const res = await req.expect(401);
  expect(res.body.code).toBe(code);
  expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  return res;
}

let userId: string;
/** A live session of that user, for hand-signed tokens. */
let sid: string;
beforeAll(async () => {
  const { user, token } = await signedInUser(t.app);
  userId = user.id;
  sid = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sid: string })
    .sid;
});

test('when a hand-signed token has every required claim, then it is accepted (the baseline for the attacks)', async () => {
  await request(t.app)
    .get(ME)
    .set('Authorization', `Bearer ${sign(goodClaims(userId))}`)
    .expect(200);
});

test('when there is no Authorization header, then 401 missing_token', async () => {
  await expect401(undefined, 'missing_token');
});

test.each([
  ['an empty bearer', 'Bearer '],
  ['garbage', 'Bearer not-a-jwt'],
  ['three garbage segments', 'Bearer aaa.bbb.ccc'],
  ['a Basic scheme', 'Basic dXNlcjpwYXNz'],
])('when the header is %s, then 401', async (_what, header) => {
  const res = await request(t.app).get(ME).set('Authorization', header).expect(401);
  expect(['missing_token', 'invalid_token']).toContain(res.body.code);
});

test('when the token is signed with another secret, then 401', async () => {
  await expect401(`Bearer ${sign(goodClaims(userId), 'another-secret-another-secret-1234567890')}`);
});

test('when the token is tampered with (payload changed, signature kept), then 401', async () => {
  const [h, , s] = sign(goodClaims(userId)).split('.');
  const other = (await register(t.app)).user.id;
  await expect401(`Bearer ${h}.${b64(goodClaims(other))}.${s}`);
});

test('when alg is none, then 401', async () => {
  const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(goodClaims(userId))}.`;
  await expect401(`Bearer ${token}`);
});

test('when the token is HS512 with the right secret, then 401', async () => {
  await expect401(`Bearer ${sign(goodClaims(userId), key, 'HS512')}`);
});

test('when the token is RS256, then 401', async () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await expect401(`Bearer ${sign(goodClaims(userId), privateKey, 'RS256')}`);
});

test.each(['exp', 'sub', 'sid', 'jti', 'iss', 'aud', 'iat'])(
  'when the %s claim is missing, then 401',
  async (claim) => {
    const claims = goodClaims(userId);
    delete claims[claim];
    await expect401(`Bearer ${sign(claims)}`);
  },
);

test('when the token has expired, then 401', async () => {
  await expect401(`Bearer ${sign({ ...goodClaims(userId), iat: now() - 3600, exp: now() - 60 })}`);
});

test('when iat is in the future, then 401 (it would outlive a password-change cutoff)', async () => {
  await expect401(
    `Bearer ${sign({ ...goodClaims(userId), iat: now() + 3600, exp: now() + 3700 })}`,
  );
});

test('when the token lives longer than the service ever issues, then 401', async () => {
  await expect401(`Bearer ${sign({ ...goodClaims(userId), exp: now() + 365 * 86400 })}`);
});

test('when the issuer is wrong, then 401', async () => {
  await expect401(`Bearer ${sign({ ...goodClaims(userId), iss: 'someone-else' })}`);
});

test('when the audience is wrong, then 401', async () => {
  await expect401(`Bearer ${sign({ ...goodClaims(userId), aud: 'another-api' })}`);
});

test('when the subject is not a uuid, then 401 (no database error)', async () => {
  await expect401(`Bearer ${sign({ ...goodClaims(userId), sub: "1' OR '1'='1" })}`);
});

/**
 * A change made directly in the database reaches the user-state cache by NOTIFY: the contract
 * gives it a second. Polls /me until it answers 401 (bounded) and returns that answer.
 */
async function meRefusedWithinASecond(token: string) {
  const api = await t.api(token);
  const deadline = Date.now() + 1_000;
  for (;;) {
    const r = await api.GET('/api/v1/auth/me');
    if (r.response.status === 401 || Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('when the user has been deleted in the database, then their token gets 401 within a second', async () => {
  const { user, token } = await signedInUser(t.app);
  const me = await (await t.api(token)).GET('/api/v1/auth/me');
  expect(me.data?.id).toBe(user.id);
  await t.sql('DELETE FROM users WHERE id = $1', [user.id]);
  const { response, error } = await meRefusedWithinASecond(token);
  expect(response.status).toBe(401);
  expect(error?.code).toBe('invalid_token');
});

test('when the user is deactivated directly in the database, then their token gets 401 within a second', async () => {
  const { user, token } = await signedInUser(t.app);
  const api = await t.api(token);
  expect((await api.GET('/api/v1/auth/me')).response.status).toBe(200);
  await t.sql('UPDATE users SET is_active = false WHERE id = $1', [user.id]);
  const { response, error } = await meRefusedWithinASecond(token);
  expect(response.status).toBe(401);
  expect(error?.code).toBe('invalid_token');
});

test('when an operator deactivates and reactivates a user in SQL, then the old sessions stay ended', async () => {
  const { user, token, tokens } = await signedInUser(t.app);
  await t.sql('UPDATE users SET is_active = false WHERE id = $1', [user.id]);
  await t.sql('UPDATE users SET is_active = true WHERE id = $1', [user.id]);
  await expect401(`Bearer ${token}`);
  const refresh = await request(t.app)
    .post('/api/v1/auth/token')
    .type('form')
    .send({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
    .expect(401);
  expect(refresh.body.code).toBe('invalid_refresh_token');
});

test('when a token fails, then neither it nor the header appears in the error body', async () => {
  const token = sign(goodClaims(userId), 'another-secret-another-secret-1234567890');
  const res = await expect401(`Bearer ${token}`);
  expect(JSON.stringify(res.body)).not.toContain(token);
  expect(JSON.stringify(res.body)).not.toContain('Bearer');
});

test("when a hand-signed token names another user's live session, then 401", async () => {
  const other = await signedInUser(t.app);
  await expect401(`Bearer ${sign({ ...goodClaims(other.user.id), sid })}`);
});

test('when a hand-signed token names a session that does not exist, then 401', async () => {
  await expect401(`Bearer ${sign({ ...goodClaims(userId), sid: randomUUID() })}`);
});

test('when the sid claim is not a uuid, then 401', async () => {
  await expect401(`Bearer ${sign({ ...goodClaims(userId), sid: "x' OR '1'='1" })}`);
});
