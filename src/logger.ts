import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Credential-bearing fields are censored wherever they appear in a log object, and so are
 * emails (lines name users by id). Error fields that can quote SQL, bound values or a raw
 * request body are dropped too: a failed INSERT would otherwise echo the row it tried to write.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.authorization',
  '*.cookie',
  '*.password',
  '*.current_password',
  '*.new_password',
  '*.hashed_password',
  '*.hashedPassword',
  '*.access_token',
  '*.refresh_token',
  '*.access_token_secret',
  '*.oauth_token_secret',
  '*.oauth_verifier',
  '*.token',
  '*.secret',
  '*.consumer_secret',
  '*.mfa_token',
  '*.recovery_code',
  '*.email',
  '*.username',
  'password',
  'token',
  'secret',
  'email',
  'err.sql',
  'err.parameters',
  'err.original',
  'err.parent',
  'err.fields',
  'err.errors',
  'err.detail',
  'err.body',
];

/** The request a piece of work belongs to, so that any logger used during it can say so. */
const requestScope = new AsyncLocalStorage<{ id: string }>();

export function runInRequestScope<T>(id: string, fn: () => T): T {
  return requestScope.run({ id }, fn);
}

/** The id of the request the current work belongs to; undefined for background work. */
export function currentRequestId(): string | undefined {
  return requestScope.getStore()?.id;
}

const REQUEST_BOUND = Symbol('requestBound');

/** Marks a request's own child logger, whose bindings already say which request it is. */
export function markRequestBound(logger: Logger): Logger {
  (logger as Logger & { [REQUEST_BOUND]?: true })[REQUEST_BOUND] = true;
  return logger;
}

/**
 * Lines logged during a request through a logger that is not the request's own (a service
 * holding deps.logger, say) still carry `req.id`; the request's child logger already has it.
 * A line that names its request itself (the access line) keeps its own `req`: the mixin's
 * fields are merged under the line's.
 */
function requestIdMixin(_merge: object, _level: number, logger: Logger): object {
  const scope = requestScope.getStore();
  if (!scope || (logger as Logger & { [REQUEST_BOUND]?: true })[REQUEST_BOUND]) return {};
  return { req: { id: scope.id } };
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'auth' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      mixin: requestIdMixin,
    },
    destination,
  );
}

/** Query values can hold an email (admin filters) or a token: keep the parameter names only. */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const names = [...new URLSearchParams(url.slice(q + 1)).keys()];
  return `${url.slice(0, q)}?${names.map((n) => `${encodeURIComponent(n)}=…`).join('&')}`;
}
