import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import request from 'supertest';
import { createApp, createHealthApp } from '../src/app';
import { loadConfig } from '../src/config';
import { createDeps, type Deps } from '../src/deps';
import { answerClientError } from '../src/http/problem';
import { signedInUser, startTestApp, TEST_JWT_SECRET, type TestApp } from './support/test-app';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const REGISTER = '/api/v1/auth/register';

function expectProblem(res: request.Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({
    type: expect.stringContaining(code),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    code,
    request_id: res.headers['x-request-id'],
  });
  expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+|Sequelize|SELECT /);
}

test('when the JSON body cannot be parsed, then 400 malformed_body', async () => {
  const res = await request(t.app)
    .post(REGISTER)
    .set('Content-Type', 'application/json')
    .send('{"email": ');
  expectProblem(res, 400, 'malformed_body');
});

test('when the body is over 64 KiB, then 413 payload_too_large', async () => {
  const res = await request(t.app)
    .post(REGISTER)
    .send({ email: 'a@example.com', password: 'x'.repeat(70 * 1024) });
  expectProblem(res, 413, 'payload_too_large');
});

test('when a form has more fields than allowed, then 413 and no 500', async () => {
  const fields = Array.from({ length: 60 }, (_, i) => `f${i}=1`).join('&');
  const res = await request(t.app)
    .post('/api/v1/auth/token')
    .type('form')
    .send(`grant_type=password&username=a%40example.com&password=x&${fields}`);
  expectProblem(res, 413, 'payload_too_large');
});

test('when a compressed body is corrupt, then 400 malformed_body and no 500', async () => {
  const res = await request(t.app)
    .post('/api/v1/auth/token')
    .set('Content-Type', 'application/json')
    .set('Content-Encoding', 'gzip')
    .send('not gzip at all');
  expectProblem(res, 400, 'malformed_body');
});

test('when the content type is not accepted, then 415 unsupported_media_type', async () => {
  const res = await request(t.app).post(REGISTER).set('Content-Type', 'text/plain').send('hello');
  expectProblem(res, 415, 'unsupported_media_type');
});

test('when the body breaks the schema, then 422 with errors[] of paths and messages', async () => {
  const res = await request(t.app).post(REGISTER).send({ email: 42 });
  expectProblem(res, 422, 'validation_failed');
  expect(res.body.errors).toEqual(
    expect.arrayContaining([
      { path: '/body/email', message: expect.any(String) },
      { path: '/body/password', message: expect.any(String) },
    ]),
  );
});

test.each([
  ['a string', '"just a string"'],
  ['null', 'null'],
  ['an array', '[]'],
])(
  'when the JSON body is %s instead of an object, then 422 (well-formed, wrong shape)',
  async (_what, body) => {
    const res = await request(t.app)
      .post(REGISTER)
      .set('Content-Type', 'application/json')
      .send(body);
    expectProblem(res, 422, 'validation_failed');
    expect(res.body.errors[0].path).toMatch(/^\/body/);
  },
);

test('when form fields break the schema, then errors[] point into /body', async () => {
  const missing = await request(t.app)
    .post('/api/v1/auth/token')
    .type('form')
    .send({ grant_type: 'password', password: 'x' });
  expectProblem(missing, 422, 'validation_failed');
  for (const e of missing.body.errors) expect(e.path).toMatch(/^\/body(\/|$)/);
  const grant = await request(t.app)
    .post('/api/v1/auth/token')
    .type('form')
    .send({ grant_type: 'client_credentials' });
  expectProblem(grant, 422, 'validation_failed');
  for (const e of grant.body.errors) expect(e.path).toMatch(/^\/body(\/|$)/);
});

test('when a GET operation is asked with HEAD, then 200 with headers and no body', async () => {
  const res = await request(t.app).head('/openapi.json').expect(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['x-request-id']).toBeDefined();
  expect(res.text ?? '').toBe('');
});

describe('requests the HTTP parser refuses', () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = http.createServer(t.app).on('clientError', answerClientError);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  function raw(text: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let out = '';
      const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
      socket.on('data', (d) => (out += d.toString()));
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
    });
  }

  function parse(response: string) {
    const [head, body] = response.split('\r\n\r\n');
    return { head: head!, body: JSON.parse(body!) as Record<string, unknown> };
  }

  test('when the method is not HTTP, then 400 problem+json with a request id', async () => {
    const { head, body } = parse(await raw('FOO /api/v1/auth/me HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/content-type: application\/problem\+json/i);
    const id = /x-request-id: (\S+)/i.exec(head)?.[1];
    expect(body).toMatchObject({ status: 400, code: 'malformed_request', request_id: id });
  });

  test('when the headers are too large, then 431 problem+json', async () => {
    const { head, body } = parse(
      await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    expect(head).toMatch(/^HTTP\/1\.1 431 /);
    expect(body).toMatchObject({ status: 431, code: 'headers_too_large' });
  });
});

test('when the path is not valid percent-encoding, then 400 malformed_request', async () => {
  const { token } = await signedInUser(t.app);
  const res = await request(t.app)
    .patch('/api/v1/admin/users/%E0%A4%A')
    .set('Authorization', `Bearer ${token}`)
    .send({ is_active: true });
  expectProblem(res, 400, 'malformed_request');
});

test('when the path is unknown, then 404 not_found', async () => {
  expectProblem(await request(t.app).get('/api/v1/nope'), 404, 'not_found');
  expectProblem(await request(t.app).get('/'), 404, 'not_found');
});

test('when the method is wrong, then 405 with Allow', async () => {
  const res = await request(t.app).put(REGISTER).send({});
  expectProblem(res, 405, 'method_not_allowed');
  expect(res.headers.allow).toBe('POST');
});

test('when the health-port paths are asked of the API port, then 404', async () => {
  expectProblem(await request(t.app).get('/health/ready'), 404, 'not_found');
});

describe('request ids', () => {
  test('when the client sends a sane X-Request-Id, then it is echoed and used in errors', async () => {
    const res = await request(t.app).get('/api/v1/nope').set('X-Request-Id', 'client-id-123');
    expect(res.headers['x-request-id']).toBe('client-id-123');
    expect(res.body.request_id).toBe('client-id-123');
  });

  test('when the client sends an unsafe X-Request-Id, then a fresh one replaces it', async () => {
    const res = await request(t.app).get('/health').set('X-Request-Id', 'bad id <script>');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('when no id is sent, then every response still carries one, on both ports', async () => {
    for (const res of [
      await request(t.app).get('/health'),
      await request(t.app).get('/openapi.json'),
      await request(t.healthApp).get('/health/live'),
    ]) {
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

test('when any response is sent, then it carries nosniff and a frame-denying policy', async () => {
  for (const res of [
    await request(t.app).get('/health'),
    await request(t.app).get('/docs'),
    await request(t.app).post(REGISTER).send({}),
  ]) {
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  }
});

test('when account data is returned, then Cache-Control is no-store', async () => {
  const { token } = await signedInUser(t.app);
  const res = await request(t.app)
    .get('/api/v1/auth/me')
    .set('Authorization', `Bearer ${token}`)
    .expect(200);
  expect(res.headers['cache-control']).toBe('no-store');
});

describe('the contract documents', () => {
  test('when /openapi.json is fetched, then it is the spec the service validates against', async () => {
    const res = await request(t.app).get('/openapi.json').expect(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/auth/register', '/api/v1/auth/me']),
    );
  });

  test('when /openapi.yaml is fetched, then it is the YAML source', async () => {
    const res = await request(t.app).get('/openapi.yaml').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/yaml/);
    expect(res.text).toBe(t.deps.spec.yaml);
  });

  test('when /docs is fetched, then an HTML page loads Redoc from this service only', async () => {
    const res = await request(t.app).get('/docs').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const scripts = [...res.text.matchAll(/src="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) expect(src).toMatch(/^\//);
    const asset = await request(t.app).get(scripts[0]!).expect(200);
    expect(asset.headers['content-type']).toMatch(/javascript/);
  });
});

describe('health', () => {
  test('when the dependencies answer, then /health is 200 healthy on both ports', async () => {
    for (const app of [t.app, t.healthApp]) {
      const res = await request(app).get('/health').expect(200);
      expect(res.body).toEqual({
        status: 'healthy',
        service: 'auth',
        timestamp: expect.any(String),
        checks: { database: 'ok', redis: 'ok' },
      });
    }
  });

  test('when everything is migrated, then readiness and liveness are 200', async () => {
    await request(t.healthApp).get('/health/live').expect(200, { status: 'ok' });
    const res = await request(t.healthApp).get('/health/ready').expect(200);
    expect(res.body.checks).toEqual({ database: 'ok', redis: 'ok', migrations: 'ok' });
  });

  describe('when PostgreSQL does not answer', () => {
    let deps: Deps;
    let dir: string;
    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auth-down-'));
      deps = await createDeps(
        loadConfig({
          DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
          JWT_SECRET_KEY: TEST_JWT_SECRET,
          DATA_DIR: dir,
          LOG_LEVEL: 'silent',
        }),
      );
    });
    afterAll(async () => {
      await deps.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('then readiness and /health are 503 with Retry-After', async () => {
      const ready = await request(createHealthApp(deps)).get('/health/ready').expect(503);
      expect(ready.body).toMatchObject({ status: 'unavailable', checks: { database: 'down' } });
      expect(ready.headers['retry-after']).toBeDefined();
      const health = await request(createApp(deps)).get('/health').expect(503);
      expect(health.body).toMatchObject({ status: 'unhealthy', checks: { database: 'down' } });
    });

    test('then an API call needing the database is 503, not 500', async () => {
      const res = await request(createApp(deps))
        .post('/api/v1/auth/token')
        .send({ email: 'a@example.com', password: 'whatever-password' });
      expectProblem(res, 503, 'service_unavailable');
      expect(res.headers['retry-after']).toBeDefined();
    });
  });

  test('when shutting down, then readiness turns 503 at once', async () => {
    t.deps.lifecycle.shuttingDown = true;
    try {
      await request(t.healthApp).get('/health/ready').expect(503);
    } finally {
      t.deps.lifecycle.shuttingDown = false;
    }
  });
});
