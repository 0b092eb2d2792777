/**
 * The stable, snake_case error codes clients branch on. Adding one is an API change:
 * document it in the spec's Problem schema description as well.
 */
export const ErrorCode = {
  malformedBody: 'malformed_body',
  /** Refused by the HTTP parser itself (bad request line or header). */
  malformedRequest: 'malformed_request',
  headersTooLarge: 'headers_too_large',
  payloadTooLarge: 'payload_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  validationFailed: 'validation_failed',
  notFound: 'not_found',
  methodNotAllowed: 'method_not_allowed',
  missingToken: 'missing_token',
  invalidToken: 'invalid_token',
  invalidCredentials: 'invalid_credentials',
  invalidRefreshToken: 'invalid_refresh_token',
  refreshTokenReused: 'refresh_token_reused',
  invalidCurrentPassword: 'invalid_current_password',
  forbidden: 'forbidden',
  emailTaken: 'email_taken',
  conflict: 'conflict',
  lastAdmin: 'last_admin',
  rateLimited: 'rate_limited',
  serviceUnavailable: 'service_unavailable',
  hashCapacityExceeded: 'hash_capacity_exceeded',
  storedSecretUnreadable: 'stored_secret_unreadable',
  internalError: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode] | (string & {});

export interface FieldError {
  path: string;
  message: string;
}

/** Base of every error the service raises on purpose; anything else is a bug (500). */
export class AppError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly title: string;
  readonly headers: Record<string, string>;
  readonly errors?: FieldError[];

  constructor(
    status: number,
    code: ErrorCode,
    title: string,
    detail: string,
    opts: { headers?: Record<string, string>; errors?: FieldError[]; cause?: unknown } = {},
  ) {
    super(detail, { cause: opts.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.title = title;
    this.headers = opts.headers ?? {};
    this.errors = opts.errors;
  }
}

export class ValidationError extends AppError {
  constructor(errors: FieldError[], detail = 'The request does not match the schema.') {
    super(422, ErrorCode.validationFailed, 'Unprocessable Content', detail, { errors });
  }
}

export class UnauthorizedError extends AppError {
  constructor(
    code: ErrorCode = ErrorCode.invalidToken,
    detail = 'The access token is missing or invalid.',
  ) {
    super(401, code, 'Unauthorized', detail, {
      headers: {
        'WWW-Authenticate':
          code === ErrorCode.missingToken ? 'Bearer' : 'Bearer error="invalid_token"',
      },
    });
  }
}

export class InvalidCredentialsError extends AppError {
  constructor() {
    super(
      401,
      ErrorCode.invalidCredentials,
      'Unauthorized',
      'The email or password is incorrect.',
      {
        headers: { 'WWW-Authenticate': 'Bearer' },
      },
    );
  }
}

export class ForbiddenError extends AppError {
  constructor(detail = 'You are not allowed to do this.', code: ErrorCode = ErrorCode.forbidden) {
    super(403, code, 'Forbidden', detail);
  }
}

export class NotFoundError extends AppError {
  constructor(detail = 'The resource does not exist.') {
    super(404, ErrorCode.notFound, 'Not Found', detail);
  }
}

export class ConflictError extends AppError {
  constructor(code: ErrorCode, detail: string) {
    super(409, code, 'Conflict', detail);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(retryAfterSeconds: number, detail = 'Too many requests; try again later.') {
    super(429, ErrorCode.rateLimited, 'Too Many Requests', detail, {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    });
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(
    detail = 'A dependency is unavailable; try again shortly.',
    code: ErrorCode = ErrorCode.serviceUnavailable,
    retryAfterSeconds = 1,
  ) {
    super(503, code, 'Service Unavailable', detail, {
      headers: { 'Retry-After': String(retryAfterSeconds) },
    });
  }
}

/**
 * A secret stored encrypted does not open with the configured keys (its key was removed before
 * the value was re-encrypted, or the row was tampered with): an operator must act, retrying won't.
 * The cause says which key id was missing; it never holds secret material.
 */
export class StoredSecretUnreadableError extends AppError {
  constructor(detail: string, cause?: unknown) {
    super(503, ErrorCode.storedSecretUnreadable, 'Service Unavailable', detail, {
      headers: { 'Retry-After': '60' },
      cause,
    });
  }
}
