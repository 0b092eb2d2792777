import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { OAuth2Client, OAuth2HttpError } from '@badgateway/oauth2-client';
import { ResourceOwnerPassword } from 'simple-oauth2';
import request from 'supertest';
import { TOKEN_PATH } from '../src/http/problem';
import { loadSpec } from '../src/http/spec';
import { register, startTestApp, uniqueEmail, type TestApp } from './support/test-app';

/**
 * Two OAuth2 client libraries from the registry, used as their documentation shows, against
 * the listening service: the token endpoint must speak RFC 6749 to them, errors included.
 */
let t: TestApp;
let server: Server;
let baseUrl: string;

interface PasswordFlow {
  tokenUrl: string;
  refreshUrl: string;
}
const flow = (
  loadSpec().document as {
    components: { securitySchemes: { oauth2: { flows: { password: PasswordFlow } } } };
  }
).components.securitySchemes.oauth2.flows.password;

beforeAll(async () => {
  // No grace window, so that a replayed refresh token is reuse at once.
  t = await startTestApp({ REFRESH_TOKEN_REUSE_GRACE_SECONDS: '0' });
  server = t.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await t.close();
});

test('when the spec declares the oauth2 password flow, then its URLs are the token endpoint', () => {
  expect(flow.tokenUrl).toBe(TOKEN_PATH);
  expect(flow).toEqual({
    tokenUrl: '/api/v1/auth/token',
    refreshUrl: '/api/v1/auth/token',
    scopes: expect.any(Object),
  });
});

describe('simple-oauth2', () => {
  const client = () =>
    new ResourceOwnerPassword({
      client: { id: 'catalogue-web', secret: '' },
      auth: { tokenHost: baseUrl, tokenPath: flow.tokenUrl, refreshPath: flow.refreshUrl },
    });

  test('when it gets a token and refreshes it, then both are usable bearer tokens', async () => {
    const { email, password } = await register(t.app);
    const token = await client().getToken({ username: email, password });
    expect(token.token).toMatchObject({ token_type: 'bearer', expires_in: expect.any(Number) });
    expect(await me(token.token.access_token as string)).toBe(email);

    const refreshed = await token.refresh();
    expect(refreshed.token.refresh_token).not.toBe(token.token.refresh_token);
    expect(await me(refreshed.token.access_token as string)).toBe(email);
  });

  test('when the password is wrong, then it sees invalid_grant', async () => {
    const { email } = await register(t.app);
    const err = await client()
      .getToken({ username: email, password: 'not-the-password' })
      .then(
        () => undefined,
        (e: unknown) =>
          e as { output: { statusCode: number }; data: { payload: Record<string, unknown> } },
      );
    expect(err?.output.statusCode).toBe(401);
    expect(err?.data.payload).toMatchObject({
      error: 'invalid_grant',
      error_description: 'The email or password is incorrect.',
      code: 'invalid_credentials',
    });
  });

  test('when the refresh token is unknown, then it sees invalid_grant', async () => {
    const token = client().createToken({
      access_token: 'x',
      refresh_token: 'never-issued-refresh-token',
    });
    const err = await token.refresh().then(
      () => undefined,
      (e: unknown) => e as { data: { payload: Record<string, unknown> } },
    );
    expect(err?.data.payload).toMatchObject({
      error: 'invalid_grant',
      code: 'invalid_refresh_token',
    });
  });
});

describe('@badgateway/oauth2-client', () => {
  const client = () =>
    new OAuth2Client({ server: baseUrl, tokenEndpoint: flow.tokenUrl, clientId: 'catalogue-web' });

  test('when it gets a token and refreshes it, then both are usable bearer tokens', async () => {
    const { email, password } = await register(t.app);
    const token = await client().password({ username: email, password });
    expect(token.expiresAt).toBeGreaterThan(Date.now());
    expect(await me(token.accessToken)).toBe(email);

    const refreshed = await client().refreshToken(token);
    expect(refreshed.refreshToken).not.toBe(token.refreshToken);
    expect(await me(refreshed.accessToken)).toBe(email);
  });

  test('when the password is wrong, then it sees invalid_grant', async () => {
    const err = await client()
      .password({ username: uniqueEmail(), password: 'not-the-password' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OAuth2HttpError);
    expect((err as OAuth2HttpError).oauth2Code).toBe('invalid_grant');
    expect((err as OAuth2HttpError).httpCode).toBe(401);
  });

  test('when the refresh token is unknown, then it sees invalid_grant', async () => {
    const err = await client()
      .refreshToken({
        accessToken: 'x',
        refreshToken: 'never-issued-refresh-token',
        expiresAt: null,
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as OAuth2HttpError).oauth2Code).toBe('invalid_grant');
  });

  test('when the grant type is one the endpoint does not offer, then it sees unsupported_grant_type', async () => {
    // The library refuses to ask for client credentials without a secret of its own.
    const confidential = new OAuth2Client({
      server: baseUrl,
      tokenEndpoint: flow.tokenUrl,
      clientId: 'catalogue-web',
      clientSecret: 'not-checked',
    });
    const err = await confidential.clientCredentials().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as OAuth2HttpError).oauth2Code).toBe('unsupported_grant_type');
    expect((err as OAuth2HttpError).parsedBody).toMatchObject({
      code: 'validation_failed',
      status: 422,
    });
  });
});

async function me(accessToken: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/v1/auth/me`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { email: string }).email;
}

describe('problems of the token endpoint', () => {
  const token = () => request(t.app).post(TOKEN_PATH);

  test('when a spent refresh token is replayed, then invalid_grant', async () => {
    const { email, password } = await register(t.app);
    const first = await token().send({ email, password }).expect(200);
    const refresh = first.body.refresh_token as string;
    await token()
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: refresh })
      .expect(200);
    const res = await token()
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: refresh })
      .expect(401);
    expect(res.body).toMatchObject({ code: 'refresh_token_reused', error: 'invalid_grant' });
  });

  test('when a member is missing, then invalid_request with the problem members', async () => {
    const res = await token()
      .type('form')
      .send({ grant_type: 'password', username: 'a@example.com' })
      .expect(422);
    expect(res.body).toMatchObject({
      code: 'validation_failed',
      error: 'invalid_request',
      error_description: res.body.detail,
    });
    expect(res.body.errors.length).toBeGreaterThan(0);
  });

  test('when the body is not parseable or not a form or JSON, then invalid_request', async () => {
    const broken = await token()
      .set('content-type', 'application/json')
      .send('{"email":')
      .expect(400);
    expect(broken.body).toMatchObject({ code: 'malformed_body', error: 'invalid_request' });
    const text = await token().set('content-type', 'text/plain').send('hello').expect(415);
    expect(text.body).toMatchObject({ code: 'unsupported_media_type', error: 'invalid_request' });
  });

  test('when another operation fails, then its problem has no OAuth2 members', async () => {
    const res = await request(t.app).get('/api/v1/auth/me').expect(401);
    expect(res.body.code).toBe('missing_token');
    expect(res.body).not.toHaveProperty('error');
    const other = await request(t.app).get(TOKEN_PATH).expect(405);
    expect(other.body).not.toHaveProperty('error');
  });
});
