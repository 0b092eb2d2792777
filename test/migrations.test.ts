import { Client } from 'pg';
import pino from 'pino';
import { createDatabase } from '../src/db/database';
import { buildUmzug, migrate, pendingMigrations } from '../src/db/migrator';
import { TEST_PG_URL, databaseUrl } from './support/services';

const silent = pino({ level: 'silent' });
let name: string;
let admin: Client;

beforeAll(async () => {
  admin = new Client({ connectionString: TEST_PG_URL });
  await admin.connect();
});
afterAll(async () => {
  await admin.end();
});
beforeEach(async () => {
  name = `auth_mig_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  await admin.query(`CREATE DATABASE ${name}`);
});
afterEach(async () => {
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

async function tables(db: ReturnType<typeof createDatabase>): Promise<string[]> {
  const [rows] = await db.sequelize.query(
    `SELECT tablename::text AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
  );
  return (rows as { t: string }[]).map((r) => r.t);
}

test('when migrating an empty database up, then down all the way, then up again, each step is clean', async () => {
  const db = createDatabase({ url: databaseUrl(name), logger: silent });
  try {
    const all = (await (await buildUmzug(db.sequelize)).pending()).map((m) => m.name);
    // The start-up check (no Umzug, no table yet) agrees with Umzug.
    expect(await pendingMigrations(db.sequelize)).toEqual(all);
    expect(await migrate({ sequelize: db.sequelize, lockUrl: databaseUrl(name) })).toEqual(all);
    expect(await pendingMigrations(db.sequelize)).toEqual([]);
    // Nothing pending: a second start applies nothing.
    expect(await migrate({ sequelize: db.sequelize, lockUrl: databaseUrl(name) })).toEqual([]);
    expect(await tables(db)).toEqual(
      expect.arrayContaining(['users', 'oauth_tokens', 'app_config']),
    );
    const down = await migrate({
      sequelize: db.sequelize,
      lockUrl: databaseUrl(name),
      direction: 'down',
      steps: 0,
    });
    expect(down).toEqual([...all].reverse());
    expect(await pendingMigrations(db.sequelize)).toEqual(all);
    expect(await tables(db)).toEqual(['schema_migrations']);
    const [types] = await db.sequelize.query(
      `SELECT 1 FROM pg_type WHERE typname = 'oauth_provider'`,
    );
    expect(types).toHaveLength(0);
    expect(await migrate({ sequelize: db.sequelize, lockUrl: databaseUrl(name) })).toEqual(all);
  } finally {
    await db.close();
  }
});

test('when several replicas migrate at once, then each migration runs exactly once', async () => {
  const dbs = Array.from({ length: 4 }, () =>
    createDatabase({ url: databaseUrl(name), logger: silent }),
  );
  try {
    const results = await Promise.all(
      dbs.map((db) => migrate({ sequelize: db.sequelize, lockUrl: databaseUrl(name) })),
    );
    const applied = results.flat();
    expect(new Set(applied).size).toBe(applied.length);
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);
  } finally {
    await Promise.all(dbs.map((db) => db.close()));
  }
});

test('when the seed tables exist, then they enforce the contract constraints', async () => {
  const db = createDatabase({ url: databaseUrl(name), logger: silent });
  try {
    await migrate({ sequelize: db.sequelize, lockUrl: databaseUrl(name) });
    const q = (sql: string) => db.sequelize.query(sql);
    await q(`INSERT INTO users (email, hashed_password) VALUES ('a@example.com', 'h')`);
    await expect(
      q(`INSERT INTO users (email, hashed_password) VALUES ('A@example.com', 'h')`),
    ).rejects.toThrow();
    await expect(
      q(`INSERT INTO users (email, hashed_password) VALUES ('a@example.com', 'h')`),
    ).rejects.toThrow();
    await q(
      `INSERT INTO oauth_tokens (user_id, provider, access_token, access_token_secret)
       SELECT id, 'discogs', 'x', 'y' FROM users`,
    );
    await expect(
      q(`INSERT INTO oauth_tokens (user_id, provider, access_token, access_token_secret)
         SELECT id, 'discogs', 'x', 'y' FROM users`),
    ).rejects.toThrow();
    await q(`DELETE FROM users`);
    const [rows] = await q(`SELECT count(*)::int AS n FROM oauth_tokens`);
    expect((rows as { n: number }[])[0]!.n).toBe(0);
  } finally {
    await db.close();
  }
});
