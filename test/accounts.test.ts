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
  // The race test fires 30 hashes at once; let them queue instead of getting 503.
  t = await startTestApp({ HASH_QUEUE_LIMIT: '100' });
});
afterAll(async () => {
  await t.close();
});

const REGISTER = '/api/v1/auth/register';

describe('register', () => {
  test('when the request is valid, then 201 with the public user and no password hash', async () => {
    const email = uniqueEmail();
    const res = await request(t.app)
      .post(REGISTER)
      .send({ email, password: GOOD_PASSWORD })
      .expect(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      email,
      is_active: true,
      is_admin: false,
      email_verified: false,
      mfa_enabled: false,
      created_at: expect.any(String),
    });
    expect(res.headers['cache-control']).toBe('no-store');
    const [row] = await t.sql('SELECT hashed_password FROM users WHERE id = $1', [res.body.id]);
    expect(row!.hashed_password).toMatch(/^\$2[aby]\$04\$/);
    expect(row!.hashed_password).not.toContain(GOOD_PASSWORD);
  });

  test('when the email has upper case, then it is stored lower-cased', async () => {
    const email = uniqueEmail('MiXeD').toUpperCase();
    const res = await request(t.app)
      .post(REGISTER)
      .send({ email, password: GOOD_PASSWORD })
      .expect(201);
    expect(res.body.email).toBe(email.toLowerCase());
    const rows = await t.sql('SELECT email FROM users WHERE id = $1', [res.body.id]);
    expect(rows[0]!.email).toBe(email.toLowerCase());
  });

  test('when the email has surrounding spaces, then it is stored trimmed and lower-cased', async () => {
    const bare = uniqueEmail('Ada').replace('@example.com', '@Example.COM');
    const res = await request(t.app)
      .post(REGISTER)
      .send({ email: `  ${bare} `, password: GOOD_PASSWORD })
      .expect(201);
    expect(res.body.email).toBe(bare.toLowerCase());
    const rows = await t.sql('SELECT email FROM users WHERE id = $1', [res.body.id]);
    expect(rows[0]!.email).toBe(bare.toLowerCase());
  });

  test('when the email had surrounding spaces, then the account logs in with it trimmed or not', async () => {
    const bare = uniqueEmail('Ada').toUpperCase();
    await request(t.app)
      .post(REGISTER)
      .send({ email: `\t${bare}  `, password: GOOD_PASSWORD })
      .expect(201);
    for (const email of [bare.toLowerCase(), ` ${bare} `, `\t${bare}  `]) {
      const json = await request(t.app)
        .post('/api/v1/auth/token')
        .send({ email, password: GOOD_PASSWORD });
      expect({ email, status: json.status }).toEqual({ email, status: 200 });
    }
    await request(t.app)
      .post('/api/v1/auth/token')
      .type('form')
      .send({ grant_type: 'password', username: `  ${bare} `, password: GOOD_PASSWORD })
      .expect(200);
  });

  test('when the email has surrounding spaces and is taken once trimmed, then 409 email_taken', async () => {
    const { email } = await register(t.app);
    const res = await request(t.app)
      .post(REGISTER)
      .send({ email: `  ${email.toUpperCase()} `, password: GOOD_PASSWORD })
      .expect(409);
    expect(res.body.code).toBe('email_taken');
  });

  test('when the email is 255 characters once trimmed, then spaces around it do not count', async () => {
    const email =
      'a'.repeat(255 - '@example.com'.length - 8) +
      uniqueEmail('').slice(-20, -12) +
      '@example.com';
    expect(email).toHaveLength(255);
    const res = await request(t.app)
      .post(REGISTER)
      .send({ email: `   ${email}   `, password: GOOD_PASSWORD })
      .expect(201);
    expect(res.body.email).toBe(email);
  });

  test.each([
    ['spaces inside the address', 'ada lovelace@example.com'],
    ['only spaces', '   '],
  ])('when the email has %s, then 422 naming it', async (_what, email) => {
    const res = await request(t.app)
      .post(REGISTER)
      .send({ email, password: GOOD_PASSWORD })
      .expect(422);
    expect(res.body.errors[0].path).toBe('/body/email');
  });

  test('when the same email is registered again in another letter case, then 409 email_taken', async () => {
    const { email } = await register(t.app);
    const res = await request(t.app)
      .post(REGISTER)
      .send({ email: email.toUpperCase(), password: GOOD_PASSWORD })
      .expect(409);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('email_taken');
    const rows = await t.sql('SELECT count(*)::int AS n FROM users WHERE email = $1', [email]);
    expect(rows[0]!.n).toBe(1);
  });

  test('when 30 identical registrations race, then exactly one succeeds and the rest are 409', async () => {
    const email = uniqueEmail('race');
    const results = await Promise.all(
      Array.from({ length: 30 }, () =>
        request(t.app).post(REGISTER).send({ email, password: GOOD_PASSWORD }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(29);
    const rows = await t.sql('SELECT count(*)::int AS n FROM users WHERE email = $1', [email]);
    expect(rows[0]!.n).toBe(1);
  });

  test('when the password is exactly 72 bytes of multi-byte characters, then it is accepted and logs in', async () => {
    // 24 x 3-byte characters = 72 bytes in UTF-8, 24 characters.
    const password = '€'.repeat(24);
    expect(Buffer.byteLength(password)).toBe(72);
    const { email } = await register(t.app, uniqueEmail(), password);
    await request(t.app).post('/api/v1/auth/token').send({ email, password }).expect(200);
  });

  test('when the password is 73 bytes (fewer than 72 characters), then 422 and nothing is stored', async () => {
    const password = '€'.repeat(24) + 'a'; // 25 characters, 73 bytes
    const email = uniqueEmail();
    const res = await request(t.app).post(REGISTER).send({ email, password }).expect(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.errors).toEqual([
      { path: '/body/password', message: 'must be at most 72 bytes in UTF-8' },
    ]);
    expect(await t.sql('SELECT 1 FROM users WHERE email = $1', [email])).toHaveLength(0);
  });

  test('when a 72-byte password is extended, then the longer one does not log in (no truncation)', async () => {
    const password = 'p'.repeat(72);
    const { email } = await register(t.app, uniqueEmail(), password);
    const res = await request(t.app)
      .post('/api/v1/auth/token')
      .send({ email, password: password + 'extra' })
      .expect(401);
    expect(res.body.code).toBe('invalid_credentials');
  });

  test('when the password is shorter than 8 characters, then 422 naming the field', async () => {
    const res = await request(t.app)
      .post(REGISTER)
      .send({ email: uniqueEmail(), password: 'short' })
      .expect(422);
    expect(res.body.errors).toEqual([expect.objectContaining({ path: '/body/password' })]);
  });

  test.each([
    ['not an email', { email: 'nope', password: GOOD_PASSWORD }, '/body/email'],
    [
      'an email over 255 characters',
      { email: 'a'.repeat(250) + '@example.com', password: GOOD_PASSWORD },
      '/body/email',
    ],
    ['a missing password', { email: 'x@example.com' }, '/body/password'],
    [
      'an unknown field',
      { email: 'x@example.com', password: GOOD_PASSWORD, is_admin: true },
      '/body/is_admin',
    ],
  ])(
    'when the body has %s, then 422 with errors[] and nothing is created',
    async (_what, body, path) => {
      const before = await t.sql('SELECT count(*)::int AS n FROM users');
      const res = await request(t.app).post(REGISTER).send(body).expect(422);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
      const after = await t.sql('SELECT count(*)::int AS n FROM users');
      expect(after[0]!.n).toBe(before[0]!.n);
    },
  );
});

describe('me', () => {
  test('when the token is valid, then 200 with the account and no-store', async () => {
    const { email, password } = await register(t.app);
    const login = await request(t.app)
      .post('/api/v1/auth/token')
      .send({ email, password })
      .expect(200);
    const res = await request(t.app)
      .get('/api/v1/auth/me')
      .set('Authorization', `Bearer ${login.body.access_token}`)
      .expect(200);
    expect(res.body.email).toBe(email);
    expect(res.headers['cache-control']).toBe('no-store');
  });
});
