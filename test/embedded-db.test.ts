import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Client } from 'pg';
import { QueryTypes, Sequelize } from 'sequelize';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded';

// A fresh data dir runs initdb inside WASM: 10-30 s depending on the machine.
jest.setTimeout(180_000);

interface PoolStats {
  size: number;
  available: number;
  using: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('embedded PostgreSQL (PGlite over pglite-socket)', () => {
  let tmpRoot: string;
  let dataDir: string;
  let lockPath: string;
  let emb: EmbeddedPostgres | undefined;
  let sequelize: Sequelize | undefined;
  const logLines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) },
  );

  const connectSequelize = (url: string) =>
    new Sequelize(url, {
      dialect: 'postgres',
      logging: false,
      pool: { max: 2, min: 0, idle: 10_000, acquire: 20_000 },
    });
  const poolOf = (s: Sequelize) => (s.connectionManager as unknown as { pool: PoolStats }).pool;

  beforeAll(async () => {
    tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-embedded-'));
    dataDir = path.join(tmpRoot, 'nested', 'data'); // does not exist yet
    lockPath = path.join(dataDir, 'embedded-postgres.lock');
    emb = await startEmbeddedPostgres({ dataDir, logger });
  });

  afterAll(async () => {
    // Stop the server first: it ends every connection, so the pool drains even after a failure.
    await emb?.close();
    await sequelize?.close();
    fs.rmSync(tmpRoot, { recursive: true, force: true });
  });

  test('listens on 127.0.0.1, ephemeral port, above the pool size; creates the data dir; logs one line', () => {
    const url = new URL(emb!.url);
    expect(url.protocol).toBe('postgres:');
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).toBeGreaterThan(0);
    expect(url.pathname).toBe('/postgres');
    expect(url.password).toBe('');
    expect(emb!.maxConnections).toBeGreaterThan(2);

    expect(fs.existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(lockPath, 'utf8'))).toMatchObject({ pid: process.pid });

    const info = logLines.filter((l) => l.level === 30);
    expect(info).toHaveLength(1);
    expect(info[0]!.msg).toBe(`running on an embedded PostgreSQL (PGlite) in ${dataDir}`);
    expect(JSON.stringify(logLines)).not.toMatch(/password|secret/i);
  });

  test('a second opener of the same data dir fails with a clear error', async () => {
    await expect(startEmbeddedPostgres({ dataDir, logger })).rejects.toThrow(
      /data directory .* is in use by this process .*delete .*embedded-postgres\.lock/,
    );
    // The running instance is unaffected and still holds the lock.
    expect(JSON.parse(fs.readFileSync(lockPath, 'utf8'))).toMatchObject({ pid: process.pid });
    const client = new Client({ connectionString: emb!.url });
    await client.connect();
    await expect(client.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    await client.end();
  });

  test('schema features work over the wire with a plain pg client', async () => {
    const client = new Client({ connectionString: emb!.url });
    await client.connect();
    try {
      // One simple query with many statements.
      const results = await client.query(`
        CREATE TYPE account_status AS ENUM ('active', 'disabled');
        CREATE TABLE accounts (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          email text NOT NULL,
          status account_status NOT NULL DEFAULT 'active',
          logins integer NOT NULL DEFAULT 0 CHECK (logins >= 0),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz
        );
        CREATE UNIQUE INDEX accounts_email_lower ON accounts (lower(email));
        CREATE TABLE sessions (
          id serial PRIMARY KEY,
          account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
        );
        CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
        CREATE TRIGGER accounts_touch BEFORE INSERT OR UPDATE ON accounts
          FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
        SELECT 'done' AS marker;`);
      expect(Array.isArray(results)).toBe(true);
      const all = results as unknown as Array<{ rows: unknown[] }>;
      expect(all[all.length - 1]!.rows).toEqual([{ marker: 'done' }]);

      const { rows } = await client.query(
        'INSERT INTO accounts (email) VALUES ($1) RETURNING id, status, created_at, updated_at',
        ['Alice@Example.com'],
      );
      const alice = rows[0] as { id: string; status: string; created_at: Date; updated_at: Date };
      expect(alice.id).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect(alice.status).toBe('active');
      expect(alice.created_at).toBeInstanceOf(Date);
      expect(alice.updated_at).toBeInstanceOf(Date); // set by the plpgsql trigger

      await expect(
        client.query('INSERT INTO accounts (email) VALUES ($1)', ['alice@example.COM']),
      ).rejects.toMatchObject({
        code: '23505',
        constraint: 'accounts_email_lower',
      });
      await expect(
        client.query('INSERT INTO accounts (email, logins) VALUES ($1, -1)', ['bob@example.com']),
      ).rejects.toMatchObject({ code: '23514' });
      await expect(
        client.query(`INSERT INTO accounts (email, status) VALUES ($1, 'deleted')`, [
          'carol@example.com',
        ]),
      ).rejects.toMatchObject({ code: '22P02' });

      const victim = await client.query<{ id: string }>(
        'INSERT INTO accounts (email) VALUES ($1) RETURNING id',
        ['victim@example.com'],
      );
      const victimId = victim.rows[0]!.id;
      await client.query('INSERT INTO sessions (account_id) VALUES ($1), ($1)', [victimId]);
      await client.query('DELETE FROM accounts WHERE id = $1', [victimId]);
      const left = await client.query(
        'SELECT count(*)::int AS n FROM sessions WHERE account_id = $1',
        [victimId],
      );
      expect(left.rows).toEqual([{ n: 0 }]);

      // LISTEN/NOTIFY works within one connection (see the report for cross-connection limits).
      const payloads: string[] = [];
      client.on('notification', (n) => payloads.push(n.payload ?? ''));
      await client.query('LISTEN account_events');
      await client.query(`SELECT pg_notify('account_events', 'created')`);
      await sleep(100);
      expect(payloads).toEqual(['created']);
      await client.query('UNLISTEN account_events');
    } finally {
      await client.end();
    }
  });

  test('Sequelize pool (max 2): a query on the second connection waits for the open transaction, then completes', async () => {
    sequelize = connectSequelize(emb!.url);
    const s = sequelize;
    await s.query(`INSERT INTO accounts (email) VALUES ('first@example.com')`);
    // Open both pool connections up front (a connection's startup would also queue behind
    // the transaction, which is not what this test is about).
    const held = [
      await s.connectionManager.getConnection({ type: 'write' }),
      await s.connectionManager.getConnection({ type: 'write' }),
    ];
    expect(held[0]).not.toBe(held[1]);
    held.forEach((c) => s.connectionManager.releaseConnection(c));
    expect([poolOf(s).size, poolOf(s).available]).toEqual([2, 2]);

    const tx = await s.transaction();
    try {
      await s.query(
        `INSERT INTO accounts (email, status) VALUES ('in-tx@example.com', 'disabled')`,
        {
          transaction: tx,
        },
      );

      let outsideDone = false;
      const outside = s
        .query<{ n: number }>(
          `SELECT count(*)::int AS n FROM accounts WHERE email = 'in-tx@example.com'`,
          {
            type: QueryTypes.SELECT,
          },
        )
        .finally(() => {
          outsideDone = true;
        });

      await sleep(300);
      expect(outsideDone).toBe(false); // blocked behind the single backend's open transaction
      const pool = poolOf(s);
      expect([pool.size, pool.using]).toEqual([2, 2]); // two distinct pool connections in use

      // The transaction's own connection keeps working meanwhile (no deadlock).
      const inside = await s.query<{ n: number }>(`SELECT count(*)::int AS n FROM accounts`, {
        type: QueryTypes.SELECT,
        transaction: tx,
      });
      expect(inside[0]!.n).toBe(3); // alice, first, in-tx
      expect(outsideDone).toBe(false);

      await tx.commit();
      await expect(outside).resolves.toEqual([{ n: 1 }]); // ran after the commit and sees it
    } finally {
      // A failed assertion must not leave the single backend stuck in this transaction.
      if (!(tx as unknown as { finished?: string }).finished) await tx.rollback();
    }
  });

  test('concurrent parameterised queries on two pool connections never get mixed up', async () => {
    const s = sequelize!;
    // A large bind parameter arrives in several TCP chunks: without batch pinning the other
    // connection's Parse would slip between our Parse and Bind (electric-sql/pglite#1046).
    const big = 'x'.repeat(300_000);
    const jobs: Array<Promise<boolean>> = [];
    for (let i = 0; i < 30; i++) {
      jobs.push(
        s
          .query<{ n: number; i: number }>('SELECT length($1::text) AS n, $2::int AS i', {
            bind: [big, i],
            type: QueryTypes.SELECT,
          })
          .then((r) => r[0]!.n === big.length && r[0]!.i === i),
      );
      jobs.push(
        s
          .query<{ t: string }>('SELECT $1::text AS t', {
            bind: [`small-${i}`],
            type: QueryTypes.SELECT,
          })
          .then((r) => r[0]!.t === `small-${i}`),
      );
    }
    const outcomes = await Promise.all(jobs);
    expect(outcomes.filter((ok) => !ok)).toHaveLength(0);
    expect(outcomes).toHaveLength(60);
  });

  test('data survives stop/start in the same directory; stale and foreign locks are handled', async () => {
    await sequelize!.close();
    sequelize = undefined;
    await emb!.close();
    emb = undefined;
    expect(fs.existsSync(lockPath)).toBe(false);

    // A lock held by another live process on this host: refuse.
    fs.writeFileSync(
      lockPath,
      JSON.stringify({ pid: process.ppid, hostname: os.hostname(), startedAt: 'x' }),
    );
    await expect(startEmbeddedPostgres({ dataDir, logger })).rejects.toThrow(
      new RegExp(`in use by process ${process.ppid}\\b`),
    );
    expect(fs.existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION'))).toBe(true);

    // A lock left behind by a dead process: taken over.
    const dead = spawnSync(process.execPath, ['-e', '']);
    expect(dead.pid).toBeGreaterThan(0);
    fs.writeFileSync(
      lockPath,
      JSON.stringify({ pid: dead.pid, hostname: os.hostname(), startedAt: 'x' }),
    );

    emb = await startEmbeddedPostgres({ dataDir, logger });
    expect(JSON.parse(fs.readFileSync(lockPath, 'utf8'))).toMatchObject({ pid: process.pid });

    sequelize = connectSequelize(emb.url);
    const rows = await sequelize.query<{ email: string; status: string; id: string }>(
      'SELECT id, email, status FROM accounts ORDER BY email',
      { type: QueryTypes.SELECT },
    );
    expect(rows.map((r) => [r.email, r.status])).toEqual([
      ['Alice@Example.com', 'active'],
      ['first@example.com', 'active'],
      ['in-tx@example.com', 'disabled'],
    ]);
    expect(new Set(rows.map((r) => r.id)).size).toBe(3);
  });
});
