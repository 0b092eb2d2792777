import type { ServerResponse } from 'node:http';
import express, { type Express, type Response } from 'express';
import pinoHttp from 'pino-http';
import type { Deps } from './deps';
import { NotFoundError } from './errors';
import { cors } from './http/cors';
import { requestDeadline } from './http/deadline';
import { createHandlers } from './http/handlers';
import { requestMetrics } from './http/metrics-middleware';
import { noStore, requestId, securityHeaders } from './http/middleware';
import { problemHandler, type ProblemLog } from './http/problem';
import { openApiRouter } from './http/router';
import type { Port } from './http/spec';
import { httpSerializers, runInRequestScope } from './logger';

const BODY_LIMIT = '64kb';

function problemOf(res: ServerResponse): ProblemLog | undefined {
  return (res as Partial<Response>).locals?.problem as ProblemLog | undefined;
}

function withProblem(res: ServerResponse, val: object): object {
  const problem = problemOf(res);
  if (!problem) return val;
  const { level: _level, ...rest } = problem;
  return { ...val, problem: rest };
}

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
      // A refusal's level was decided where the error became a response; one short line
      // each, with the problem code and never a stack (pino-http would make one up for 5xx).
      customLogLevel: (_req, res, err) =>
        problemOf(res)?.level ?? (err || res.statusCode >= 500 ? 'error' : 'info'),
      customSuccessObject: (_req, res, val: object) => withProblem(res, val),
      customErrorObject: (_req, res, _err, val: object) => {
        const { err: _dropped, ...rest } = val as { err?: unknown };
        return withProblem(res, rest);
      },
      customErrorMessage: (_req, res) => `request failed with status ${res.statusCode}`,
      serializers: httpSerializers,
    }),
  );
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
