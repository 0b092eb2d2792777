import type { ErrorRequestHandler, Response } from 'express';
import { AppError, ErrorCode, ServiceUnavailableError, type FieldError } from '../errors';

/** The one place where errors become HTTP responses (RFC 9457 problem+json). */

const PROBLEM_BASE = 'https://docs.example.com/problems/';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  request_id: string;
  errors?: FieldError[];
}

interface EovError {
  status: number;
  name?: string;
  message?: string;
  path?: string;
  headers?: Record<string, string>;
  errors?: { path?: string; message?: string }[];
}

interface BodyParserError {
  type: string;
  status?: number;
  limit?: number;
}

function isEovError(err: unknown): err is EovError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as EovError).status === 'number' &&
    Array.isArray((err as EovError).errors)
  );
}

function isBodyParserError(err: unknown): err is BodyParserError {
  return (
    typeof err === 'object' && err !== null && typeof (err as BodyParserError).type === 'string'
  );
}

function fromEov(err: EovError): AppError {
  switch (err.status) {
    case 400:
      if (err.errors?.some((e) => /malformed uri/i.test(e.message ?? ''))) {
        return new AppError(
          400,
          ErrorCode.malformedRequest,
          'Bad Request',
          'The request path is not valid percent-encoding.',
        );
      }
      return new AppError(
        422,
        ErrorCode.validationFailed,
        'Unprocessable Content',
        'The request does not match the schema.',
        {
          errors: (err.errors ?? []).map((e) => ({
            path: normalisePath(e.path ?? '', err.path),
            message: e.message ?? 'is invalid',
          })),
        },
      );
    case 401:
      return new AppError(
        401,
        ErrorCode.missingToken,
        'Unauthorized',
        'An access token is required.',
        {
          headers: { 'WWW-Authenticate': 'Bearer' },
        },
      );
    case 403:
      return new AppError(403, ErrorCode.forbidden, 'Forbidden', 'You are not allowed to do this.');
    case 404:
      return new AppError(404, ErrorCode.notFound, 'Not Found', 'There is nothing at this path.');
    case 405:
      return new AppError(
        405,
        ErrorCode.methodNotAllowed,
        'Method Not Allowed',
        'This method is not allowed on this path.',
        {
          headers: err.headers?.Allow ? { Allow: err.headers.Allow.toUpperCase() } : {},
        },
      );
    case 413:
      return payloadTooLarge();
    case 415:
      return new AppError(
        415,
        ErrorCode.unsupportedMediaType,
        'Unsupported Media Type',
        "The body's content type is not accepted by this operation.",
      );
    default:
      // Response validation failures and other validator faults: our bug, not the client's.
      return internal();
  }
}

function payloadTooLarge(): AppError {
  return new AppError(
    413,
    ErrorCode.payloadTooLarge,
    'Content Too Large',
    'The request body is larger than 65536 bytes.',
  );
}

function internal(): AppError {
  return new AppError(
    500,
    ErrorCode.internalError,
    'Internal Server Error',
    'Something went wrong on our side. Quote the request id if you report it.',
  );
}

const REQUEST_PARTS = /^\/(body|query|path|headers|cookies)(?=\/|$)/;

/**
 * eov reports `/body/email`, `.body.email`, a bare `/username` for form fields, or the request
 * path itself for a whole-body failure (no oneOf branch matched); clients always get a JSON
 * Pointer prefixed with the part of the request it points into.
 */
function normalisePath(p: string, requestPath: string | undefined): string {
  if (p === '' || p === requestPath) return '/body';
  const pointer = p.startsWith('/') ? p : '/' + p.replace(/^\./, '').replace(/\./g, '/');
  // eov calls path parameters `params`; the documented prefix is `/path`.
  const renamed = pointer.replace(/^\/params(?=\/|$)/, '/path');
  return REQUEST_PARTS.test(renamed) ? renamed : '/body' + renamed;
}

/** A dependency that does not answer is the client's 503, not our 500. */
function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { name, message } = err as { name?: string; message?: string };
  const pgCode = (err as { original?: { code?: string } }).original?.code;
  return (
    /^Sequelize(Connection\w*|Host\w*|AccessDenied|InvalidConnection)Error$/.test(name ?? '') ||
    pgCode === '57014' || // statement timeout
    pgCode === '57P01' || // admin shutdown
    name === 'MaxRetriesPerRequestError' ||
    /^Connection is closed|enableOfflineQueue/.test(message ?? '')
  );
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isUnavailable(err)) return new ServiceUnavailableError();
  if (isEovError(err)) return fromEov(err);
  if (isBodyParserError(err)) {
    switch (err.type) {
      case 'entity.parse.failed':
        return new AppError(
          400,
          ErrorCode.malformedBody,
          'Bad Request',
          'The request body could not be parsed.',
        );
      case 'entity.too.large':
        return payloadTooLarge();
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return new AppError(
          415,
          ErrorCode.unsupportedMediaType,
          'Unsupported Media Type',
          "The body's character set or encoding is not supported.",
        );
      case 'request.aborted':
      case 'request.size.invalid':
      case 'stream.encoding.set':
        return new AppError(
          400,
          ErrorCode.malformedBody,
          'Bad Request',
          'The request body could not be read.',
        );
    }
  }
  // Any other client error raised while reading the body (too many form fields, a corrupt
  // gzip stream, ...) carries an exposable 4xx status: it is the client's, never our 500.
  const status = clientErrorStatus(err);
  if (status === 413) return payloadTooLarge();
  if (status === 415) {
    return new AppError(
      415,
      ErrorCode.unsupportedMediaType,
      'Unsupported Media Type',
      "The body's content type or encoding is not supported.",
    );
  }
  if (status !== undefined) {
    return new AppError(
      400,
      ErrorCode.malformedBody,
      'Bad Request',
      'The request body could not be read.',
    );
  }
  return internal();
}

/** The status of an http-errors style error that is safe to show (4xx, `expose: true`). */
function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status, statusCode, expose } = err as {
    status?: unknown;
    statusCode?: unknown;
    expose?: unknown;
  };
  const code = typeof status === 'number' ? status : statusCode;
  return expose === true && typeof code === 'number' && code >= 400 && code < 500
    ? code
    : undefined;
}

export function sendProblem(res: Response, err: AppError, requestId: string): void {
  const body: Problem = {
    type: PROBLEM_BASE + err.code,
    title: err.title,
    status: err.status,
    detail: err.message,
    code: err.code,
    request_id: requestId,
  };
  if (err.errors) body.errors = err.errors;
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.status).type('application/problem+json').send(JSON.stringify(body));
}

export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  // A failed bearer check stashes the precise reason; eov only passes on a generic 401.
  const appErr = req.authFailure ?? toAppError(err);
  if (appErr.status === 500) req.log?.error({ err }, 'unhandled error');
  else if (appErr.status === 503 && !(err instanceof AppError)) {
    req.log?.warn(
      { err: { name: (err as Error).name, message: (err as Error).message } },
      'dependency unavailable',
    );
  } else if (appErr.status >= 500 && appErr.cause instanceof Error) {
    // The client's detail stays generic; the cause tells the operator what to fix.
    req.log?.error(
      { code: appErr.code, err: { name: appErr.cause.name, message: appErr.cause.message } },
      'request failed on a server-side condition',
    );
  }
  if (res.headersSent) {
    res.end();
    return;
  }
  sendProblem(res, appErr, req.id as string);
};
