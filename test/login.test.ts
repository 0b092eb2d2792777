import request from 'supertest';
import {
  GOOD_PASSWORD,
  login,
  register,
  startTestApp,
  uniqueEmail,
  type TestApp,
} from './support/test-app';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const TOKEN = '/api/v1/auth/token';

async function loginOutcomes(): Promise<Record<string, number>> {
  const m = await t.deps.metrics.logins.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.outcome), v.value]));
}

async function storedHash(userId: string): Promise<string> {
  const [row] = await t.sql('SELECT hashed_password FROM users WHERE id = $1', [userId]);
  return row!.hashed_password as string;
}

/**
 * bcrypt comparisons so far, from the hash-duration histogram. The metric deliberately does not
 * say whether a comparison was against an account or the dummy hash: that would tell anyone
 * who can scrape /metrics which emails have accounts.
 */
async function bcryptComparisons(): Promise<number> {
  const m = await t.deps.metrics.passwordHashDuration.get();
  return (
    m.values.find((v) => v.metricName?.endsWith('_count') && v.labels.op === 'verify')?.value ?? 0
  );
}

test('when logging in with the OAuth2 password form, then 200 with a bearer token', async () => {
  const { email, password } = await register(t.app);
  const res = await request(t.app)
    .post(TOKEN)
    .type('form')
    .send({ grant_type: 'password', username: email, password })
    .expect(200);
  expect(res.body).toMatchObject({ token_type: 'bearer', expires_in: 1800 });
  expect(res.body.access_token.split('.')).toHaveLength(3);
  expect(res.headers['cache-control']).toBe('no-store');
});

test('when logging in with JSON and the email in another case, then 200', async () => {
  const { email, password } = await register(t.app);
  await request(t.app)
    .post(TOKEN)
    .send({ email: `  ${email.toUpperCase()} `, password })
    .expect(200);
});

test('when the access token is decoded, then it carries sub, sid, iat, exp, jti, iss and aud with HS256', async () => {
  const { email, password, user } = await register(t.app);
  const res = await request(t.app).post(TOKEN).send({ email, password }).expect(200);
  const [header, payload] = res.body.access_token
    .split('.')
    .slice(0, 2)
    .map((p: string) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
  expect(payload).toEqual({
    sub: user.id,
    sid: expect.stringMatching(/^[0-9a-f-]{36}$/),
    iat: expect.any(Number),
    exp: expect.any(Number),
    jti: expect.any(String),
    iss: 'auth-service',
    aud: 'music-catalogue',
  });
  expect(payload.exp - payload.iat).toBe(30 * 60);
});

describe('failed logins are indistinguishable', () => {
  let email: string;
  let inactiveEmail: string;
  beforeAll(async () => {
    ({ email } = await register(t.app));
    const inactive = await register(t.app);
    inactiveEmail = inactive.email;
    await t.sql('UPDATE users SET is_active = false WHERE id = $1', [inactive.user.id]);
  });

  const strip = (body: Record<string, unknown>) => ({ ...body, request_id: undefined });

  test('when the password is wrong, the email unknown or the account inactive, then the same 401', async () => {
    const wrong = await request(t.app)
      .post(TOKEN)
      .send({ email, password: 'wrong-password' })
      .expect(401);
    const unknown = await request(t.app)
      .post(TOKEN)
      .send({ email: uniqueEmail('ghost'), password: GOOD_PASSWORD })
      .expect(401);
    const inactive = await request(t.app)
      .post(TOKEN)
      .send({ email: inactiveEmail, password: GOOD_PASSWORD })
      .expect(401);
    expect(wrong.body.code).toBe('invalid_credentials');
    expect(strip(unknown.body)).toEqual(strip(wrong.body));
    expect(strip(inactive.body)).toEqual(strip(wrong.body));
    for (const r of [wrong, unknown, inactive]) {
      expect(r.headers['www-authenticate']).toBe('Bearer');
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });

  test('when the password is wrong, the email unknown or the account inactive, then the login metric counts one and the same outcome', async () => {
    const before = await loginOutcomes();
    await request(t.app).post(TOKEN).send({ email, password: 'wrong-password' }).expect(401);
    await request(t.app)
      .post(TOKEN)
      .send({ email: uniqueEmail('ghost'), password: GOOD_PASSWORD })
      .expect(401);
    await request(t.app)
      .post(TOKEN)
      .send({ email: inactiveEmail, password: GOOD_PASSWORD })
      .expect(401);
    const after = await loginOutcomes();
    expect(after.invalid_credentials).toBe((before.invalid_credentials ?? 0) + 3);
    expect(Object.keys(after).sort()).toEqual(
      Object.keys({ ...before, invalid_credentials: 0 }).sort(),
    );
  });

  test('when the email is unknown, then a dummy bcrypt hash is still verified', async () => {
    // No account hash exists for this email, so the one comparison is against the dummy hash.
    const before = await bcryptComparisons();
    await request(t.app)
      .post(TOKEN)
      .send({ email: uniqueEmail('ghost'), password: GOOD_PASSWORD })
      .expect(401);
    expect(await bcryptComparisons()).toBe(before + 1);
  });

  test('when the email exists, then the same bcrypt work is spent: one comparison', async () => {
    const before = await bcryptComparisons();
    await request(t.app).post(TOKEN).send({ email, password: 'wrong-password' }).expect(401);
    expect(await bcryptComparisons()).toBe(before + 1);
  });
});

test.each([
  [
    'form with another grant type',
    'form',
    { grant_type: 'client_credentials', username: 'a@b.co', password: 'x' },
  ],
  ['form without a username', 'form', { grant_type: 'password', password: 'x' }],
  ['JSON without a password', 'json', { email: 'a@b.co' }],
])('when the token request is a %s, then 422', async (_what, type, body) => {
  const res = await request(t.app).post(TOKEN).type(type).send(body).expect(422);
  expect(res.body.code).toBe('validation_failed');
});

describe('the grant is chosen by grant_type', () => {
  test('when a password-grant form also carries a valid refresh_token, then the password decides and the refresh token is not spent', async () => {
    const { email } = await register(t.app);
    const pair = await login(t.app, email);
    const res = await request(t.app)
      .post(TOKEN)
      .type('form')
      .send({
        grant_type: 'password',
        username: email,
        password: 'wrong-password',
        refresh_token: pair.refresh_token,
      })
      .expect(401);
    expect(res.body.code).toBe('invalid_credentials');
    await request(t.app)
      .post(TOKEN)
      .send({ grant_type: 'refresh_token', refresh_token: pair.refresh_token })
      .expect(200);
  });

  test('when a password-grant form with the right password carries an unknown refresh_token, then 200', async () => {
    const { email, password } = await register(t.app);
    const res = await request(t.app)
      .post(TOKEN)
      .type('form')
      .send({ grant_type: 'password', username: email, password, refresh_token: 'x'.repeat(43) })
      .expect(200);
    expect(res.body.token_type).toBe('bearer');
  });
});

describe('after BCRYPT_COST is raised', () => {
  let raised: TestApp;
  beforeAll(async () => {
    raised = await startTestApp({ BCRYPT_COST: '5' }, { database: t.dbName });
  });
  afterAll(async () => {
    await raised?.close();
  });

  test('when a user logs in, then the password is rehashed at the new cost and still logs in', async () => {
    const { email, password, user } = await register(t.app);
    expect(await storedHash(user.id)).toMatch(/^\$2[aby]\$04\$/);
    await login(raised.app, email, 'wrong-password', 401);
    expect(await storedHash(user.id)).toMatch(/^\$2[aby]\$04\$/);
    await login(raised.app, email, password);
    expect(await storedHash(user.id)).toMatch(/^\$2[aby]\$05\$/);
    await login(raised.app, email, password);
    await login(t.app, email, password);
  });

  test('when the password is changed, then the new hash has the new cost', async () => {
    const { email, password, user } = await register(t.app);
    const pair = await login(t.app, email, password);
    await request(raised.app)
      .post('/api/v1/auth/password')
      .set('Authorization', `Bearer ${pair.access_token}`)
      .send({ current_password: password, new_password: 'staple-battery-horse-correct' })
      .expect(204);
    expect(await storedHash(user.id)).toMatch(/^\$2[aby]\$05\$/);
  });
});
