import express, { type Express } from 'express';
import type { Deps } from './deps';
import { NotFoundError } from './errors';
import { accessLog } from './http/access-log';
import { cors } from './http/cors';
import { requestDeadline } from './http/deadline';
import { createHandlers } from './http/handlers';
import { requestMetrics } from './http/metrics-middleware';
import { noStore, securityHeaders } from './http/middleware';
import { problemHandler } from './http/problem';
import { openApiRouter } from './http/router';
import type { Port } from './http/spec';
import { runInRequestScope } from './logger';

const BODY_LIMIT = '64kb';

function base(deps: Deps, port: Port): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', deps.config.trustProxy);
  app.use(accessLog(deps.logger, port));
  app.use(requestDeadline());
  // Whatever logs during the request (services included) tags its lines with the request id.
  app.use((req, _res, next) => runInRequestScope(req.id as string, next));
  app.use(requestMetrics(deps.metrics));
  // HEAD is GET without a body (Node drops it); the spec declares GET only.
  app.use((req, _res, next) => {
    if (req.method === 'HEAD') req.method = 'GET';
    next();
  });
  app.use(securityHeaders);
  return app;
}

function finish(app: Express, deps: Deps, port: Port): Express {
  app.use(
    ...openApiRouter({
      spec: deps.spec,
      port,
      handlers: createHandlers(deps),
      authenticator: deps.authenticator,
      validateResponses: deps.config.validateResponses,
      afterWrite: deps.userStateListener ? () => deps.userStateListener!.sync() : undefined,
    }),
  );
  app.use((_req, _res, next) => next(new NotFoundError('There is nothing at this path.')));
  app.use(problemHandler);
  return app;
}

/** The public API (port 8004). No listen, no process.env: the entry file owns those. */
export function createApp(deps: Deps): Express {
  const app = base(deps, 'api');
  // Before the validator, which would answer a preflight OPTIONS with 405.
  app.use(cors(deps.config.corsOrigins));
  app.use('/api', noStore);
  // strict: false lets well-formed JSON that is not an object reach the validator (422, not 400).
  app.use(
    express.json({
      limit: BODY_LIMIT,
      strict: false,
      type: ['application/json', 'application/*+json'],
    }),
  );
  app.use(express.urlencoded({ extended: false, limit: BODY_LIMIT, parameterLimit: 50 }));
  return finish(app, deps, 'api');
}

/** Health, readiness and metrics (port 8005), for the orchestrator and Prometheus only. */
export function createHealthApp(deps: Deps): Express {
  return finish(base(deps, 'health'), deps, 'health');
}
