import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { CLI_ACTOR } from '../src/admin/audit-log.repository';
import { keyId } from '../src/crypto/secret-box';
import { AppError } from '../src/errors';
import {
  login,
  register,
  signedInAdmin,
  signedInUser,
  startTestApp,
  useTestApp,
  type TestApp,
} from './support/test-app';

// Many accounts are registered from one address; rate limits are another file's subject.
const t = useTestApp({ RATE_LIMIT_ENABLED: 'false' });

const DISCOGS = '/api/v1/admin/config/discogs';
const USERS = '/api/v1/admin/users';
const AUDIT = '/api/v1/admin/audit-log';
const ME = '/api/v1/auth/me';

type Method = 'get' | 'put' | 'delete' | 'patch';
const OPERATIONS: [string, Method, string, object | undefined][] = [
  ['getDiscogsConfig', 'get', DISCOGS, undefined],
  [
    'putDiscogsConfig',
    'put',
    DISCOGS,
    { consumer_key: 'KeyKeyKeyKey1234', consumer_secret: 'sec' },
  ],
  ['deleteDiscogsConfig', 'delete', DISCOGS, undefined],
  ['listUsers', 'get', USERS, undefined],
  ['updateUser', 'patch', `${USERS}/${randomUUID()}`, { is_active: true }],
  ['listAuditLog', 'get', AUDIT, undefined],
];

function call(app: TestApp['app'], method: Method, path: string, token?: string, body?: object) {
  const req = request(app)[method](path);
  if (token) req.set('Authorization', `Bearer ${token}`);
  return body === undefined ? req : req.send(body);
}

async function auditRows(app: TestApp, targetId: string) {
  return app.sql(
    `SELECT actor_user_id, actor_label, action, target_type, target_id, details, request_id,
            host(client_ip) AS client_ip
       FROM admin_audit_log WHERE target_id = $1 ORDER BY id`,
    [targetId],
  );
}

describe('access to admin operations', () => {
  test.each(OPERATIONS)(
    'when %s is called without a token, then 401 missing_token with WWW-Authenticate',
    async (_op, method, path, body) => {
      const res = await call(t.app, method, path, undefined, body).expect(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.body.code).toBe('missing_token');
    },
  );

  test.each(OPERATIONS)(
    'when %s is called with a garbage token, then 401 invalid_token',
    async (_op, method, path, body) => {
      const res = await call(t.app, method, path, 'not-a-jwt', body).expect(401);
      expect(res.body.code).toBe('invalid_token');
    },
  );

  test.each(OPERATIONS)(
    'when %s is called by a signed-in non-admin, then 403 forbidden and nothing changes',
    async (_op, method, path, body) => {
      const { token } = await signedInUser(t.app);
      const before = await t.sql('SELECT count(*)::int AS n FROM admin_audit_log');
      const res = await call(t.app, method, path, token, body).expect(403);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('forbidden');
      expect(await t.sql('SELECT count(*)::int AS n FROM admin_audit_log')).toEqual(before);
    },
  );

  test('when an admin is demoted, then their same token is refused with 403 on the next call', async () => {
    const boss = await signedInAdmin(t);
    const other = await signedInAdmin(t);
    await call(t.app, 'get', USERS, other.token).expect(200);
    await call(t.app, 'patch', `${USERS}/${other.user.id}`, boss.token, { is_admin: false }).expect(
      200,
    );
    const res = await call(t.app, 'get', USERS, other.token).expect(403);
    expect(res.body.code).toBe('forbidden');
    const me = await call(t.app, 'get', ME, other.token).expect(200);
    expect(me.body.is_admin).toBe(false);
  });

  test('when a user is promoted, then their existing token has admin access at once', async () => {
    const boss = await signedInAdmin(t);
    const u = await signedInUser(t.app);
    await call(t.app, 'get', AUDIT, u.token).expect(403);
    const res = await call(t.app, 'patch', `${USERS}/${u.user.id}`, boss.token, { is_admin: true });
    expect(res.status).toBe(200);
    expect(res.body.is_admin).toBe(true);
    await call(t.app, 'get', AUDIT, u.token).expect(200);
  });

  test('when the admin flag is changed directly in the database, then the next call honours it', async () => {
    const u = await signedInAdmin(t);
    await call(t.app, 'get', DISCOGS, u.token).expect(200);
    await t.sql('UPDATE users SET is_admin = false WHERE id = $1', [u.user.id]);
    await call(t.app, 'get', DISCOGS, u.token).expect(403);
  });
});

describe('Discogs app credentials', () => {
  const KEY = `Key${randomBytes(8).toString('hex')}WxYz`;
  const SECRET = `Sec${randomBytes(12).toString('hex')}`;
  let admin: Awaited<ReturnType<typeof signedInAdmin>>;
  beforeAll(async () => {
    admin = await signedInAdmin(t);
  });

  test('when nothing is configured, then GET says so with nulls', async () => {
    const res = await call(t.app, 'get', DISCOGS, admin.token).expect(200);
    expect(res.body).toEqual({
      configured: false,
      consumer_key: null,
      consumer_secret_set: false,
      updated_at: null,
    });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('when the credentials are PUT, then 200 with the key masked and the secret absent from the response', async () => {
    const res = await call(t.app, 'put', DISCOGS, admin.token, {
      consumer_key: KEY,
      consumer_secret: SECRET,
    })
      .set('X-Request-Id', 'req-discogs-put-1')
      .expect(200);
    expect(res.body).toEqual({
      configured: true,
      consumer_key: '****WxYz',
      consumer_secret_set: true,
      updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(res.text).not.toContain(SECRET);
    expect(res.text).not.toContain(KEY);
  });

  test('when the row is read from the database, then the secret is a v1 envelope under the master key and not the plaintext', async () => {
    const rows = await t.sql('SELECT key, value FROM app_config ORDER BY key');
    const byKey = Object.fromEntries(rows.map((r) => [r.key, r.value as string]));
    expect(byKey.discogs_consumer_key).toBe(KEY);
    const stored = byKey.discogs_consumer_secret!;
    expect(stored.startsWith(`v1:${keyId(t.deps.encryptionKey)}:`)).toBe(true);
    expect(stored).not.toContain(SECRET);
    expect(stored).not.toContain(Buffer.from(SECRET).toString('base64'));
    expect(stored).not.toContain(Buffer.from(SECRET).toString('base64url'));
    // The service itself can still use it.
    expect(await t.deps.discogsConfig.credentials()).toEqual({
      consumerKey: KEY,
      consumerSecret: SECRET,
    });
  });

  test('when the sealed secret is copied onto another app_config key, then it does not open there', async () => {
    const [row] = await t.sql(`SELECT value FROM app_config WHERE key = 'discogs_consumer_secret'`);
    expect(() => t.deps.secretBox.open(row!.value as string, 'app_config:other_setting')).toThrow(
      /failed authentication/,
    );
  });

  test('when GET is called after the PUT, then the key is masked and the secret only reported as set', async () => {
    const res = await call(t.app, 'get', DISCOGS, admin.token).expect(200);
    expect(res.body.configured).toBe(true);
    expect(res.body.consumer_key).toBe('****WxYz');
    expect(res.body.consumer_secret_set).toBe(true);
    expect(res.text).not.toContain(SECRET);
  });

  test('when the PUT was made, then an audit entry names the actor, request id and address but not the secret', async () => {
    const rows = await auditRows(t, 'discogs');
    const entry = rows.find((r) => r.request_id === 'req-discogs-put-1');
    expect(entry).toMatchObject({
      actor_user_id: admin.user.id,
      actor_label: admin.email,
      action: 'discogs_config.update',
      target_type: 'app_config',
      details: { changed: ['consumer_key', 'consumer_secret'], consumer_key: '****WxYz' },
    });
    expect(entry!.client_ip).toMatch(/127\.0\.0\.1$/);
    const all = await t.sql('SELECT details::text AS d FROM admin_audit_log');
    expect(all.map((r) => r.d).join('\n')).not.toContain(SECRET);
  });

  test('when the secret has gone through the service, then no log line contains it', () => {
    expect(t.logs.length).toBeGreaterThan(0);
    expect(t.logs.join('\n')).not.toContain(SECRET);
  });

  test('when the same credentials are PUT again, then the audit entry records no changed fields', async () => {
    await call(t.app, 'put', DISCOGS, admin.token, { consumer_key: KEY, consumer_secret: SECRET })
      .set('X-Request-Id', 'req-discogs-put-2')
      .expect(200);
    const entry = (await auditRows(t, 'discogs')).find((r) => r.request_id === 'req-discogs-put-2');
    expect(entry!.details).toEqual({ changed: [], consumer_key: '****WxYz' });
  });

  test('when the key is short, then it is masked completely', async () => {
    const res = await call(t.app, 'put', DISCOGS, admin.token, {
      consumer_key: 'shortkey',
      consumer_secret: SECRET,
    }).expect(200);
    expect(res.body.consumer_key).toBe('****');
  });

  test.each([
    ['an empty key', { consumer_key: '', consumer_secret: 'abc' }, '/body/consumer_key'],
    [
      'a key with a space',
      { consumer_key: 'abc def', consumer_secret: 'abc' },
      '/body/consumer_key',
    ],
    [
      'a secret with a newline',
      { consumer_key: 'abcdef', consumer_secret: 'abc\ndef' },
      '/body/consumer_secret',
    ],
    [
      'a secret with a control character',
      { consumer_key: 'abcdef', consumer_secret: 'ab\u0007c' },
      '/body/consumer_secret',
    ],
    ['non-ASCII', { consumer_key: 'abcdéf', consumer_secret: 'abc' }, '/body/consumer_key'],
    [
      'a 201-character key',
      { consumer_key: 'k'.repeat(201), consumer_secret: 'abc' },
      '/body/consumer_key',
    ],
    ['a missing secret', { consumer_key: 'abcdef' }, '/body/consumer_secret'],
    [
      'an extra property',
      { consumer_key: 'abcdef', consumer_secret: 'abc', note: 'x' },
      '/body/note',
    ],
    ['a number', { consumer_key: 12345, consumer_secret: 'abc' }, '/body/consumer_key'],
  ])(
    'when the PUT body has %s, then 422 naming the field and nothing is stored',
    async (_what, body, path) => {
      const before = await t.sql('SELECT key, value FROM app_config ORDER BY key');
      const res = await call(t.app, 'put', DISCOGS, admin.token, body).expect(422);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
      expect(await t.sql('SELECT key, value FROM app_config ORDER BY key')).toEqual(before);
    },
  );

  test('when the PUT body is not JSON, then 400 malformed_body', async () => {
    const res = await request(t.app)
      .put(DISCOGS)
      .set('Authorization', `Bearer ${admin.token}`)
      .set('Content-Type', 'application/json')
      .send('{"consumer_key":')
      .expect(400);
    expect(res.body.code).toBe('malformed_body');
  });

  test('when the credentials are deleted, then 204, GET reports nothing configured, the rows are gone and it is audited', async () => {
    await call(t.app, 'delete', DISCOGS, admin.token)
      .set('X-Request-Id', 'req-discogs-del')
      .expect(204);
    const res = await call(t.app, 'get', DISCOGS, admin.token).expect(200);
    expect(res.body).toEqual({
      configured: false,
      consumer_key: null,
      consumer_secret_set: false,
      updated_at: null,
    });
    expect(await t.sql(`SELECT 1 FROM app_config WHERE key LIKE 'discogs_%'`)).toHaveLength(0);
    expect(await t.deps.discogsConfig.credentials()).toBeNull();
    const entry = (await auditRows(t, 'discogs')).find((r) => r.request_id === 'req-discogs-del');
    expect(entry).toMatchObject({
      action: 'discogs_config.delete',
      details: { was_configured: true },
    });
  });

  test('when the credentials are deleted again, then still 204 (idempotent)', async () => {
    await call(t.app, 'delete', DISCOGS, admin.token).expect(204);
  });
});

describe('listing users', () => {
  let admin: Awaited<ReturnType<typeof signedInAdmin>>;
  const tag = `ls${randomBytes(4).toString('hex')}`;
  const emails = [`${tag}-c@example.com`, `${tag}-a@example.com`, `${tag}-b@example.com`];
  beforeAll(async () => {
    admin = await signedInAdmin(t);
    for (const e of emails) await register(t.app, e);
  });

  test('when filtering by an email substring in another case, then the matches come ordered by email with the total', async () => {
    const res = await call(t.app, 'get', `${USERS}?email=${tag.toUpperCase()}`, admin.token).expect(
      200,
    );
    expect(res.body.total).toBe(3);
    expect(res.body.limit).toBe(20);
    expect(res.body.offset).toBe(0);
    expect(res.body.items.map((u: { email: string }) => u.email)).toEqual([...emails].sort());
    expect(res.body.items[0]).toEqual({
      id: expect.any(String),
      email: `${tag}-a@example.com`,
      is_active: true,
      is_admin: false,
      email_verified: false,
      mfa_enabled: false,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(res.text).not.toContain('$2');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('when paging with limit and offset, then each page holds the next entries and the same total', async () => {
    const p1 = await call(
      t.app,
      'get',
      `${USERS}?email=${tag}&limit=2&offset=0`,
      admin.token,
    ).expect(200);
    const p2 = await call(
      t.app,
      'get',
      `${USERS}?email=${tag}&limit=2&offset=2`,
      admin.token,
    ).expect(200);
    expect(p1.body).toMatchObject({ total: 3, limit: 2, offset: 0 });
    expect(p2.body).toMatchObject({ total: 3, limit: 2, offset: 2 });
    expect([...p1.body.items, ...p2.body.items].map((u: { email: string }) => u.email)).toEqual(
      [...emails].sort(),
    );
    const beyond = await call(t.app, 'get', `${USERS}?email=${tag}&offset=50`, admin.token).expect(
      200,
    );
    expect(beyond.body).toMatchObject({ items: [], total: 3 });
  });

  test('when the filter holds LIKE wildcards, then they match only themselves', async () => {
    const m = `wc${randomBytes(4).toString('hex')}`;
    await register(t.app, `${m}x_y@example.com`);
    await register(t.app, `${m}xzy@example.com`);
    await register(t.app, `${m}p%q@example.com`);
    await register(t.app, `${m}pzq@example.com`);
    const under = await call(
      t.app,
      'get',
      `${USERS}?email=${encodeURIComponent(`${m}x_`)}`,
      admin.token,
    ).expect(200);
    expect(under.body.items.map((u: { email: string }) => u.email)).toEqual([
      `${m}x_y@example.com`,
    ]);
    const pct = await call(
      t.app,
      'get',
      `${USERS}?email=${encodeURIComponent(`${m}p%`)}`,
      admin.token,
    ).expect(200);
    expect(pct.body.items.map((u: { email: string }) => u.email)).toEqual([`${m}p%q@example.com`]);
    const backslash = await call(
      t.app,
      'get',
      `${USERS}?email=${encodeURIComponent(`${m}\\`)}`,
      admin.token,
    ).expect(200);
    expect(backslash.body.total).toBe(0);
  });

  test('when filtering by is_admin and is_active, then only such accounts are listed', async () => {
    const res = await call(
      t.app,
      'get',
      `${USERS}?is_admin=true&is_active=true&limit=100`,
      admin.token,
    ).expect(200);
    expect(res.body.items.length).toBeGreaterThan(0);
    expect(
      res.body.items.every(
        (u: { is_admin: boolean; is_active: boolean }) => u.is_admin && u.is_active,
      ),
    ).toBe(true);
    expect(res.body.items.map((u: { id: string }) => u.id)).toContain(admin.user.id);
  });

  test.each([
    ['limit=0', '/query/limit'],
    ['limit=101', '/query/limit'],
    ['limit=abc', '/query/limit'],
    ['offset=-1', '/query/offset'],
    ['is_admin=maybe', '/query/is_admin'],
    ['unknown=1', '/query/unknown'],
  ])('when the query has %s, then 422', async (qs, path) => {
    const res = await call(t.app, 'get', `${USERS}?${qs}`, admin.token).expect(422);
    expect(res.body.code).toBe('validation_failed');
    expect(JSON.stringify(res.body.errors)).toContain(path.split('/').pop());
  });
});

describe('updating users', () => {
  let admin: Awaited<ReturnType<typeof signedInAdmin>>;
  beforeAll(async () => {
    admin = await signedInAdmin(t);
  });

  test('when a user is deactivated, then their token fails at once, they cannot log in, and it is audited', async () => {
    const victim = await signedInUser(t.app);
    await call(t.app, 'get', ME, victim.token).expect(200);
    const res = await call(t.app, 'patch', `${USERS}/${victim.user.id}`, admin.token, {
      is_active: false,
    })
      .set('X-Request-Id', 'req-deactivate-1')
      .expect(200);
    expect(res.body).toMatchObject({ id: victim.user.id, is_active: false, is_admin: false });
    expect(res.body.updated_at).toEqual(expect.any(String));

    const me = await call(t.app, 'get', ME, victim.token).expect(401);
    expect(me.body.code).toBe('invalid_token');
    const denied = await login(t.app, victim.email, victim.password, 401);
    expect(denied).toMatchObject({ code: 'invalid_credentials' });

    const [entry] = await auditRows(t, victim.user.id);
    expect(entry).toEqual({
      actor_user_id: admin.user.id,
      actor_label: admin.email,
      action: 'user.update',
      target_type: 'user',
      target_id: victim.user.id,
      details: { email: victim.email, changes: { is_active: { from: true, to: false } } },
      request_id: 'req-deactivate-1',
      client_ip: expect.stringMatching(/127\.0\.0\.1$/),
    });
  });

  test('when a deactivated user is reactivated, then they can log in again', async () => {
    const u = await signedInUser(t.app);
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, { is_active: false }).expect(
      200,
    );
    await login(t.app, u.email, u.password, 401);
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, { is_active: true }).expect(
      200,
    );
    await login(t.app, u.email, u.password);
  });

  test('when a deactivated user is reactivated, then the sessions from before stay ended', async () => {
    const u = await signedInUser(t.app);
    const refreshToken = u.tokens.refresh_token!;
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, { is_active: false }).expect(
      200,
    );
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, { is_active: true }).expect(
      200,
    );
    const me = await call(t.app, 'get', ME, u.token).expect(401);
    expect(me.body.code).toBe('invalid_token');
    const refreshed = await request(t.app)
      .post('/api/v1/auth/token')
      .send({ grant_type: 'refresh_token', refresh_token: refreshToken })
      .expect(401);
    expect(refreshed.body.code).toBe('invalid_refresh_token');
    const [row] = await t.sql(
      'SELECT count(*)::int AS live FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL',
      [u.user.id],
    );
    expect(row).toEqual({ live: 0 });
  });

  test('when only the admin flag changes, then the sessions of the user go on', async () => {
    const u = await signedInUser(t.app);
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, { is_admin: true }).expect(
      200,
    );
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, { is_admin: false }).expect(
      200,
    );
    await call(t.app, 'get', ME, u.token).expect(200);
  });

  test('when the id is unknown, then 404 not_found and no audit entry', async () => {
    const id = randomUUID();
    const res = await call(t.app, 'patch', `${USERS}/${id}`, admin.token, {
      is_admin: true,
    }).expect(404);
    expect(res.body.code).toBe('not_found');
    expect(await auditRows(t, id)).toHaveLength(0);
  });

  test('when the id is not a uuid, then 422 on the path', async () => {
    const res = await call(t.app, 'patch', `${USERS}/not-a-uuid`, admin.token, {
      is_admin: true,
    }).expect(422);
    expect(res.body.errors[0].path).toBe('/path/id');
  });

  test('when the id is a urn:uuid (a format PostgreSQL refuses), then 422, not 500', async () => {
    const u = await register(t.app);
    const res = await call(t.app, 'patch', `${USERS}/urn:uuid:${u.user.id}`, admin.token, {
      is_active: false,
    }).expect(422);
    expect(res.body.errors[0].path).toBe('/path/id');
  });

  test.each([
    ['an empty object', {}],
    ['an unknown property', { is_active: true, email: 'x@example.com' }],
    ['a string for a boolean', { is_active: 'false' }],
    ['null', { is_admin: null }],
  ])('when the PATCH body is %s, then 422 and nothing changes', async (_what, body) => {
    const u = await register(t.app);
    const res = await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, body).expect(422);
    expect(res.body.code).toBe('validation_failed');
    const [row] = await t.sql('SELECT is_active, is_admin FROM users WHERE id = $1', [u.user.id]);
    expect(row).toEqual({ is_active: true, is_admin: false });
  });
});

describe('the last active administrator', () => {
  let t2: TestApp;
  beforeAll(async () => {
    // Own database, so "the only admins" really are the only ones; the proxy is trusted so
    // the recorded client address can be checked.
    t2 = await startTestApp({ TRUST_PROXY: 'loopback', RATE_LIMIT_ENABLED: 'false' });
  });
  afterAll(async () => {
    await t2.close();
  });

  async function onlyAdmins(...ids: string[]) {
    await t2.sql('UPDATE users SET is_admin = (id = ANY($1::uuid[])), is_active = true', [ids]);
  }

  test('when the only admin demotes or deactivates themselves, then 409 last_admin and nothing changes or is audited', async () => {
    const a = await signedInAdmin(t2);
    await onlyAdmins(a.user.id);
    for (const body of [
      { is_admin: false },
      { is_active: false },
      { is_admin: false, is_active: false },
    ]) {
      const res = await call(t2.app, 'patch', `${USERS}/${a.user.id}`, a.token, body).expect(409);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('last_admin');
    }
    const [row] = await t2.sql('SELECT is_active, is_admin FROM users WHERE id = $1', [a.user.id]);
    expect(row).toEqual({ is_active: true, is_admin: true });
    expect(await auditRows(t2, a.user.id)).toHaveLength(0);
    // A change that keeps them admin is fine.
    await call(t2.app, 'patch', `${USERS}/${a.user.id}`, a.token, { is_admin: true }).expect(200);
  });

  test('when there are two admins, then one may demote the other, and the client address comes from a trusted proxy', async () => {
    const a = await signedInAdmin(t2);
    const b = await signedInAdmin(t2);
    await onlyAdmins(a.user.id, b.user.id);
    await call(t2.app, 'patch', `${USERS}/${b.user.id}`, a.token, { is_admin: false })
      .set('X-Forwarded-For', '203.0.113.9')
      .expect(200);
    const [entry] = await auditRows(t2, b.user.id);
    expect(entry!.client_ip).toBe('203.0.113.9');
    await call(t2.app, 'patch', `${USERS}/${a.user.id}`, a.token, { is_admin: false }).expect(409);
  });

  test('when an inactive admin is demoted, then it is allowed (only active admins count)', async () => {
    const a = await signedInAdmin(t2);
    const dormant = await register(t2.app);
    await onlyAdmins(a.user.id, dormant.user.id);
    await t2.sql('UPDATE users SET is_active = false WHERE id = $1', [dormant.user.id]);
    await call(t2.app, 'patch', `${USERS}/${dormant.user.id}`, a.token, { is_admin: false }).expect(
      200,
    );
  });

  test('when the only two admins demote each other at the same time over HTTP, then exactly one succeeds', async () => {
    const a = await signedInAdmin(t2);
    const b = await signedInAdmin(t2);
    await onlyAdmins(a.user.id, b.user.id);
    const [ra, rb] = await Promise.all([
      call(t2.app, 'patch', `${USERS}/${b.user.id}`, a.token, { is_admin: false }),
      call(t2.app, 'patch', `${USERS}/${a.user.id}`, b.token, { is_admin: false }),
    ]);
    const statuses = [ra.status, rb.status].sort();
    // The loser is refused by the last-admin rule (409) or, if the winner committed before its
    // request was authenticated, because it is no longer an admin (403).
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect([403, 409]).toContain(statuses.find((s) => s !== 200));
    const rows = await t2.sql('SELECT count(*)::int AS n FROM users WHERE is_admin AND is_active');
    expect(rows[0]!.n).toBe(1);
  });

  test('when two removals of the only two admins race in the service, round after round, then exactly one wins each time', async () => {
    const a = await register(t2.app);
    const b = await register(t2.app);
    for (let round = 0; round < 15; round++) {
      await onlyAdmins(a.user.id, b.user.id);
      const results = await Promise.allSettled([
        t2.deps.adminUsers.update(
          a.user.id,
          round % 2 ? { isActive: false } : { isAdmin: false },
          CLI_ACTOR,
        ),
        t2.deps.adminUsers.update(b.user.id, { isAdmin: false }, CLI_ACTOR),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(AppError);
      expect((lost.reason as AppError).code).toBe('last_admin');
      const rows = await t2.sql(
        'SELECT count(*)::int AS n FROM users WHERE is_admin AND is_active',
      );
      expect(rows[0]!.n).toBe(1);
    }
  });
});

describe('the audit log', () => {
  let admin: Awaited<ReturnType<typeof signedInAdmin>>;
  beforeAll(async () => {
    admin = await signedInAdmin(t);
  });

  test('when admin changes are made, then the log lists them newest first with actor, request id and address', async () => {
    const u = await register(t.app);
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, { is_admin: true })
      .set('X-Request-Id', 'req-audit-1')
      .expect(200);
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, admin.token, {
      is_admin: false,
      is_active: false,
    })
      .set('X-Request-Id', 'req-audit-2')
      .expect(200);
    const res = await call(t.app, 'get', `${AUDIT}?target_id=${u.user.id}`, admin.token).expect(
      200,
    );
    expect(res.body).toMatchObject({ total: 2, limit: 20, offset: 0 });
    expect(res.body.items.map((e: { request_id: string }) => e.request_id)).toEqual([
      'req-audit-2',
      'req-audit-1',
    ]);
    expect(res.body.items[0]).toEqual({
      id: expect.stringMatching(/^\d+$/),
      actor_user_id: admin.user.id,
      actor_label: admin.email,
      action: 'user.update',
      target_type: 'user',
      target_id: u.user.id,
      details: {
        email: u.email,
        changes: { is_admin: { from: true, to: false }, is_active: { from: true, to: false } },
      },
      request_id: 'req-audit-2',
      client_ip: expect.stringMatching(/127\.0\.0\.1$/),
      created_at: expect.any(String),
    });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('when paging and filtering by action, then pages are disjoint, newest first, and of that action only', async () => {
    const p1 = await call(t.app, 'get', `${AUDIT}?action=user.update&limit=2`, admin.token).expect(
      200,
    );
    const p2 = await call(
      t.app,
      'get',
      `${AUDIT}?action=user.update&limit=2&offset=2`,
      admin.token,
    ).expect(200);
    expect(p1.body.total).toBeGreaterThanOrEqual(4);
    const ids = [...p1.body.items, ...p2.body.items].map((e: { id: string }) => Number(e.id));
    expect(ids).toEqual([...ids].sort((x, y) => y - x));
    expect(new Set(ids).size).toBe(4);
    expect(
      [...p1.body.items, ...p2.body.items].every(
        (e: { action: string }) => e.action === 'user.update',
      ),
    ).toBe(true);
  });

  test('when the acting admin account is deleted, then its entries remain with the label and no user id', async () => {
    const temp = await signedInAdmin(t);
    const u = await register(t.app);
    await call(t.app, 'patch', `${USERS}/${u.user.id}`, temp.token, { is_active: false }).expect(
      200,
    );
    await t.sql('DELETE FROM users WHERE id = $1', [temp.user.id]);
    const [entry] = await auditRows(t, u.user.id);
    expect(entry).toMatchObject({ actor_user_id: null, actor_label: temp.email });
  });

  test('when the query is out of range, then 422', async () => {
    await call(t.app, 'get', `${AUDIT}?limit=1000`, admin.token).expect(422);
  });
});
