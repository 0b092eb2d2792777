import type { RequestHandler, Request, Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { OpenAPIV3 } from 'express-openapi-validator/dist/framework/types';
import type { Authenticator } from '../sessions/authenticator';
import type { HandlerMap, OperationId, RequestContext } from './contract';
import { toAppError } from './problem';
import type { Port, SpecDocument } from './spec';

export interface RouterOptions {
  spec: SpecDocument;
  port: Port;
  handlers: HandlerMap;
  authenticator: Authenticator;
  validateResponses: boolean;
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

function bind(operationId: string, handler: AnyHandler): RequestHandler {
  const named = {
    [operationId]: async (req: Request, res: Response) => {
      const reply = await handler({
        body: req.body,
        params: req.params,
        query: req.query,
        ctx: requestContext(req),
        auth: req.auth ?? null,
      });
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
        bearerAuth: async (req, scopes) => {
          try {
            req.auth = await opts.authenticator.authenticate(req.headers.authorization, {
              admin: scopes.includes('admin'),
            });
            return true;
          } catch (err) {
            req.authFailure = toAppError(err);
            throw err;
          }
        },
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
        return bind(operationId, handler as unknown as AnyHandler);
      },
    },
  });
}
