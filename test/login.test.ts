import request from 'supertest';
import {
  GOOD_PASSWORD,
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

async function dummyVerifications(): Promise<number> {
  const m = await t.deps.metrics.passwordVerifications.get();
  return m.values.find((v) => v.labels.kind === 'dummy')?.value ?? 0;
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

test('when the access token is decoded, then it carries sub, iat, exp, jti, iss and aud with HS256', async () => {
  const { email, password, user } = await register(t.app);
  const res = await request(t.app).post(TOKEN).send({ email, password }).expect(200);
  const [header, payload] = res.body.access_token
    .split('.')
    .slice(0, 2)
    .map((p: string) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
  expect(payload).toEqual({
    sub: user.id,
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

  test('when the email is unknown, then a dummy bcrypt hash is still verified', async () => {
    const before = await dummyVerifications();
    await request(t.app)
      .post(TOKEN)
      .send({ email: uniqueEmail('ghost'), password: GOOD_PASSWORD })
      .expect(401);
    expect(await dummyVerifications()).toBe(before + 1);
  });

  test('when the email exists, then no dummy verification is spent', async () => {
    const before = await dummyVerifications();
    await request(t.app).post(TOKEN).send({ email, password: 'wrong-password' }).expect(401);
    expect(await dummyVerifications()).toBe(before);
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
