import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Express } from 'express';
import request from 'supertest';
import { loadSpec } from '../src/http/spec';
import {
  GOOD_PASSWORD,
  signedInAdmin,
  signedInUser,
  startTestApp,
  useTestApp,
  type TestApp,
} from './support/test-app';
import { scrapeMetrics } from './support/metrics';

const APP_TOKENS = '/api/v1/auth/app-tokens';
const ME = '/api/v1/auth/me';

/** A second replica of the same deployment: one database, one Redis key prefix. */
let other: TestApp;
// Registered before useTestApp's own: afterAll hooks run in order, and the replica must close
// before the first app drops the database under it.
afterAll(async () => {
  await other?.close();
});
const t = useTestApp({ RATE_LIMIT_ENABLED: 'false' });
beforeAll(async () => {
  other = await startTestApp({ RATE_LIMIT_ENABLED: 'false' }, { database: t.dbName });
});
/** Every app token this file was shown, to prove none of them reaches a log line. */
const issued: string[] = [];

interface CreatedAppToken {
  id: string;
  name: string;
  token: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function bearer(token: string): [string, string] {
  return ['Authorization', `Bearer ${token}`];
}

async function createAppToken(
  app: Express,
  accessToken: string,
  body: object = { name: 'backup script' },
  expected = 201,
) {
  const res = await request(app)
    .post(APP_TOKENS)
    .set(...bearer(accessToken))
    .send(body)
    .expect(expected);
  if (res.status === 201) issued.push((res.body as CreatedAppToken).token);
  return res;
}

/** A signed-in user with one app token. */
async function userWithAppToken(app: Express = t.app) {
  const u = await signedInUser(app);
  const created = (await createAppToken(app, u.token)).body as CreatedAppToken;
  return { ...u, appToken: created.token, appTokenId: created.id };
}

function me(app: Express, token: string) {
  return request(app)
    .get(ME)
    .set(...bearer(token));
}

async function listAppTokens(app: Express, accessToken: string): Promise<CreatedAppToken[]> {
  const res = await request(app)
    .get(APP_TOKENS)
    .set(...bearer(accessToken))
    .expect(200);
  return (res.body as { app_tokens: CreatedAppToken[] }).app_tokens;
}

describe('creating and listing app tokens', () => {
  test('when an app token is created, then 201 shows ast_ and 256 random bits once, and only its SHA-256 is stored', async () => {
    const { token, user } = await signedInUser(t.app);
    const res = await createAppToken(t.app, token, { name: 'nightly backup' });
    const created = res.body as CreatedAppToken;
    expect(res.headers['cache-control']).toBe('no-store');
    expect(created).toMatchObject({ name: 'nightly backup', expires_at: null, last_used_at: null });
    expect(created.token).toMatch(/^ast_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(created.token.slice(4), 'base64url')).toHaveLength(32);
    const rows = await t.sql('SELECT * FROM app_tokens WHERE user_id = $1', [user.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(sha256(created.token));
    expect(JSON.stringify(rows)).not.toContain(created.token.slice(4));
    const listed = await listAppTokens(t.app, token);
    expect(listed).toEqual([
      {
        id: created.id,
        name: 'nightly backup',
        created_at: created.created_at,
        expires_at: null,
        last_used_at: null,
      },
    ]);
  });

  test('when two app tokens are created, then they differ and the list shows the newest first', async () => {
    const { token } = await signedInUser(t.app);
    const a = (await createAppToken(t.app, token, { name: 'first' })).body as CreatedAppToken;
    const b = (await createAppToken(t.app, token, { name: 'second' })).body as CreatedAppToken;
    expect(a.token).not.toBe(b.token);
    expect((await listAppTokens(t.app, token)).map((x) => x.name)).toEqual(['second', 'first']);
  });

  test('when expires_in_days is given, then expires_at is that many days after created_at', async () => {
    const { token } = await signedInUser(t.app);
    const created = (await createAppToken(t.app, token, { name: 'ci', expires_in_days: 30 }))
      .body as CreatedAppToken;
    const days = (Date.parse(created.expires_at!) - Date.parse(created.created_at)) / 86_400_000;
    expect(days).toBe(30);
  });

  test.each([
    ['an empty name', { name: '' }, '/body/name'],
    ['a name of 101 characters', { name: 'x'.repeat(101) }, '/body/name'],
    ['a name with a control character', { name: 'a\u0000b' }, '/body/name'],
    ['no name', { expires_in_days: 3 }, '/body/name'],
    ['expires_in_days 0', { name: 'a', expires_in_days: 0 }, '/body/expires_in_days'],
    ['expires_in_days 366', { name: 'a', expires_in_days: 366 }, '/body/expires_in_days'],
    ['an unknown member', { name: 'a', scopes: ['admin'] }, '/body/scopes'],
  ])(
    'when creating with %s, then 422 pointing at it and nothing is created',
    async (_c, body, path) => {
      const { token, user } = await signedInUser(t.app);
      const res = await createAppToken(t.app, token, body, 422);
      expect(res.body.code).toBe('validation_failed');
      expect(JSON.stringify(res.body.errors)).toContain(path);
      expect(await t.sql('SELECT 1 FROM app_tokens WHERE user_id = $1', [user.id])).toEqual([]);
    },
  );

  test('when a name has 100 characters outside the BMP, then it is accepted (characters, not bytes)', async () => {
    const { token } = await signedInUser(t.app);
    const name = '🎵'.repeat(100);
    const created = (await createAppToken(t.app, token, { name })).body as CreatedAppToken;
    expect(created.name).toBe(name);
  });
});

describe('using an app token', () => {
  test('when GET /me is called with an app token, then 200 with its owner, on either replica', async () => {
    const { appToken, user } = await userWithAppToken();
    for (const app of [t.app, other.app]) {
      const res = await me(app, appToken).expect(200);
      expect(res.body).toMatchObject({ id: user.id, email: user.email });
    }
  });

  test('when an unknown ast_ token is sent, then 401 invalid_token with WWW-Authenticate', async () => {
    const res = await me(t.app, `ast_${'A'.repeat(43)}`).expect(401);
    expect(res.body.code).toBe('invalid_token');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  test('when an app token has expired, then it is refused with 401 and no longer listed', async () => {
    const { appToken, appTokenId, token } = await userWithAppToken();
    await t.sql(`UPDATE app_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      appTokenId,
    ]);
    await me(t.app, appToken).expect(401);
    expect(await listAppTokens(t.app, token)).toEqual([]);
  });

  test('when an app token is deleted on one replica, then the other refuses it at once (401), on every operation', async () => {
    const { appToken, appTokenId, token } = await userWithAppToken();
    await me(other.app, appToken).expect(200);
    await request(t.app)
      .delete(`${APP_TOKENS}/${appTokenId}`)
      .set(...bearer(token))
      .expect(204);
    expect((await me(other.app, appToken).expect(401)).body.code).toBe('invalid_token');
    // Not 403 on operations that never accept app tokens: a dead token is 401 everywhere.
    await request(other.app)
      .post('/api/v1/auth/logout')
      .set(...bearer(appToken))
      .expect(401);
    await request(other.app)
      .get('/api/v1/admin/users')
      .set(...bearer(appToken))
      .expect(401);
    expect(await listAppTokens(t.app, token)).toEqual([]);
  });

  test("when deleting another user's app token or an unknown id, then 404 and the token keeps working", async () => {
    const victim = await userWithAppToken();
    const { token } = await signedInUser(t.app);
    for (const id of [victim.appTokenId, randomUUID()]) {
      const res = await request(t.app)
        .delete(`${APP_TOKENS}/${id}`)
        .set(...bearer(token))
        .expect(404);
      expect(res.body.code).toBe('not_found');
    }
    await me(t.app, victim.appToken).expect(200);
  });

  test('when an app token is used, then last_used_at shows the first use at once and is not rewritten within a minute', async () => {
    const { appToken, appTokenId, token } = await userWithAppToken();
    await me(t.app, appToken).expect(200);
    const [first] = await listAppTokens(t.app, token);
    expect(first!.last_used_at).not.toBeNull();
    const stored = async () =>
      (await t.sql('SELECT last_used_at FROM app_tokens WHERE id = $1', [appTokenId]))[0]!
        .last_used_at as Date;
    const before = await stored();
    await me(other.app, appToken).expect(200);
    await me(t.app, appToken).expect(200);
    expect((await stored()).getTime()).toBe(before.getTime());
  });

  test('when the recorded use is more than a minute old, then the next use records it again', async () => {
    const { appToken, appTokenId } = await userWithAppToken();
    await me(t.app, appToken).expect(200);
    await t.sql(
      `UPDATE app_tokens SET last_used_at = now() - interval '61 seconds' WHERE id = $1`,
      [appTokenId],
    );
    const stale = Date.now() - 61_000;
    await me(other.app, appToken).expect(200);
    const [row] = await t.sql('SELECT last_used_at FROM app_tokens WHERE id = $1', [appTokenId]);
    expect((row!.last_used_at as Date).getTime()).toBeGreaterThan(stale + 30_000);
  });
});

describe('where app tokens are refused', () => {
  /** Every secured operation whose security does not list `appToken`, read from the spec. */
  const spec = loadSpec();
  type Op = { security?: Record<string, string[]>[] };
  const refusing = spec.operations.filter((o) => {
    const op = (spec.document.paths as Record<string, Record<string, Op>>)[o.path]![
      o.method.toLowerCase()
    ]!;
    const security = op.security ?? [];
    return security.length > 0 && !security.some((r) => 'appToken' in r);
  });

  test('when the spec is read, then only GET /api/v1/auth/me accepts app tokens today', () => {
    const accepting = spec.operations.filter((o) => {
      const op = (spec.document.paths as Record<string, Record<string, Op>>)[o.path]![
        o.method.toLowerCase()
      ]!;
      return (op.security ?? []).some((r) => 'appToken' in r);
    });
    expect(accepting.map((o) => o.operationId)).toEqual(['getCurrentUser']);
    expect(refusing.length).toBeGreaterThan(8);
  });

  test.each(refusing.map((o) => [o.operationId, o.method, o.path] as const))(
    "when %s is called with a live administrator's app token, then 403 app_token_not_allowed",
    async (_id, method, path) => {
      const admin = await userWithAppToken();
      await t.sql('UPDATE users SET is_admin = true WHERE id = $1', [admin.user.id]);
      const url = path.replace(/\{[^}]+\}/g, randomUUID());
      const res = await request(t.app)
        [method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete'](url)
        .set(...bearer(admin.appToken))
        .send({});
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('app_token_not_allowed');
      expect(JSON.stringify(res.body)).not.toContain(admin.appToken.slice(4));
    },
  );

  test('when an app token tries to mint, list or delete app tokens, then 403 and nothing changes', async () => {
    const { appToken, appTokenId, user } = await userWithAppToken();
    await createAppToken(t.app, appToken, { name: 'escalation' }, 403);
    await request(t.app)
      .delete(`${APP_TOKENS}/${appTokenId}`)
      .set(...bearer(appToken))
      .expect(403);
    const rows = await t.sql('SELECT id FROM app_tokens WHERE user_id = $1', [user.id]);
    expect(rows).toEqual([{ id: appTokenId }]);
  });

  test('when an app token tries to change the password, then 403 and the password stays', async () => {
    const { appToken, email } = await userWithAppToken();
    await request(t.app)
      .post('/api/v1/auth/password')
      .set(...bearer(appToken))
      .send({ current_password: GOOD_PASSWORD, new_password: 'another-long-password' })
      .expect(403);
    await request(t.app)
      .post('/api/v1/auth/token')
      .send({ email, password: GOOD_PASSWORD })
      .expect(200);
  });
});

describe('the limit of 50 live app tokens', () => {
  test('when a user has 50 live app tokens, then one more is 409 app_token_limit; an expired one does not count', async () => {
    const { token, user } = await signedInUser(t.app);
    for (let i = 0; i < 50; i++) await createAppToken(t.app, token, { name: `t${i}` });
    const res = await createAppToken(t.app, token, { name: 'one too many' }, 409);
    expect(res.body.code).toBe('app_token_limit');
    await t.sql(
      `UPDATE app_tokens SET expires_at = now() - interval '1 second'
        WHERE id = (SELECT id FROM app_tokens WHERE user_id = $1 LIMIT 1)`,
      [user.id],
    );
    await createAppToken(t.app, token, { name: 'replaces the expired one' });
  });

  test('when creations race past the limit on two replicas, then exactly 50 are live', async () => {
    const { token, user } = await signedInUser(t.app);
    for (let i = 0; i < 40; i++) await createAppToken(t.app, token, { name: `t${i}` });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        request(i % 2 ? t.app : other.app)
          .post(APP_TOKENS)
          .set(...bearer(token))
          .send({ name: `race ${i}` }),
      ),
    );
    for (const r of results) if (r.status === 201) issued.push(r.body.token);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 409)).toHaveLength(10);
    const [row] = await t.sql('SELECT count(*)::int AS n FROM app_tokens WHERE user_id = $1', [
      user.id,
    ]);
    expect(row!.n).toBe(50);
  });
});

describe('what ends app tokens', () => {
  test("when the owner changes the password, then the owner's app tokens are refused and unlisted; new ones work", async () => {
    const { appToken, token } = await userWithAppToken();
    await request(t.app)
      .post('/api/v1/auth/password')
      .set(...bearer(token))
      .send({ current_password: GOOD_PASSWORD, new_password: 'another-long-password' })
      .expect(204);
    await me(other.app, appToken).expect(401);
    expect(await listAppTokens(t.app, token)).toEqual([]);
    const fresh = (await createAppToken(t.app, token, { name: 'after the change' }))
      .body as CreatedAppToken;
    await me(other.app, fresh.token).expect(200);
  });

  test("when every session of the user is ended (as a password reset does), then the user's app tokens are refused", async () => {
    const { appToken, user } = await userWithAppToken();
    await t.deps.sessions.endAllSessions(user.id);
    await me(other.app, appToken).expect(401);
  });

  test('when an admin deactivates the owner, then the app token is refused at once on the other replica', async () => {
    const { appToken, user } = await userWithAppToken();
    const admin = await signedInAdmin(t);
    await request(t.app)
      .patch(`/api/v1/admin/users/${user.id}`)
      .set(...bearer(admin.token))
      .send({ is_active: false })
      .expect(200);
    await me(other.app, appToken).expect(401);
  });

  test('when an operator deactivates the owner in SQL, then the app token is refused, and reactivation does not revive it', async () => {
    const { appToken, user } = await userWithAppToken();
    await t.sql('UPDATE users SET is_active = false WHERE id = $1', [user.id]);
    await me(other.app, appToken).expect(401);
    await t.sql('UPDATE users SET is_active = true WHERE id = $1', [user.id]);
    await me(other.app, appToken).expect(401);
    await me(t.app, appToken).expect(401);
  });

  test('when an operator deletes the owner in SQL, then the app token is refused and its row is gone', async () => {
    const { appToken, user } = await userWithAppToken();
    await t.sql('DELETE FROM users WHERE id = $1', [user.id]);
    await me(other.app, appToken).expect(401);
    expect(await t.sql('SELECT 1 FROM app_tokens WHERE user_id = $1', [user.id])).toEqual([]);
  });
});

describe('metrics and logs', () => {
  test('when app tokens are created and used, then /metrics counts them by outcome', async () => {
    const { appToken, token } = await userWithAppToken();
    await me(t.app, appToken).expect(200);
    await request(t.app)
      .get(APP_TOKENS)
      .set(...bearer(appToken))
      .expect(403);
    await me(t.app, `ast_${'B'.repeat(43)}`).expect(401);
    await createAppToken(t.app, token, { name: 'x'.repeat(100) });
    const value = await scrapeMetrics(t.healthApp);
    expect(value('auth_app_tokens_created_total{outcome="created"}')).toBeGreaterThanOrEqual(2);
    expect(value('auth_app_token_uses_total{outcome="accepted"}')).toBeGreaterThanOrEqual(1);
    expect(value('auth_app_token_uses_total{outcome="not_allowed"}')).toBeGreaterThanOrEqual(1);
    expect(value('auth_app_token_uses_total{outcome="unknown"}')).toBeGreaterThanOrEqual(1);
  });

  test('when this file has run, then no app token it was shown appears in any log line of either replica', () => {
    expect(issued.length).toBeGreaterThan(50);
    const logs = [...t.logs, ...other.logs].join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const token of issued) expect(logs).not.toContain(token.slice(4));
  });
});
