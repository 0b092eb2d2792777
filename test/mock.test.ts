import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startMock } from '../scripts/mock';
import { loadSpec } from '../src/http/spec';

/** `npm run mock` answers from the spec's examples and refuses requests that break the spec. */
let server: Server;
let base: string;

beforeAll(async () => {
  server = await startMock(0);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const spec = loadSpec().document as {
  paths: Record<
    string,
    Record<
      string,
      { responses: Record<string, { content?: Record<string, { example?: unknown }> }> }
    >
  >;
};

test('when an operation is called as the spec says, then the answer is its example', async () => {
  const res = await fetch(`${base}/api/v1/auth/me`, {
    headers: { authorization: 'Bearer anything' },
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual(
    spec.paths['/api/v1/auth/me']!.get!.responses['200']!.content!['application/json']!.example,
  );
});

test('when a body is valid, then the documented success answer comes back', async () => {
  const res = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'ada@example.com', password: 'correct-horse-battery' }),
  });
  expect(res.status).toBe(201);
  expect(await res.json()).toMatchObject({ email: 'ada@example.com', is_active: true });
});

test('when the body breaks the schema, then 422 problem+json names the field', async () => {
  const res = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'ada@example.com', password: 'short' }),
  });
  expect(res.status).toBe(422);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as { code: string; errors: { path: string }[] };
  expect(body.code).toBe('validation_failed');
  expect(body.errors.map((e) => e.path)).toContain('/body/password');
});

test('when a secured operation is called without a token, then 401', async () => {
  const res = await fetch(`${base}/api/v1/auth/me`);
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toBe('Bearer');
});

test('when the caller prefers another declared answer, then that example comes back', async () => {
  const res = await fetch(`${base}/api/v1/admin/config/discogs`, {
    headers: { authorization: 'Bearer anything', prefer: 'example=notConfigured' },
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ configured: false, consumer_key: null });

  const conflict = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: 'code=409' },
    body: JSON.stringify({ email: 'ada@example.com', password: 'correct-horse-battery' }),
  });
  expect(conflict.status).toBe(409);
  expect(((await conflict.json()) as { code: string }).code).toBe('email_taken');
});

test('when the path is unknown, then 404 problem+json', async () => {
  const res = await fetch(`${base}/api/v1/nothing-here`);
  expect(res.status).toBe(404);
  expect(((await res.json()) as { code: string }).code).toBe('not_found');
});

test('when the OAuth2 form is sent, then it is checked against the form schema', async () => {
  const form = (body: Record<string, string>) =>
    fetch(`${base}/api/v1/auth/token`, { method: 'POST', body: new URLSearchParams(body) });
  const ok = await form({ grant_type: 'password', username: 'ada@example.com', password: 'x' });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toMatchObject({ token_type: 'bearer' });
  const bad = await form({ grant_type: 'password', username: 'ada@example.com' });
  expect(bad.status).toBe(422);
});
