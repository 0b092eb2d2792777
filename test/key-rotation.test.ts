import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { CLI_ACTOR } from '../src/admin/audit-log.repository';
import { loadConfig } from '../src/config';
import { problemsOf } from './support/config';
import { appConfigPurpose, oauthTokenPurpose } from '../src/crypto/purposes';
import { SecretBox, keyId } from '../src/crypto/secret-box';
import { AppError } from '../src/errors';
import { toAppError } from '../src/http/problem';
import {
  requestTokenOf,
  startDiscogsStandIn,
  type DiscogsStandIn,
} from './support/discogs-stand-in';
import { TOTP, Secret } from 'otpauth';
import { signedInUser, startTestApp, type TestApp } from './support/test-app';

/**
 * Rotating ENCRYPTION_MASTER_KEY: several app instances over one database, each started with
 * a different key configuration, as an operator would roll them out.
 */

describe('ENCRYPTION_PREVIOUS_KEYS', () => {
  test('when it is unset, then there are no previous keys', () => {
    expect(loadConfig({}).encryptionPreviousKeys).toEqual([]);
  });

  test('when it lists hex and base64 keys with spaces and a stray comma, then each is decoded in order', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const c = loadConfig({
      ENCRYPTION_PREVIOUS_KEYS: ` ${a.toString('hex')} ,${b.toString('base64')},`,
    });
    expect(c.encryptionPreviousKeys).toEqual([a, b]);
  });

  test('when entries are bad, then one message names their positions without echoing any value, alongside other problems', () => {
    const good = randomBytes(32).toString('hex');
    const shortKey = randomBytes(16).toString('hex');
    const junk = 'not-a-key-at-all';
    const problems = problemsOf({
      ENCRYPTION_PREVIOUS_KEYS: `${good},${shortKey},${junk}`,
      PORT: 'abc',
    });
    expect(problems).toHaveLength(2);
    const message = problems.join('\n');
    expect(message).toContain('ENCRYPTION_PREVIOUS_KEYS entries 2, 3 (counting from 1)');
    expect(message).toContain('32 bytes');
    expect(message).toMatch(/PORT/);
    for (const value of [good, shortKey, junk]) expect(message).not.toContain(value);
  });

  test('when a single entry is bad, then the message says "entry"', () => {
    expect(problemsOf({ ENCRYPTION_PREVIOUS_KEYS: 'abc' })).toEqual([
      expect.stringContaining('ENCRYPTION_PREVIOUS_KEYS entry 1 (counting from 1)'),
    ]);
  });
});

describe('rotating the master key', () => {
  const keyA = randomBytes(32);
  const keyB = randomBytes(32);
  const hex = (k: Buffer) => k.toString('hex');
  const SECRET = `RotateMe${randomBytes(12).toString('hex')}`;
  /** The Discogs access token and secret the connection flow stored, sealed under key A. */
  let TOKEN: string;
  let TOKEN_SECRET: string;
  let discogs: DiscogsStandIn;
  let first: TestApp;
  const others: TestApp[] = [];
  let adminToken: string;
  let tokenUserId: string;
  let tokenUserBearer: string;

  let totpUser: { email: string; password: string; secret: string };
  const totpCode = (secret: string, at: number) =>
    TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at });

  /** Another instance over the same database with its own key configuration. */
  async function instance(env: Record<string, string>, clock?: () => number): Promise<TestApp> {
    const app = await startTestApp({ ...discogsEnv(), ...env }, { database: first.dbName, clock });
    others.push(app);
    return app;
  }

  async function storedSecret(): Promise<string> {
    const [row] = await first.sql(
      `SELECT value FROM app_config WHERE key = 'discogs_consumer_secret'`,
    );
    return row!.value as string;
  }

  async function storedTokens() {
    const [row] = await first.sql(
      'SELECT access_token, access_token_secret FROM oauth_tokens WHERE user_id = $1',
      [tokenUserId],
    );
    return row as { access_token: string; access_token_secret: string };
  }

  async function rotationAudits() {
    return first.sql(
      `SELECT actor_label, actor_user_id, target_type, target_id, details, details::text AS text
         FROM admin_audit_log WHERE action = 'secrets.reencrypt' ORDER BY id`,
    );
  }

  function discogsEnv(): Record<string, string> {
    return { DISCOGS_API_URL: discogs.url, DISCOGS_AUTHORIZE_URL: discogs.authorizeUrl };
  }

  beforeAll(async () => {
    discogs = await startDiscogsStandIn({ consumerKey: 'RotationKey1234', consumerSecret: SECRET });
    first = await startTestApp({
      ...discogsEnv(),
      ENCRYPTION_MASTER_KEY: hex(keyA),
      RATE_LIMIT_ENABLED: 'false',
    });
    const admin = await signedInUser(first.app);
    await first.sql('UPDATE users SET is_admin = true WHERE id = $1', [admin.user.id]);
    adminToken = admin.token;
    await request(first.app)
      .put('/api/v1/admin/config/discogs')
      .set('Authorization', `Bearer ${adminToken}`)
      .send({ consumer_key: 'RotationKey1234', consumer_secret: SECRET })
      .expect(200);
    // A user connects their Discogs account through the API while key A is current.
    const tokenUser = await signedInUser(first.app);
    tokenUserId = tokenUser.user.id;
    tokenUserBearer = tokenUser.token;
    const started = await request(first.app)
      .post('/api/v1/oauth/discogs/authorize')
      .set('Authorization', `Bearer ${tokenUserBearer}`)
      .expect(200);
    const { verifier } = discogs.approve(requestTokenOf(started.body.authorize_url), {
      id: 31337,
      username: 'rotation_user',
    });
    await request(first.app)
      .post('/api/v1/oauth/discogs/verify')
      .set('Authorization', `Bearer ${tokenUserBearer}`)
      .send({ state: started.body.state, oauth_verifier: verifier })
      .expect(200);
    const [issued] = discogs.issuedAccessTokens();
    TOKEN = issued!.token;
    TOKEN_SECRET = issued!.secret;
    // A TOTP factor set up through the API, so its secret is sealed under key A.
    const owner = await signedInUser(first.app);
    const setup = await request(first.app)
      .post('/api/v1/auth/mfa/totp/setup')
      .set('Authorization', `Bearer ${owner.token}`)
      .expect(200);
    await request(first.app)
      .post('/api/v1/auth/mfa/totp/confirm')
      .set('Authorization', `Bearer ${owner.token}`)
      .send({ code: totpCode(setup.body.secret as string, Date.now()) })
      .expect(200);
    totpUser = { email: owner.email, password: owner.password, secret: setup.body.secret };
  });

  afterAll(async () => {
    for (const app of others) await app.close();
    await first.close();
    await discogs.close();
  });

  test('when the app runs with key A, then the Discogs secret and the connected tokens are stored under A', async () => {
    expect((await storedSecret()).split(':')[1]).toBe(keyId(keyA));
    expect(await storedSecret()).not.toContain(SECRET);
    const tokens = await storedTokens();
    expect(tokens.access_token.split(':')[1]).toBe(keyId(keyA));
    expect(tokens.access_token_secret.split(':')[1]).toBe(keyId(keyA));
    expect(JSON.stringify(tokens)).not.toContain(TOKEN);
    expect(JSON.stringify(tokens)).not.toContain(TOKEN_SECRET);
  });

  test('when an app runs with key B and previous keys [A], then it still reads the secret and the tokens', async () => {
    const b = await instance({
      ENCRYPTION_MASTER_KEY: hex(keyB),
      ENCRYPTION_PREVIOUS_KEYS: hex(keyA),
    });
    const res = await request(b.app)
      .get('/api/v1/admin/config/discogs')
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(200);
    expect(res.body).toMatchObject({ configured: true, consumer_secret_set: true });
    expect(await b.deps.discogsConfig.credentials()).toEqual({
      consumerKey: 'RotationKey1234',
      consumerSecret: SECRET,
    });
    const tokens = await storedTokens();
    expect(
      b.deps.secretBox.open(
        tokens.access_token,
        oauthTokenPurpose('discogs', tokenUserId, 'access_token'),
      ),
    ).toBe(TOKEN);
  });

  test('when a stored value does not open with any configured key, then re-encryption changes nothing and names where it is', async () => {
    const strangerUserId = (await signedInUser(first.app)).user.id;
    const stranger = new SecretBox(randomBytes(32));
    await first.sql(
      `INSERT INTO oauth_tokens (user_id, provider, access_token, access_token_secret)
       VALUES ($1, 'discogs', $2, $3)`,
      [
        strangerUserId,
        stranger.seal(
          'stranger-token',
          oauthTokenPurpose('discogs', strangerUserId, 'access_token'),
        ),
        stranger.seal(
          'stranger-token-secret',
          oauthTokenPurpose('discogs', strangerUserId, 'access_token_secret'),
        ),
      ],
    );
    try {
      const b = await instance({
        ENCRYPTION_MASTER_KEY: hex(keyB),
        ENCRYPTION_PREVIOUS_KEYS: hex(keyA),
      });
      const before = await storedSecret();
      const err = await b.deps.secretRotation.reencryptAll(CLI_ACTOR).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ status: 503, code: 'stored_secret_unreadable' });
      const message = (err as Error).message;
      expect(message).toContain('2 stored secret(s)');
      expect(message).toContain('ENCRYPTION_PREVIOUS_KEYS');
      expect(message).toContain(`oauth_tokens`);
      expect(message).toContain(stranger.kid);
      expect(message).not.toContain('stranger-token');
      expect(await storedSecret()).toBe(before);
      expect(await rotationAudits()).toHaveLength(0);
    } finally {
      await first.sql('DELETE FROM oauth_tokens WHERE user_id = $1', [strangerUserId]);
    }
  });

  test('when reencrypt-secrets runs with key B and previous keys [A], then every value is rewritten under B, audited with counts only', async () => {
    const b = await instance({
      ENCRYPTION_MASTER_KEY: hex(keyB),
      ENCRYPTION_PREVIOUS_KEYS: hex(keyA),
    });
    const [before] = await first.sql(
      `SELECT updated_at FROM app_config WHERE key = 'discogs_consumer_secret'`,
    );
    const result = await b.deps.secretRotation.reencryptAll(CLI_ACTOR);
    expect(result).toEqual({
      keyId: keyId(keyB),
      appConfig: { reencrypted: 1, unchanged: 0 },
      oauthTokens: { reencrypted: 2, unchanged: 0 },
      totpSecrets: { reencrypted: 1, unchanged: 0 },
    });
    expect((await storedSecret()).split(':')[1]).toBe(keyId(keyB));
    const tokens = await storedTokens();
    expect(tokens.access_token.split(':')[1]).toBe(keyId(keyB));
    expect(tokens.access_token_secret.split(':')[1]).toBe(keyId(keyB));
    // The credential itself did not change, so neither does the time the API reports.
    const [after] = await first.sql(
      `SELECT updated_at FROM app_config WHERE key = 'discogs_consumer_secret'`,
    );
    expect(after!.updated_at).toEqual(before!.updated_at);

    const audits = await rotationAudits();
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({
      actor_label: 'cli',
      actor_user_id: null,
      target_type: 'encryption_key',
      target_id: keyId(keyB),
      details: {
        app_config: { reencrypted: 1, unchanged: 0 },
        oauth_tokens: { reencrypted: 2, unchanged: 0 },
        totp_secrets: { reencrypted: 1, unchanged: 0 },
      },
    });
    const [totpRow] = await first.sql('SELECT totp_secret FROM users WHERE email = $1', [
      totpUser.email,
    ]);
    expect((totpRow!.totp_secret as string).split(':')[1]).toBe(keyId(keyB));
    for (const plain of [SECRET, TOKEN, TOKEN_SECRET, totpUser.secret]) {
      expect(audits[0]!.text).not.toContain(plain);
    }
  });

  test('when reencrypt-secrets runs again, then nothing is rewritten and nothing is audited', async () => {
    const b = await instance({
      ENCRYPTION_MASTER_KEY: hex(keyB),
      ENCRYPTION_PREVIOUS_KEYS: hex(keyA),
    });
    const secret = await storedSecret();
    const tokens = await storedTokens();
    expect(await b.deps.secretRotation.reencryptAll(CLI_ACTOR)).toEqual({
      keyId: keyId(keyB),
      appConfig: { reencrypted: 0, unchanged: 1 },
      oauthTokens: { reencrypted: 0, unchanged: 2 },
      totpSecrets: { reencrypted: 0, unchanged: 1 },
    });
    expect(await storedSecret()).toBe(secret);
    expect(await storedTokens()).toEqual(tokens);
    expect(await rotationAudits()).toHaveLength(1);
  });

  test('when the app then runs with key B and no previous keys, then the re-encrypted TOTP secret still checks codes', async () => {
    // Two steps past any code used so far, so no replay rule gets in the way.
    const at = Date.now() + 60_000;
    const b = await instance({ ENCRYPTION_MASTER_KEY: hex(keyB) }, () => at);
    const step = await request(b.app)
      .post('/api/v1/auth/token')
      .send({ email: totpUser.email, password: totpUser.password })
      .expect(403);
    expect(step.body.code).toBe('mfa_required');
    await request(b.app)
      .post('/api/v1/auth/mfa/verify')
      .send({ mfa_token: step.body.mfa_token, code: totpCode(totpUser.secret, at) })
      .expect(200);
  });

  test('when the app then runs with key B and no previous keys, then it still reads everything', async () => {
    const b = await instance({ ENCRYPTION_MASTER_KEY: hex(keyB) });
    await request(b.app)
      .get('/api/v1/admin/config/discogs')
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(200)
      .expect((res) => expect(res.body.configured).toBe(true));
    expect(await b.deps.discogsConfig.credentials()).toEqual({
      consumerKey: 'RotationKey1234',
      consumerSecret: SECRET,
    });
    expect(
      b.deps.secretBox.open(
        (await storedTokens()).access_token_secret,
        oauthTokenPurpose('discogs', tokenUserId, 'access_token_secret'),
      ),
    ).toBe(TOKEN_SECRET);
    // The connection survives the rotation: its status answers and its tokens open.
    await request(b.app)
      .get('/api/v1/oauth/discogs')
      .set('Authorization', `Bearer ${tokenUserBearer}`)
      .expect(200)
      .expect((res) =>
        expect(res.body).toMatchObject({ connected: true, discogs_username: 'rotation_user' }),
      );
    expect(await b.deps.discogs.accessTokenOf(tokenUserId)).toEqual({
      token: TOKEN,
      secret: TOKEN_SECRET,
    });
  });

  test('when an app runs with only the old key A, then reading the secret fails as a 503 with a code, naming no key or secret', async () => {
    const a = await instance({ ENCRYPTION_MASTER_KEY: hex(keyA) });
    const err = await a.deps.discogsConfig.credentials().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    const problem = toAppError(err);
    expect(problem).toMatchObject({ status: 503, code: 'stored_secret_unreadable' });
    expect(problem.headers['Retry-After']).toBeDefined();
    const text = `${problem.message} ${String((err as Error).cause)}`;
    // The operator-facing cause names the missing key id; nothing secret appears anywhere.
    expect(String((err as Error).cause)).toContain(keyId(keyB));
    for (const secret of [SECRET, hex(keyA), hex(keyB), keyA.toString('base64')]) {
      expect(text).not.toContain(secret);
    }
    // Nor do the user's Discogs tokens, and for the same reason.
    await expect(a.deps.discogs.accessTokenOf(tokenUserId)).rejects.toMatchObject({
      status: 503,
      code: 'stored_secret_unreadable',
    });
    // The admin view does not open the secret, so it keeps answering.
    await request(a.app)
      .get('/api/v1/admin/config/discogs')
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(200);
    // Re-encrypting with only key A refuses too, and leaves the B-sealed values alone.
    const secret = await storedSecret();
    await expect(a.deps.secretRotation.reencryptAll(CLI_ACTOR)).rejects.toMatchObject({
      code: 'stored_secret_unreadable',
    });
    expect(await storedSecret()).toBe(secret);
  });

  test('when a sealed value is moved to another row, then it does not open there (purposes bind the row)', () => {
    const box = new SecretBox(keyB);
    const sealed = box.seal(TOKEN, oauthTokenPurpose('discogs', tokenUserId, 'access_token'));
    expect(() =>
      box.open(sealed, oauthTokenPurpose('discogs', randomUUID(), 'access_token')),
    ).toThrow();
    expect(() =>
      box.open(sealed, oauthTokenPurpose('discogs', tokenUserId, 'access_token_secret')),
    ).toThrow();
    expect(appConfigPurpose('discogs_consumer_secret')).toBe('app_config:discogs_consumer_secret');
  });
});
