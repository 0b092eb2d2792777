import express, { type Express } from 'express';
import pinoHttp from 'pino-http';
import { REDOC_ASSET_PATH, redocAsset } from './contract/contract.handlers';
import type { Deps } from './deps';
import { NotFoundError } from './errors';
import { cors } from './http/cors';
import { createHandlers } from './http/handlers';
import { requestMetrics } from './http/metrics-middleware';
import { noStore, requestId, securityHeaders } from './http/middleware';
import { problemHandler } from './http/problem';
import { openApiRouter } from './http/router';
import type { Port } from './http/spec';
import { httpSerializers, runInRequestScope } from './logger';

const BODY_LIMIT = '64kb';

function base(deps: Deps, port: Port): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', deps.config.trustProxy);
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: requestId,
      customProps: () => ({ port }),
      // Health probes and scrapes would drown everything else.
      autoLogging: { ignore: (req) => port === 'health' || req.url === '/health' },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      serializers: httpSerializers,
    }),
  );
  // Whatever logs during the request (services included) tags its lines with the request id.
  app.use((req, _res, next) => runInRequestScope(req.id as string, next));
  app.use(requestMetrics(deps.metrics));
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
  app.use(express.json({ limit: BODY_LIMIT, type: ['application/json', 'application/*+json'] }));
  app.use(express.urlencoded({ extended: false, limit: BODY_LIMIT, parameterLimit: 50 }));
  app.get(REDOC_ASSET_PATH, redocAsset);
  return finish(app, deps, 'api');
}

/** Health, readiness and metrics (port 8005), for the orchestrator and Prometheus only. */
export function createHealthApp(deps: Deps): Express {
  return finish(base(deps, 'health'), deps, 'health');
}
