import { loadConfig } from '../src/config';
import { problemsOf } from './support/config';

const SECRET = 'x'.repeat(40);
const KEY = Buffer.alloc(32, 7).toString('base64');

test('when nothing is set outside production, then the defaults hold and the database is embedded', () => {
  const c = loadConfig({});
  expect(c).toMatchObject({
    port: 8004,
    healthPort: 8005,
    host: '0.0.0.0',
    jwtExpireMinutes: 30,
    bcryptCost: 12,
    refreshTokenExpireDays: 14,
    refreshTokenReuseGraceSeconds: 10,
    migrateOnStart: true,
    redisUrl: null,
    jwtSecret: null,
    corsOrigins: [],
  });
  expect(c.database.kind).toBe('embedded');
  expect(Object.isFrozen(c)).toBe(true);
});

test('when POSTGRES_* parts are given, then they build the URL with the password encoded', () => {
  const c = loadConfig({
    POSTGRES_ADDRESS: 'db.internal:5433',
    POSTGRES_USERNAME: 'auth',
    POSTGRES_PASSWORD: 'p@ss/word',
    POSTGRES_DATABASE: 'authdb',
  });
  expect(c.database).toEqual({
    kind: 'url',
    url: 'postgres://auth:p%40ss%2Fword@db.internal:5433/authdb',
  });
});

test('when production lacks its secrets and has a weak bcrypt cost, then one error names every bad variable', () => {
  const problems = problemsOf({
    NODE_ENV: 'production',
    BCRYPT_COST: '8',
    JWT_ALGORITHM: 'RS256',
    PORT: 'abc',
  });
  expect(problems.join('\n')).toMatch(/JWT_SECRET_KEY/);
  expect(problems.join('\n')).toMatch(/ENCRYPTION_MASTER_KEY/);
  expect(problems.join('\n')).toMatch(/BCRYPT_COST/);
  expect(problems.join('\n')).toMatch(/JWT_ALGORITHM/);
  expect(problems.join('\n')).toMatch(/PORT/);
  expect(problems).toHaveLength(5);
});

test('when a secret is invalid, then the message names it without echoing the value', () => {
  const shortSecret = 'short-secret-value';
  const badUrl = 'postgres//user:hunter2-password@host/db';
  let message = '';
  try {
    loadConfig({
      JWT_SECRET_KEY: shortSecret,
      DATABASE_URL: badUrl,
      ENCRYPTION_MASTER_KEY: 'not-a-key',
    });
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message).toMatch(/JWT_SECRET_KEY/);
  expect(message).toMatch(/DATABASE_URL/);
  expect(message).toMatch(/ENCRYPTION_MASTER_KEY/);
  expect(message).not.toContain(shortSecret);
  expect(message).not.toContain('hunter2');
});

test('when production has everything, then it starts with those values', () => {
  const c = loadConfig({
    NODE_ENV: 'production',
    JWT_SECRET_KEY: SECRET,
    ENCRYPTION_MASTER_KEY: KEY,
    DATABASE_URL: 'postgres://u@h:5432/d',
    BCRYPT_COST: '10',
  });
  expect(c.production).toBe(true);
  expect(c.jwtSecret?.toString()).toBe(SECRET);
  expect(c.encryptionMasterKey).toEqual(Buffer.alloc(32, 7));
});

test('when JWT_ALGORITHM is HS256, then it is accepted; any other value is refused', () => {
  expect(problemsOf({ JWT_ALGORITHM: 'HS256' })).toEqual([]);
  for (const alg of ['none', 'HS512', 'RS256'])
    expect(problemsOf({ JWT_ALGORITHM: alg })).toHaveLength(1);
});

test.each([
  ['false', false],
  ['FALSE', false],
  ['True', true],
  ['2', 2],
  ['loopback', 'loopback'],
  ['10.0.0.0/8, 192.168.1.7, ::1, fd00::/8', '10.0.0.0/8,192.168.1.7,::1,fd00::/8'],
])('when TRUST_PROXY is %s, then it is accepted', (value, expected) => {
  expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
});

test.each(['yes', '10.0.0.0/33', '300.1.1.1', 'loopback,nonsense'])(
  'when TRUST_PROXY is %s, then start-up is refused naming it',
  (value) => {
    const problems = problemsOf({ TRUST_PROXY: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^TRUST_PROXY/);
  },
);
