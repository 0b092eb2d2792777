import type { RequestHandler, Request, Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { OpenAPIV3 } from 'express-openapi-validator/dist/framework/types';
import { ValidationError } from '../errors';
import type { Authenticator, AuthRequirements } from '../sessions/authenticator';
import type { HandlerMap, OperationId, RequestContext } from './contract';
import { deadlinePassed } from './deadline';
import { toAppError } from './problem';
import type { Port, SpecDocument } from './spec';

export interface RouterOptions {
  spec: SpecDocument;
  port: Port;
  handlers: HandlerMap;
  authenticator: Authenticator;
  validateResponses: boolean;
  /** Awaited after every non-GET operation, before its answer (the user-state cache's sync). */
  afterWrite?: () => Promise<void>;
}

export function requestContext(req: Request): RequestContext {
  return {
    requestId: req.id as string,
    ip: req.ip ?? req.socket.remoteAddress ?? 'unknown',
    contentType: req.headers['content-type']?.split(';')[0]?.trim().toLowerCase(),
    userAgent: req.headers['user-agent'],
    log: req.log,
  };
}

type AnyHandler = (input: {
  body: unknown;
  params: unknown;
  query: unknown;
  ctx: RequestContext;
  auth: unknown;
}) => Promise<{
  status: number;
  body?: unknown;
  contentType?: string | number | symbol;
  headers?: Record<string, string>;
}>;

/** JSON Pointers of the numbers under `value` that are not finite. */
function nonFinite(value: unknown, pointer: string, found: string[] = []): string[] {
  if (typeof value === 'number' && !Number.isFinite(value)) found.push(pointer);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      nonFinite(v, `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, found);
    }
  }
  return found;
}

/**
 * The validator coerces query and path parameters with Ajv's coerceTypes, which turns
 * `Infinity`, `-Infinity` and out-of-range literals such as `1e400` into non-finite numbers
 * (`x == +x` holds for them) and then skips `minimum`/`maximum`, which Ajv only checks for finite
 * numbers. No operation wants a non-finite number, so every coerced request is checked here
 * once, for every parameter present and future, before any handler sees it.
 */
function assertFiniteNumbers(req: Request): void {
  const found = [
    ...nonFinite(req.query, '/query'),
    ...nonFinite(req.params, '/path'),
    ...nonFinite(req.body, '/body'),
  ];
  if (found.length > 0) {
    throw new ValidationError(found.map((path) => ({ path, message: 'must be a finite number' })));
  }
}

function bind(
  operationId: string,
  handler: AnyHandler,
  afterWrite: (() => Promise<void>) | undefined,
): RequestHandler {
  const named = {
    [operationId]: async (req: Request, res: Response) => {
      assertFiniteNumbers(req);
      let reply: Awaited<ReturnType<AnyHandler>>;
      try {
        reply = await handler({
          body: req.body,
          params: req.params,
          query: req.query,
          ctx: requestContext(req),
          auth: req.auth ?? null,
        });
      } finally {
        // Whatever a write changed (a session ended, even on the way to a refusal) is in this
        // replica's cache before the client hears back.
        if (afterWrite && req.method !== 'GET') await afterWrite();
      }
      // The request deadline already answered 503; this late reply has nowhere to go.
      if (deadlinePassed(res)) return;
      for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
      res.status(reply.status);
      const type = (reply.contentType as string | undefined) ?? 'application/json';
      if (reply.body === undefined) res.end();
      // res.json() is what eov's response validation sees.
      else if (type === 'application/json') res.json(reply.body);
      else res.type(type).send(reply.body);
    },
  };
  return named[operationId]!;
}

type SecurityRequirement = Record<string, string[]>;

/**
 * What an operation's security list asks for. Which operations accept an app token is read
 * from the spec itself (the `appToken` scheme), so the docs and the behaviour cannot differ.
 */
export function authRequirements(security: SecurityRequirement[] | undefined): AuthRequirements {
  const list = security ?? [];
  return {
    admin: list.some((r) => r.bearerAuth?.includes('admin') || r.oauth2?.includes('admin')),
    appToken: list.some((r) => 'appToken' in r),
  };
}

/**
 * Secured operations list `bearerAuth` and `oauth2` as alternatives for the same
 * `Authorization: Bearer` token, and `appToken` where an app token is accepted. eov runs every
 * alternative's handler, so the check runs once per request, decided from the operation's
 * whole security list, and every handler shares its outcome.
 */
function authenticateOnce(authenticator: Authenticator, req: Request): Promise<boolean> {
  const schema = (req as { openapi?: { schema?: { security?: SecurityRequirement[] } } }).openapi
    ?.schema;
  req.authCheck ??= authenticator
    .authenticate(req.headers.authorization, authRequirements(schema?.security))
    .then(
      (auth) => {
        req.auth = auth;
        return true;
      },
      (err: unknown) => {
        req.authFailure = toAppError(err);
        throw err;
      },
    );
  return req.authCheck;
}

/**
 * express-openapi-validator wired to the spec: request/response validation, bearer security,
 * and routing by operationId. The resolver throws at boot when the spec names an operation
 * without a handler; the HandlerMap type makes the reverse a compile error.
 */
export function openApiRouter(opts: RouterOptions): RequestHandler[] {
  const apiSpec = opts.spec.forPort(opts.port) as unknown as OpenAPIV3.DocumentV3_1;
  return OpenApiValidator.middleware({
    apiSpec,
    validateApiSpec: true,
    validateRequests: { allErrors: true },
    validateResponses: opts.validateResponses ? { allErrors: true } : false,
    validateFormats: true,
    ajvFormats: { mode: 'fast' },
    ignoreUndocumented: false,
    validateSecurity: {
      handlers: {
        bearerAuth: (req) => authenticateOnce(opts.authenticator, req),
        // The same bearer token, described as the OAuth2 password flow that issues it.
        oauth2: (req) => authenticateOnce(opts.authenticator, req),
        appToken: (req) => authenticateOnce(opts.authenticator, req),
      },
    },
    operationHandlers: {
      basePath: '',
      resolver: (_basePath, route, apiDoc) => {
        const item = apiDoc.paths![route.openApiRoute] as Record<string, { operationId?: string }>;
        const operationId = item[route.method.toLowerCase()]?.operationId as
          OperationId | undefined;
        const handler = operationId ? opts.handlers[operationId] : undefined;
        if (!operationId || !handler) {
          throw new Error(`no handler for ${route.method} ${route.openApiRoute} (${operationId})`);
        }
        return bind(operationId, handler as unknown as AnyHandler, opts.afterWrite);
      },
    },
  });
}
