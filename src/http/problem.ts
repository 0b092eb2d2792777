import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { ErrorRequestHandler, Response } from 'express';
import {
  AppError,
  BadRequestError,
  ErrorCode,
  ForbiddenError,
  HeadersTooLargeError,
  InternalError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors';
import type { Schemas } from './contract';
import { deadlinePassed } from './deadline';

/**
 * The one place where errors become HTTP responses (RFC 9457 problem+json): errors raised while
 * Express handles a request (`problemHandler`) and requests Node's HTTP parser refuses before
 * Express sees them (`answerClientError`). Both build the body with `problemBody`.
 */

const PROBLEM_BASE = 'https://docs.example.com/problems/';

export type Problem = Schemas['Problem'];

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
        return new BadRequestError(
          'The request path is not valid percent-encoding.',
          ErrorCode.malformedRequest,
        );
      }
      return new ValidationError(
        (err.errors ?? []).map((e) => ({
          path: normalisePath(e.path ?? '', err.path),
          message: e.message ?? 'is invalid',
        })),
      );
    case 401:
      return new UnauthorizedError(ErrorCode.missingToken, 'An access token is required.');
    case 403:
      return new ForbiddenError();
    case 404:
      return new NotFoundError('There is nothing at this path.');
    case 405:
      return new MethodNotAllowedError(err.headers?.Allow);
    case 413:
      return new PayloadTooLargeError();
    case 415:
      return new UnsupportedMediaTypeError(
        "The body's content type is not accepted by this operation.",
      );
    default:
      // Response validation failures and other validator faults: our bug, not the client's.
      return new InternalError();
  }
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

// A connection to PostgreSQL or Redis that failed, closed, or did not answer within its deadline.
const UNAVAILABLE_MESSAGE =
  /^(Connection is closed|Command timed out|Query read timeout|Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)|enableOfflineQueue/;
// SQLSTATE: 08xxx connection exceptions, 53300 too many connections, 57014 statement timeout,
// 57P01-57P03 server shutting down or starting, 25P03 idle-in-transaction timeout; or the
// socket's own error when the connection broke mid-query.
const UNAVAILABLE_CODE =
  /^(08...|53300|57014|57P0[123]|25P03|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)$/;

/** A dependency that does not answer is the client's 503, not our 500. */
function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { name, message } = err as { name?: string; message?: string };
  const original = (err as { original?: { code?: unknown; message?: unknown } }).original;
  const pgCode = typeof original?.code === 'string' ? original.code : '';
  const originalMessage = typeof original?.message === 'string' ? original.message : '';
  return (
    /^Sequelize(Connection\w*|Host\w*|AccessDenied|InvalidConnection)Error$/.test(name ?? '') ||
    UNAVAILABLE_CODE.test(pgCode) ||
    name === 'MaxRetriesPerRequestError' ||
    UNAVAILABLE_MESSAGE.test(message ?? '') ||
    UNAVAILABLE_MESSAGE.test(originalMessage)
  );
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isUnavailable(err)) return new ServiceUnavailableError();
  if (isEovError(err)) return fromEov(err);
  if (isBodyParserError(err)) {
    switch (err.type) {
      case 'entity.parse.failed':
        return new BadRequestError('The request body could not be parsed.');
      case 'entity.too.large':
        return new PayloadTooLargeError();
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return new UnsupportedMediaTypeError(
          "The body's character set or encoding is not supported.",
        );
      case 'request.aborted':
      case 'request.size.invalid':
      case 'stream.encoding.set':
        return new BadRequestError('The request body could not be read.');
    }
  }
  // Any other client error raised while reading the body (too many form fields, a corrupt
  // gzip stream, ...) carries an exposable 4xx status: it is the client's, never our 500.
  const status = clientErrorStatus(err);
  if (status === 413) return new PayloadTooLargeError();
  if (status === 415) {
    return new UnsupportedMediaTypeError("The body's content type or encoding is not supported.");
  }
  if (status !== undefined) return new BadRequestError('The request body could not be read.');
  return new InternalError();
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

/** The problem+json body of an error; the `type` URL is the documentation page of its code. */
export function problemBody(err: AppError, requestId: string): Problem {
  const body: Problem = {
    type: PROBLEM_BASE + err.code,
    title: err.title,
    status: err.status,
    detail: err.message,
    code: err.code,
    request_id: requestId,
  };
  if (err.errors) body.errors = err.errors;
  // Declared extension members (mfa_token) come first and can never replace a standard one.
  return { ...err.extensions, ...body };
}

/** The OAuth2 token endpoint (the spec's `oauth2` flow `tokenUrl`; a test keeps them equal). */
export const TOKEN_PATH = '/api/v1/auth/token';
const GRANT_TYPES = new Set(['password', 'refresh_token']);

/**
 * RFC 6749 section 5.2 members for a problem of the token endpoint, so that OAuth2 client
 * libraries see an OAuth2 error code. The statuses stay the API's own (401, 422, ...).
 */
export function oauth2ErrorOf(err: AppError, body: unknown): Schemas['OAuth2Error'] {
  const grantType = (body as { grant_type?: unknown } | undefined)?.grant_type;
  let error: Schemas['OAuth2Error']['error'];
  // 401 and 403 here mean the grant itself (credentials, refresh token) is refused.
  if (err.status === 401 || err.status === 403) error = 'invalid_grant';
  else if (err.status === 429 || err.status === 503) error = 'temporarily_unavailable';
  else if (err.status >= 500) error = 'server_error';
  else if (
    err.code === ErrorCode.validationFailed &&
    typeof grantType === 'string' &&
    !GRANT_TYPES.has(grantType)
  ) {
    error = 'unsupported_grant_type';
  } else error = 'invalid_request';
  const description =
    error === 'unsupported_grant_type'
      ? 'Only the password and refresh_token grant types are supported.'
      : err.message;
  return { error, error_description: description };
}

export function sendProblem(
  res: Response,
  err: AppError,
  requestId: string,
  extra: Partial<Schemas['OAuth2Error']> = {},
): void {
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res
    .status(err.status)
    .type('application/problem+json')
    .send(JSON.stringify({ ...problemBody(err, requestId), ...extra }));
}

/**
 * Requests Node's parser refuses (an unknown method, a malformed or oversized header) never
 * reach Express; answer them as problem+json with a request id too, then close.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const appErr =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new HeadersTooLargeError()
      : new BadRequestError('The request could not be parsed.', ErrorCode.malformedRequest);
  const requestId = randomUUID();
  const body = JSON.stringify(problemBody(appErr, requestId));
  socket.end(
    `HTTP/1.1 ${appErr.status} ${appErr.title}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\n` +
      'X-Content-Type-Options: nosniff\r\n' +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** What the request's own log line says about a refusal (see app.ts); never a stack. */
export interface ProblemLog {
  level: 'info' | 'warn' | 'error';
  code: string;
  cause?: { name: string; message: string };
}

/**
 * Expected refusals are quiet: a 4xx is the client's business (info), a 503 or 502 for
 * capacity or a dependency is worth a warning. Only a bug (500), or a condition an operator
 * must fix (a stored secret that no key opens), is an error.
 */
function problemLog(appErr: AppError, err: unknown): ProblemLog {
  const cause = appErr.cause ?? (err instanceof AppError ? undefined : err);
  const level =
    appErr.status === 500 || appErr.code === ErrorCode.storedSecretUnreadable
      ? 'error'
      : appErr.status >= 500
        ? 'warn'
        : 'info';
  const log: ProblemLog = { level, code: appErr.code };
  // The client's detail stays generic; the cause tells the operator what to fix.
  if (appErr.status >= 500 && cause instanceof Error) {
    log.cause = { name: cause.name, message: cause.message };
  }
  return log;
}

export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  if (deadlinePassed(res)) {
    // Already answered 503 by the request deadline; the late failure is expected.
    req.log?.info({ err: { name: (err as Error).name } }, 'late failure after the deadline');
    return;
  }
  // A failed bearer check stashes the precise reason; eov only passes on a generic 401.
  const appErr = req.authFailure ?? toAppError(err);
  // A bug: the one case whose stack is worth a line of its own.
  if (appErr.status === 500) req.log?.error({ err }, 'unhandled error');
  res.locals.problem = problemLog(appErr, err);
  if (res.headersSent) {
    res.end();
    return;
  }
  const tokenEndpoint = req.method === 'POST' && req.path === TOKEN_PATH;
  sendProblem(res, appErr, req.id as string, tokenEndpoint ? oauth2ErrorOf(appErr, req.body) : {});
};
