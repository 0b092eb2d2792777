import { randomBytes } from 'node:crypto';
import { expect, test } from '@jest/globals';
import request from 'supertest';
import { runInRequestScope } from '../src/logger';
import { useSmtpServer } from './support/smtp';
import { uniqueEmail, useTestApp } from './support/test-app';

// Mail goes to a real SMTP server: the log transport (development without SMTP_URL) writes
// mails in full by design, and is not what this file checks.
const smtp = useSmtpServer();
const t = useTestApp(() => ({ SMTP_URL: smtp.url }));

interface LogLine {
  level: string;
  msg: string;
  req?: { id?: string; url?: string };
  res?: { statusCode?: number };
}

function parsed(): LogLine[] {
  return t.logs.map((l) => JSON.parse(l) as LogLine);
}

function hasOperation(method: string, path: string): boolean {
  return t.deps.spec.operations.some((o) => o.method === method && o.path === path);
}

/** One call of the flow: what we sent and what came back, to match against the log. */
interface Exchange {
  what: string;
  requestId: string;
  status: number;
}

test('when a full flow runs, then no log line holds a password, token, email or bearer header, and each request line carries its request id', async () => {
  const email = uniqueEmail('logs');
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const newPassword = `pw-${randomBytes(8).toString('hex')}`;
  const secrets: string[] = [email, password, newPassword];
  const exchanges: Exchange[] = [];
  let n = 0;
  // Half the calls send their own X-Request-Id, half let the service mint one.
  const call = async (what: string, req: request.Test, expected: number) => {
    const sent = n++ % 2 === 0 ? `log-test-${n}` : undefined;
    const res = await (sent ? req.set('X-Request-Id', sent) : req).expect(expected);
    const requestId = res.headers['x-request-id'] as string;
    if (sent) expect(requestId).toBe(sent);
    exchanges.push({ what, requestId, status: res.status });
    return res;
  };

  await call(
    'register',
    request(t.app).post('/api/v1/auth/register').send({ email, password }),
    201,
  );
  const json = await call(
    'login (JSON)',
    request(t.app).post('/api/v1/auth/token').send({ email, password }),
    200,
  );
  const form = await call(
    'login (form)',
    request(t.app)
      .post('/api/v1/auth/token')
      .type('form')
      .send({ grant_type: 'password', username: email, password }),
    200,
  );
  const token = json.body.access_token as string;
  secrets.push(token, form.body.access_token as string);
  await call(
    'me',
    request(t.app).get('/api/v1/auth/me').set('Authorization', `Bearer ${token}`),
    200,
  );

  const [header, payload] = token.split('.');
  const forged = `${header}.${payload}.${Buffer.from('forged-signature').toString('base64url')}`;
  secrets.push(forged);
  const refused = await call(
    'forged token',
    request(t.app).get('/api/v1/auth/me').set('Authorization', `Bearer ${forged}`),
    401,
  );
  expect(refused.headers['www-authenticate']).toMatch(/^Bearer/);
  await call(
    'wrong password',
    request(t.app).post('/api/v1/auth/token').send({ email, password: newPassword }),
    401,
  );
  await call(
    'schema violation',
    request(t.app).post('/api/v1/auth/register').send({ email, password: 'short' }),
    422,
  );
  await call(
    'unknown path with an email in the query',
    request(t.app).get(`/nowhere?email=${encodeURIComponent(email)}`),
    404,
  );

  // Operations other features add: exercised here once they are in the contract.
  const refreshToken = json.body.refresh_token as string | undefined;
  if (refreshToken) {
    secrets.push(refreshToken);
    const refreshed = await call(
      'refresh',
      request(t.app)
        .post('/api/v1/auth/token')
        .type('form')
        .send({ grant_type: 'refresh_token', refresh_token: refreshToken }),
      200,
    );
    secrets.push(refreshed.body.access_token as string, refreshed.body.refresh_token as string);
  }
  if (hasOperation('GET', '/api/v1/admin/users')) {
    await t.sql('UPDATE users SET is_admin = true WHERE email = $1', [email]);
    await call(
      'admin user search by email',
      request(t.app)
        .get('/api/v1/admin/users')
        .query({ email })
        .set('Authorization', `Bearer ${token}`),
      200,
    );
  }
  if (hasOperation('POST', '/api/v1/auth/logout')) {
    await call(
      'logout',
      request(t.app).post('/api/v1/auth/logout').set('Authorization', `Bearer ${token}`).send({}),
      204,
    );
  }

  console.log(`flow checked: ${exchanges.map((e) => `${e.what} ${e.status}`).join(', ')}`);
  const lines = parsed();
  for (const secret of secrets) {
    expect(t.logs.filter((l) => l.includes(secret))).toEqual([]);
  }
  expect(t.logs.filter((l) => l.includes('Bearer '))).toEqual([]);

  // Every exchange has its completion line, under the id the client saw.
  for (const ex of exchanges) {
    const mine = lines.filter((l) => l.req?.id === ex.requestId);
    expect({
      what: ex.what,
      completions: mine.filter((l) => l.res?.statusCode === ex.status).length,
    }).toEqual({
      what: ex.what,
      completions: 1,
    });
  }
  // And every request line belongs to one of them.
  const ids = new Set(exchanges.map((e) => e.requestId));
  const requestLines = lines.filter((l) => l.req !== undefined || l.res !== undefined);
  expect(requestLines.filter((l) => !ids.has(l.req?.id ?? ''))).toEqual([]);
  expect(lines.find((l) => l.req?.url?.startsWith('/nowhere'))?.req?.url).toBe('/nowhere?email=…');
});

test('when code logs through the shared logger during a request, then its line carries the request id', () => {
  const before = t.logs.length;
  runInRequestScope('scope-test-1', () =>
    t.deps.logger.info({ userId: 'u-1' }, 'something happened'),
  );
  t.deps.logger.info('outside any request');
  const [inside, outside] = t.logs.slice(before).map((l) => JSON.parse(l) as LogLine);
  expect(inside).toMatchObject({ msg: 'something happened', req: { id: 'scope-test-1' } });
  expect(outside?.msg).toBe('outside any request');
  expect(outside?.req).toBeUndefined();
});

test('when a log object carries credentials or an email, then they are redacted', () => {
  const before = t.logs.length;
  t.deps.logger.warn(
    {
      body: {
        email: 'ada@example.com',
        password: 'hunter22-secret',
        refresh_token: 'rt-secret-value',
      },
      err: {
        message: 'insert failed',
        sql: "INSERT INTO users VALUES ('ada@example.com')",
        parameters: ['ada@example.com'],
      },
    },
    'redaction check',
  );
  const line = t.logs.slice(before).join('\n');
  expect(line).toContain('redaction check');
  expect(line).toContain('insert failed');
  expect(line).not.toMatch(/ada@example\.com|hunter22-secret|rt-secret-value|INSERT INTO/);
});
