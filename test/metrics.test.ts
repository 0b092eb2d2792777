import { afterAll, beforeAll, expect, test } from '@jest/globals';
import request from 'supertest';
import { register, signedInUser, startTestApp, type TestApp } from './support/test-app';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

async function scrape(): Promise<string> {
  const res = await request(t.healthApp).get('/metrics').expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text;
}

/** The value of one sample line, e.g. `auth_logins_total{outcome="success"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('when /metrics is scraped after a flow, then it has request durations by operationId and the auth counters', async () => {
  const { token } = await signedInUser(t.app);
  await request(t.app).get('/api/v1/auth/me').set('Authorization', `Bearer ${token}`).expect(200);
  await request(t.app)
    .post('/api/v1/auth/token')
    .send({ email: 'nobody@example.com', password: 'wrong-password' })
    .expect(401);

  const text = await scrape();
  expect(text).toContain('# TYPE http_request_duration_seconds histogram');
  expect(
    sample(
      text,
      'http_request_duration_seconds_count{method="POST",operation="registerUser",status="201"}',
    ),
  ).toBeGreaterThanOrEqual(1);
  expect(
    sample(
      text,
      'http_request_duration_seconds_count{method="POST",operation="issueToken",status="200"}',
    ),
  ).toBeGreaterThanOrEqual(1);
  expect(
    sample(
      text,
      'http_request_duration_seconds_count{method="POST",operation="issueToken",status="401"}',
    ),
  ).toBeGreaterThanOrEqual(1);
  expect(
    sample(
      text,
      'http_request_duration_seconds_count{method="GET",operation="getCurrentUser",status="200"}',
    ),
  ).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'auth_registrations_total{outcome="created"}')).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'auth_logins_total{outcome="success"}')).toBeGreaterThanOrEqual(1);
  expect(sample(text, 'auth_logins_total{outcome="invalid_credentials"}')).toBeGreaterThanOrEqual(
    1,
  );
  expect(sample(text, 'auth_token_verifications_total{outcome="valid"}')).toBeGreaterThanOrEqual(1);
  expect(text).toMatch(/^auth_password_hash_duration_seconds_count\{op="[a-z_]+"\} [1-9]\d*$/m);
  // Default process metrics.
  expect(text).toContain('process_cpu_user_seconds_total');
  expect(text).toContain('nodejs_eventloop_lag_seconds');
  // Declared even before their first event, so dashboards and alerts find them.
  expect(text).toContain('# TYPE auth_rate_limit_rejections_total counter');
  expect(text).toContain('# TYPE auth_discogs_upstream_calls_total counter');
});

test('when a request matches no operation, then its duration is labelled unmatched and the raw URL never appears', async () => {
  const probe = `/no-such-path-${Date.now()}`;
  await request(t.app).get(`${probe}?email=someone@example.com`).expect(404);
  await request(t.app).put('/api/v1/auth/me').expect(405);

  const text = await scrape();
  expect(
    sample(
      text,
      'http_request_duration_seconds_count{method="GET",operation="unmatched",status="404"}',
    ),
  ).toBeGreaterThanOrEqual(1);
  expect(
    sample(
      text,
      'http_request_duration_seconds_count{method="PUT",operation="unmatched",status="405"}',
    ),
  ).toBeGreaterThanOrEqual(1);
  expect(text).not.toContain(probe);
  expect(text).not.toContain('someone@example.com');
  expect(text).not.toContain('/api/v1/auth/me');
});

test('when operations are labelled, then every operation label is an operationId of the spec or unmatched', async () => {
  await register(t.app);
  await request(t.app).get('/docs/redoc.standalone.js').expect(200);
  await request(t.healthApp).get('/health/ready');

  const text = await scrape();
  const labels = new Set(
    [...text.matchAll(/^http_request_duration_seconds_count\{[^}]*operation="([^"]*)"/gm)].map(
      (m) => m[1],
    ),
  );
  const known = new Set([...t.deps.spec.operations.map((o) => o.operationId), 'unmatched']);
  expect([...labels].filter((l) => !known.has(l!))).toEqual([]);
  expect(labels).toContain('getReadiness');
  expect(labels).toContain('getDocsBundle');
});

test('when /metrics is requested on the API port, then 404: metrics are for the health port only', async () => {
  const res = await request(t.app).get('/metrics').expect(404);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
});
