import { createSecretKey } from 'node:crypto';
import express from 'express';
import jwt from 'jsonwebtoken';
import type { HandlerMap } from '../../src/http/contract';
import { openApiRouter } from '../../src/http/router';
import { loadSpec } from '../../src/http/spec';
import type { Authenticator } from '../../src/sessions/authenticator';

/**
 * The bench's validator reference: Express 5 with express-openapi-validator over the service's
 * own spec, wired as the service wires it (request and response validation, the bearer
 * security handler, routing by operationId), whose `getCurrentUser` answers a constant user
 * after verifying the HS256 token. No database, cache, logging or metrics: it is the ceiling
 * the framework and the validator leave for /me on this machine.
 */
const key = createSecretKey(Buffer.from(process.env.JWT_SECRET_KEY ?? '', 'utf8'));
const user = {
  id: '00000000-0000-4000-8000-000000000000',
  email: 'me@bench.example',
  is_active: true,
  is_admin: false,
  email_verified: false,
  mfa_enabled: false,
  created_at: '2026-12-01T00:00:00.000Z',
};
const authenticator = {
  authenticate(header: string | undefined) {
    const claims = jwt.verify((header ?? '').replace(/^Bearer /, ''), key, {
      algorithms: ['HS256'],
    });
    return Promise.resolve({ kind: 'session', claims });
  },
} as unknown as Authenticator;
const handlers = new Proxy(
  {},
  { get: () => () => Promise.resolve({ status: 200, body: user }) },
) as HandlerMap;

const app = express();
app.get('/ready', (_req, res) => {
  res.json({ ready: true });
});
app.use(
  ...openApiRouter({
    spec: loadSpec(),
    port: 'api',
    handlers,
    authenticator,
    validateResponses: true,
  }),
);
app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
