import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Express } from 'express';
import { Client } from 'pg';
import request from 'supertest';
import { signedInUser, startTestApp, type TestApp } from './support/test-app';

/**
 * The user-state cache on the authenticated path, with two replicas on one database: every
 * change to a user or a session, by the API or by SQL, reaches both.
 */

let t: TestApp;
let other: TestApp;

beforeAll(async () => {
  t = await startTestApp();
  other = await startTestApp({}, { database: t.dbName });
});
afterAll(async () => {
  // The replica first: closing the owner drops the database under it.
  await other?.close();
  await t?.close();
});

function me(app: Express, token: string) {
  return request(app).get('/api/v1/auth/me').set('Authorization', `Bearer ${token}`);
}

/** Waits (bounded) until the replica's listener has proven it hears the database. */
async function listening(app: TestApp): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!app.deps.userStateListener!.healthy) {
    if (Date.now() > deadline) throw new Error('the user-state listener never became healthy');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function cacheCount(app: TestApp, result: 'hit' | 'miss' | 'bypass'): Promise<number> {
  return app.deps.metrics.userStateCache
    .get()
    .then((m) => m.values.find((v) => v.labels.result === result)?.value ?? 0);
}

/** Polls until `fn` answers `status`, for at most `ms`; returns how long it took. */
async function within(ms: number, fn: () => Promise<{ status: number }>, status: number) {
  const start = Date.now();
  for (;;) {
    const res = await fn();
    if (res.status === status) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`still ${res.status} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A signed-in user whose state both replicas have cached. */
async function cachedOnBoth() {
  await Promise.all([listening(t), listening(other)]);
  const u = await signedInUser(t.app);
  for (const app of [t, other]) {
    await me(app.app, u.token).expect(200); // miss: stored
    const hits = await cacheCount(app, 'hit');
    await me(app.app, u.token).expect(200);
    expect(await cacheCount(app, 'hit')).toBe(hits + 1);
  }
  return u;
}

describe('user-state cache across replicas', () => {
  it('when an operator deactivates a user in SQL, then both replicas refuse the token within a second', async () => {
    const u = await cachedOnBoth();
    await t.sql('UPDATE users SET is_active = false WHERE id = $1', [u.user.id]);
    await within(1_000, () => me(t.app, u.token), 401);
    await within(1_000, () => me(other.app, u.token), 401);
  });

  it('when an operator promotes a user in SQL, then /me on both replicas shows it within a second', async () => {
    const u = await cachedOnBoth();
    await t.sql('UPDATE users SET is_admin = true WHERE id = $1', [u.user.id]);
    for (const app of [t, other]) {
      const start = Date.now();
      for (;;) {
        const res = await me(app.app, u.token).expect(200);
        if ((res.body as { is_admin: boolean }).is_admin) break;
        if (Date.now() - start > 1_000) throw new Error('is_admin not seen within a second');
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  });

  it('when an operator demotes an admin in SQL, then the next admin call on either replica is refused (admin calls never use the cache)', async () => {
    const u = await cachedOnBoth();
    await t.sql('UPDATE users SET is_admin = true WHERE id = $1', [u.user.id]);
    for (const app of [t, other]) {
      await request(app.app)
        .get('/api/v1/admin/users')
        .set('Authorization', `Bearer ${u.token}`)
        .expect(200);
    }
    await t.sql('UPDATE users SET is_admin = false WHERE id = $1', [u.user.id]);
    for (const app of [t, other]) {
      await request(app.app)
        .get('/api/v1/admin/users')
        .set('Authorization', `Bearer ${u.token}`)
        .expect(403);
    }
  });

  it('when an operator deletes a user in SQL, then both replicas refuse the token within a second', async () => {
    const u = await cachedOnBoth();
    await t.sql('DELETE FROM users WHERE id = $1', [u.user.id]);
    await within(1_000, () => me(t.app, u.token), 401);
    await within(1_000, () => me(other.app, u.token), 401);
  });

  it('when a user logs out on one replica, then the very next request on the other is refused', async () => {
    const u = await cachedOnBoth();
    await request(t.app)
      .post('/api/v1/auth/logout')
      .set('Authorization', `Bearer ${u.token}`)
      .send({})
      .expect(204);
    await me(other.app, u.token).expect(401);
    await me(t.app, u.token).expect(401);
  });

  it('when the listening connection is cut, then every check reads the database until it is back', async () => {
    const u = await cachedOnBoth();
    // A plain client: t.sql would wait for the listeners, which reconnect while it waits.
    const pg = new Client({ connectionString: t.dbUrl });
    await pg.connect();
    try {
      await pg.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'auth-service-listener'`,
      );
    } finally {
      await pg.end();
    }
    // While it is down (or not yet proven again), nothing is served from memory.
    const deadline = Date.now() + 1_000;
    while (t.deps.userStateListener!.healthy && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(t.deps.userStateListener!.healthy).toBe(false);
    await t.sql('UPDATE users SET is_active = false WHERE id = $1', [u.user.id]);
    await me(t.app, u.token).expect(401);
    // It reconnects by itself, and caches again.
    await listening(t);
    await listening(other);
    const again = await cachedOnBoth();
    expect(again.user.id).not.toBe(u.user.id);
  });
});
