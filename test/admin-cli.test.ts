import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Client } from 'pg';
import request from 'supertest';
import { appConfigPurpose } from '../src/crypto/purposes';
import { SecretBox, keyId } from '../src/crypto/secret-box';
import { PROJECT_ROOT } from '../src/paths';
import { TEST_PG_URL, databaseUrl } from './support/services';
import {
  GOOD_PASSWORD,
  TEST_JWT_SECRET,
  login,
  register,
  startTestApp,
  uniqueEmail,
  type TestApp,
} from './support/test-app';

/**
 * The admin CLI as operators run it: the compiled script in a child process, configured by
 * environment variables only, with stdin that is not a terminal.
 */

let t: TestApp;
let buildDir: string;
let adminJs: string;
let dataDir: string;

beforeAll(async () => {
  t = await startTestApp({ RATE_LIMIT_ENABLED: 'false' });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-cli-'));
  // A private output directory, so a concurrent `npm run build` is not disturbed.
  buildDir = path.join(PROJECT_ROOT, 'dist', `.admin-cli-test-${randomBytes(4).toString('hex')}`);
  const tsc = spawnSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', buildDir],
    { cwd: PROJECT_ROOT, encoding: 'utf8' },
  );
  adminJs = path.join(buildDir, 'scripts', 'admin.js');
  // Type errors elsewhere in the tree still emit JavaScript; only a missing output is fatal.
  if (!fs.existsSync(adminJs)) throw new Error(`build failed:\n${tsc.stdout}\n${tsc.stderr}`);
}, 180_000);

afterAll(async () => {
  if (buildDir) fs.rmSync(buildDir, { recursive: true, force: true });
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  await t.close();
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    DATABASE_URL: t.dbUrl,
    // The same key as the test app, so values the CLI seals open in the service.
    ENCRYPTION_MASTER_KEY: t.deps.encryptionKey.toString('hex'),
    JWT_SECRET_KEY: TEST_JWT_SECRET,
    BCRYPT_COST: '4',
    DATA_DIR: dataDir,
  };
}

function run(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [adminJs, ...args], {
      // Outside the project, so no .env file is picked up.
      cwd: dataDir,
      env: { ...baseEnv(), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

async function userRow(email: string) {
  const [row] = await t.sql(
    'SELECT id, is_admin, is_active, hashed_password FROM users WHERE email = $1',
    [email],
  );
  return row;
}

describe('usage', () => {
  test('when asked for help, then the usage goes to stdout and the exit code is 0', async () => {
    const r = await run(['help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('create-admin --email');
    expect(r.stdout).toContain('discogs-setup');
    expect(r.stdout).toContain('reencrypt-secrets');
  });

  test('when no command is given, then the usage goes to stderr and the exit code is 64', async () => {
    const r = await run([]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('usage:');
  });

  test('when the command is unknown, then 64', async () => {
    const r = await run(['make-coffee']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('unknown command');
  });

  test('when create-admin has no --email, then 64', async () => {
    const r = await run(['create-admin']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('--email');
  });

  test('when create-admin has an unknown option, then 64', async () => {
    const r = await run(['create-admin', '--email', uniqueEmail(), '--force']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('unknown option --force');
  });
});

describe('create-admin', () => {
  test.each([
    ['--password value', ['--password', 'Hunter2-on-argv']],
    ['--password=value', ['--password=Hunter2-on-argv']],
    ['-p value', ['-p', 'Hunter2-on-argv']],
  ])(
    'when a password is passed as %s, then it is refused with 64, not echoed, and no account is made',
    async (_form, extra) => {
      const email = uniqueEmail('argv');
      const r = await run(['create-admin', '--email', email, ...extra], {
        ADMIN_PASSWORD: GOOD_PASSWORD,
      });
      expect(r.code).toBe(64);
      expect(r.stderr).toContain('ADMIN_PASSWORD');
      expect(r.stdout + r.stderr).not.toContain('Hunter2-on-argv');
      expect(await userRow(email)).toBeUndefined();
    },
  );

  test('when the email is invalid, then 65 with a clear message', async () => {
    const r = await run(['create-admin', '--email', 'not-an-email'], {
      ADMIN_PASSWORD: GOOD_PASSWORD,
    });
    expect(r.code).toBe(65);
    expect(r.stderr).toContain('email must be a valid email address');
  });

  test('when the password breaks the register rules, then 65, the rule is named and no account is made', async () => {
    const email = uniqueEmail('weak');
    const short = await run(['create-admin', '--email', email], { ADMIN_PASSWORD: 'short' });
    expect(short.code).toBe(65);
    expect(short.stderr).toContain('password must be at least 8 characters');
    const long = await run(['create-admin', '--email', email], { ADMIN_PASSWORD: '€'.repeat(25) });
    expect(long.code).toBe(65);
    expect(long.stderr).toContain('at most 72 bytes');
    expect(await userRow(email)).toBeUndefined();
  });

  test('when no ADMIN_PASSWORD is set and stdin is not a terminal, then 64 saying how to give one', async () => {
    const email = uniqueEmail('nopw');
    const r = await run(['create-admin', '--email', email]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('set ADMIN_PASSWORD');
    expect(await userRow(email)).toBeUndefined();
  });

  test('when the account is new, then it is created as an active admin that can log in and use the admin API, audited as cli', async () => {
    const email = uniqueEmail('Boot').toUpperCase();
    const r = await run(['create-admin', '--email', email], { ADMIN_PASSWORD: GOOD_PASSWORD });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`created administrator ${email.toLowerCase()}`);
    expect(r.stdout + r.stderr).not.toContain(GOOD_PASSWORD);
    const row = await userRow(email.toLowerCase());
    expect(row).toMatchObject({ is_admin: true, is_active: true });
    expect(row!.hashed_password).toMatch(/^\$2[aby]\$04\$/);

    const { access_token } = await login(t.app, email, GOOD_PASSWORD);
    await request(t.app)
      .get('/api/v1/admin/users')
      .set('Authorization', `Bearer ${access_token}`)
      .expect(200);

    const audit = await t.sql('SELECT * FROM admin_audit_log WHERE target_id = $1', [row!.id]);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor_user_id: null,
      actor_label: 'cli',
      action: 'admin.create',
      target_type: 'user',
      request_id: null,
      client_ip: null,
      details: { email: email.toLowerCase(), created: true },
    });
  });

  test('when the account exists, then it is promoted and keeps its password; ADMIN_PASSWORD is not used', async () => {
    const { email, user } = await register(t.app);
    const r = await run(['create-admin', '--email', email], {
      ADMIN_PASSWORD: 'another-password-1',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('is now an active administrator');
    expect(r.stderr).toContain('keeps its password');
    expect(await userRow(email)).toMatchObject({ is_admin: true });
    await login(t.app, email, GOOD_PASSWORD);
    await login(t.app, email, 'another-password-1', 401);
    const [audit] = await t.sql('SELECT details FROM admin_audit_log WHERE target_id = $1', [
      user.id,
    ]);
    expect(audit!.details).toEqual({
      email,
      created: false,
      changes: { is_admin: { from: false, to: true }, is_active: { from: true, to: true } },
    });
  });

  test('when the account exists, then no password is needed at all, and a deactivated account is reactivated', async () => {
    const { email } = await register(t.app);
    await t.sql('UPDATE users SET is_active = false WHERE email = $1', [email]);
    const r = await run(['create-admin', '--email', email]);
    expect(r.code).toBe(0);
    expect(await userRow(email)).toMatchObject({ is_admin: true, is_active: true });
  });

  test('when the account is already an active admin, then it says so, exits 0 and audits nothing', async () => {
    const { email, user } = await register(t.app);
    await t.sql('UPDATE users SET is_admin = true WHERE id = $1', [user.id]);
    const r = await run(['create-admin', '--email', email]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('already an active administrator');
    expect(
      await t.sql('SELECT 1 FROM admin_audit_log WHERE target_id = $1', [user.id]),
    ).toHaveLength(0);
  });
});

describe('Discogs credentials', () => {
  const KEY = `CliKey${randomBytes(6).toString('hex')}AbCd`;
  const SECRET = `CliSecret${randomBytes(10).toString('hex')}`;

  test('when discogs-setup runs with the env variables, then the service sees them, the secret is sealed, and it is audited as cli', async () => {
    const r = await run(['discogs-setup'], {
      DISCOGS_CONSUMER_KEY: KEY,
      DISCOGS_CONSUMER_SECRET: SECRET,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('****AbCd');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(r.stdout + r.stderr).not.toContain(KEY);

    expect(await t.deps.discogsConfig.credentials()).toEqual({
      consumerKey: KEY,
      consumerSecret: SECRET,
    });
    const [row] = await t.sql(`SELECT value FROM app_config WHERE key = 'discogs_consumer_secret'`);
    expect(row!.value).toMatch(/^v1:/);
    expect(row!.value).not.toContain(SECRET);
    const [audit] = await t.sql(
      `SELECT actor_label, actor_user_id, details::text AS d FROM admin_audit_log
        WHERE action = 'discogs_config.update' ORDER BY id DESC LIMIT 1`,
    );
    expect(audit).toMatchObject({ actor_label: 'cli', actor_user_id: null });
    expect(audit!.d).not.toContain(SECRET);
  });

  test('when discogs-show runs, then the key is masked and the secret is never shown', async () => {
    const r = await run(['discogs-show']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('configured:      yes');
    expect(r.stdout).toContain('****AbCd');
    expect(r.stdout).toContain('set (never shown)');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    const json = await run(['discogs-show', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      configured: true,
      consumer_key: '****AbCd',
      consumer_secret_set: true,
      updated_at: expect.any(String),
    });
  });

  test('when the key has a space, then 65 and nothing changes', async () => {
    const before = await t.sql('SELECT key, value FROM app_config ORDER BY key');
    const r = await run(['discogs-setup'], {
      DISCOGS_CONSUMER_KEY: 'has space',
      DISCOGS_CONSUMER_SECRET: 'abc',
    });
    expect(r.code).toBe(65);
    expect(r.stderr).toContain('consumer_key must be 1 to 200 printable ASCII characters');
    expect(await t.sql('SELECT key, value FROM app_config ORDER BY key')).toEqual(before);
  });

  test('when the secret is neither in the environment nor promptable, then 64 naming the variable', async () => {
    const r = await run(['discogs-setup'], { DISCOGS_CONSUMER_KEY: KEY });
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('DISCOGS_CONSUMER_SECRET');
  });
});

describe('reencrypt-secrets', () => {
  const SECRET = `CliRotated${randomBytes(10).toString('hex')}`;
  const oldKey = randomBytes(32);

  /** The Discogs secret as an instance still on the old key would have stored it. */
  async function storeUnderOldKey() {
    const sealed = new SecretBox(oldKey).seal(SECRET, appConfigPurpose('discogs_consumer_secret'));
    await t.sql(
      `INSERT INTO app_config (key, value) VALUES ('discogs_consumer_key', 'CliRotationKey1'),
                                                  ('discogs_consumer_secret', $1)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
      [sealed],
    );
  }

  test('when the old key is not given, then exit 1 naming ENCRYPTION_PREVIOUS_KEYS, and nothing changes', async () => {
    await storeUnderOldKey();
    const [before] = await t.sql(
      `SELECT value FROM app_config WHERE key = 'discogs_consumer_secret'`,
    );
    const r = await run(['reencrypt-secrets']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ENCRYPTION_PREVIOUS_KEYS');
    expect(r.stderr).toContain(keyId(oldKey));
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    const [after] = await t.sql(
      `SELECT value FROM app_config WHERE key = 'discogs_consumer_secret'`,
    );
    expect(after).toEqual(before);
  });

  test('when the old key is in ENCRYPTION_PREVIOUS_KEYS, then the secret is re-encrypted under the current key and the counts are printed', async () => {
    await storeUnderOldKey();
    const r = await run(['reencrypt-secrets'], {
      ENCRYPTION_PREVIOUS_KEYS: oldKey.toString('base64'),
    });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `re-encrypted 1 stored secret(s) under key id ${t.deps.secretBox.kid}`,
    );
    expect(r.stdout).toMatch(/app_config\s+1 re-encrypted, 0 already current/);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    const [row] = await t.sql(`SELECT value FROM app_config WHERE key = 'discogs_consumer_secret'`);
    expect((row!.value as string).split(':')[1]).toBe(t.deps.secretBox.kid);
    expect((await t.deps.discogsConfig.credentials())?.consumerSecret).toBe(SECRET);

    const again = await run(['reencrypt-secrets']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/app_config\s+0 re-encrypted, 1 already current/);
  });

  test('when an ENCRYPTION_PREVIOUS_KEYS entry is bad, then exit 1 naming its position, not its value', async () => {
    const r = await run(['reencrypt-secrets'], {
      ENCRYPTION_PREVIOUS_KEYS: `${oldKey.toString('hex')},not-a-real-key-value`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ENCRYPTION_PREVIOUS_KEYS entry 2');
    expect(r.stderr).not.toContain('not-a-real-key-value');
    expect(r.stderr).not.toContain(oldKey.toString('hex'));
  });
});

describe('database', () => {
  test('when the database has pending migrations, then the CLI applies them first', async () => {
    const name = `auth_cli_${randomBytes(5).toString('hex')}`;
    const admin = new Client({ connectionString: TEST_PG_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    try {
      const r = await run(['discogs-show', '--json'], { DATABASE_URL: databaseUrl(name) });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ configured: false });
      const db = new Client({ connectionString: databaseUrl(name) });
      await db.connect();
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM schema_migrations`);
      await db.end();
      expect(rows[0].n).toBeGreaterThan(0);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  test('when the database is unreachable, then exit 1 with a message', async () => {
    const r = await run(['discogs-show'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/failed: .+/);
  });

  test('when the configuration is invalid, then exit 1 naming the variable without its value', async () => {
    const r = await run(['discogs-show'], { ENCRYPTION_MASTER_KEY: 'too-short-key-value' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ENCRYPTION_MASTER_KEY must be 32 bytes');
    expect(r.stderr).not.toContain('too-short-key-value');
  });
});
