import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import request from 'supertest';
import { signedInUser, startTestApp, type TestApp } from './support/test-app';

const ALLOWED = 'https://app.example.com';
const ALSO_ALLOWED = 'http://localhost:5173';
const STRANGER = 'https://evil.example.net';

function corsHeaders(headers: Record<string, string>): string[] {
  return Object.keys(headers).filter((h) => h.startsWith('access-control-'));
}

describe('with no CORS_ORIGINS (the default)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  test('when a browser sends an Origin, then no Access-Control-* header is sent', async () => {
    const res = await request(t.app).get('/openapi.json').set('Origin', ALLOWED).expect(200);
    expect(corsHeaders(res.headers)).toEqual([]);
  });

  test('when a browser sends a preflight, then it is not answered as CORS (405, no Access-Control-* headers)', async () => {
    const res = await request(t.app)
      .options('/api/v1/auth/token')
      .set('Origin', ALLOWED)
      .set('Access-Control-Request-Method', 'POST')
      .expect(405);
    expect(corsHeaders(res.headers)).toEqual([]);
  });
});

describe('with CORS_ORIGINS set', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ CORS_ORIGINS: `${ALLOWED}, ${ALSO_ALLOWED}/` });
  });
  afterAll(async () => {
    await t.close();
  });

  test('when an allowed origin preflights, then 204 with the allowed methods, headers and exposed headers', async () => {
    const res = await request(t.app)
      .options('/api/v1/auth/token')
      .set('Origin', ALLOWED)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'content-type, authorization, x-request-id')
      .expect(204);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(res.headers['access-control-allow-methods']).toBe('GET, POST, PUT, PATCH, DELETE');
    expect(res.headers['access-control-allow-headers']).toBe(
      'Authorization, Content-Type, X-Request-Id',
    );
    expect(res.headers['access-control-expose-headers']).toBe(
      'X-Request-Id, Retry-After, WWW-Authenticate',
    );
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toMatch(/\bOrigin\b/);
    expect(res.headers['x-request-id']).toBeDefined();
  });

  test('when an allowed origin calls the API, then the response allows that origin and exposes the request id', async () => {
    const { token } = await signedInUser(t.app);
    const res = await request(t.app)
      .get('/api/v1/auth/me')
      .set('Origin', ALSO_ALLOWED)
      .set('Authorization', `Bearer ${token}`)
      .expect(200);
    expect(res.headers['access-control-allow-origin']).toBe(ALSO_ALLOWED);
    expect(res.headers['access-control-expose-headers']).toBe(
      'X-Request-Id, Retry-After, WWW-Authenticate',
    );
    expect(res.headers['access-control-allow-methods']).toBeUndefined();
    expect(res.headers.vary).toMatch(/\bOrigin\b/);
  });

  test('when an allowed origin gets an error, then the problem response carries the CORS headers too', async () => {
    const res = await request(t.app).get('/api/v1/auth/me').set('Origin', ALLOWED).expect(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  test('when a disallowed origin calls or preflights, then no Access-Control-* header is sent', async () => {
    const call = await request(t.app).get('/openapi.json').set('Origin', STRANGER).expect(200);
    expect(corsHeaders(call.headers)).toEqual([]);
    expect(call.headers.vary).toMatch(/\bOrigin\b/);
    const preflight = await request(t.app)
      .options('/api/v1/auth/token')
      .set('Origin', STRANGER)
      .set('Access-Control-Request-Method', 'POST')
      .expect(405);
    expect(corsHeaders(preflight.headers)).toEqual([]);
  });

  test('when an origin only resembles an allowed one, then it is not allowed', async () => {
    for (const origin of [
      `${ALLOWED}.evil.net`,
      'http://app.example.com',
      `${ALLOWED}:8443`,
      'null',
    ]) {
      const res = await request(t.app).get('/openapi.json').set('Origin', origin).expect(200);
      expect({ origin, cors: corsHeaders(res.headers) }).toEqual({ origin, cors: [] });
    }
  });

  test('when a request has no Origin, then no Access-Control-* header is sent', async () => {
    const res = await request(t.app).get('/openapi.json').expect(200);
    expect(corsHeaders(res.headers)).toEqual([]);
  });

  test('when an OPTIONS request is not a preflight, then the validator answers it as usual (405 with Allow)', async () => {
    const res = await request(t.app)
      .options('/api/v1/auth/token')
      .set('Origin', ALLOWED)
      .expect(405);
    expect(res.headers.allow).toBe('POST');
  });

  test('when the health port is called from an allowed origin, then it sends no CORS headers (it is not for browsers)', async () => {
    const res = await request(t.healthApp).get('/health/live').set('Origin', ALLOWED).expect(200);
    expect(corsHeaders(res.headers)).toEqual([]);
  });
});
