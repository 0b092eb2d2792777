import { describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { Writable } from 'node:stream';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { createDeps } from '../src/deps';
import { GOOD_PASSWORD, TEST_JWT_SECRET, register, useTestApp } from './support/test-app';

/** No queue behind one hash in flight, and one registration an hour. */
const t = useTestApp({
  HASH_CONCURRENCY: '1',
  HASH_QUEUE_LIMIT: '0',
  RATE_LIMIT_REGISTER_PER_HOUR: '1',
});

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn' };
const QUIET = new Set(['trace', 'debug', 'info', 'warn', ...Object.values(LEVELS)]);

/** Every log line written while serving the request with this id. */
function linesOf(requestId: string): { raw: string; level: string }[] {
  return t.logs
    .filter((l) => l.includes(`"${requestId}"`))
    .map((raw) => ({ raw, level: String((JSON.parse(raw) as { level: unknown }).level) }));
}

let n = 0;
async function refused(req: request.Test, status: number): Promise<string> {
  const id = `quiet-${process.pid}-${n++}`;
  await req.set('X-Request-Id', id).expect(status);
  return id;
}

describe('expected refusals are logged quietly', () => {
  test.each<[string, () => request.Test, number]>([
    ['a 401 (no token)', () => request(t.app).get('/api/v1/auth/me'), 401],
    [
      'a 401 (wrong password)',
      () =>
        request(t.app)
          .post('/api/v1/auth/token')
          .send({ email: 'nobody@example.com', password: 'wrong-password' }),
      401,
    ],
    [
      'a 422',
      () => request(t.app).post('/api/v1/auth/register').send({ email: 'x', password: 'y' }),
      422,
    ],
    ['a 404', () => request(t.app).get('/api/v1/nothing-here'), 404],
    ['a 405', () => request(t.app).delete('/api/v1/auth/token'), 405],
    [
      'a 400',
      () =>
        request(t.app)
          .post('/api/v1/auth/register')
          .set('Content-Type', 'application/json')
          .send('{"email":'),
      400,
    ],
  ])(
    'when a request gets %s, then it is one short line at warn or below without a stack',
    async (_what, make, status) => {
      const id = await refused(make(), status);
      const lines = linesOf(id);
      expect(lines).toHaveLength(1);
      expect(QUIET.has(lines[0]!.level)).toBe(true);
      expect(lines[0]!.raw).not.toMatch(/stack|\\n\s+at /);
      expect(lines[0]!.raw.length).toBeLessThan(500);
    },
  );

  test('when registrations are rate-limited (429), then one short line at warn or below without a stack', async () => {
    await register(t.app);
    const id = await refused(
      request(t.app)
        .post('/api/v1/auth/register')
        .send({ email: 'another@example.com', password: GOOD_PASSWORD }),
      429,
    );
    const lines = linesOf(id);
    expect(lines).toHaveLength(1);
    expect(QUIET.has(lines[0]!.level)).toBe(true);
    expect(lines[0]!.raw).not.toMatch(/stack/);
  });

  test('when password hashing is at capacity (503), then one short warn line without a stack that names the code', async () => {
    let release!: () => void;
    const held = t.deps.passwords.capacity.run(() => new Promise<void>((r) => (release = r)));
    try {
      const id = await refused(
        request(t.app)
          .post('/api/v1/auth/token')
          .send({ email: 'busy@example.com', password: 'wrong-password' }),
        503,
      );
      const lines = linesOf(id);
      expect(lines).toHaveLength(1);
      expect(['warn', '40']).toContain(lines[0]!.level);
      expect(lines[0]!.raw).not.toMatch(/stack/);
      expect(lines[0]!.raw).toContain('hash_capacity_exceeded');
      expect(lines[0]!.raw.length).toBeLessThan(500);
    } finally {
      release();
      await held;
    }
  });

  test('when the database is unreachable (503), then one short warn line without a stack', async () => {
    const logs: string[] = [];
    const deps = await createDeps(
      loadConfig({
        NODE_ENV: 'test',
        DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
        JWT_SECRET_KEY: TEST_JWT_SECRET,
        ENCRYPTION_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
        BCRYPT_COST: '4',
        LOG_LEVEL: 'info',
        DATA_DIR: t.deps.config.dataDir,
      }),
      {
        logDestination: new Writable({
          write(chunk: Buffer, _enc, cb) {
            logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
            cb();
          },
        }),
      },
    );
    try {
      await request(createApp(deps))
        .post('/api/v1/auth/register')
        .set('X-Request-Id', 'quiet-db-down')
        .send({ email: 'down@example.com', password: GOOD_PASSWORD })
        .expect(503);
      const lines = logs.filter((l) => l.includes('"quiet-db-down"'));
      expect(lines).toHaveLength(1);
      const line = JSON.parse(lines[0]!) as { level: string };
      expect(line.level).toBe('warn');
      expect(lines[0]).not.toMatch(/stack/);
      expect(lines[0]!.length).toBeLessThan(600);
    } finally {
      await deps.close();
    }
  });
});
