import type { components } from '../generated/openapi';

/**
 * The stable, snake_case error codes clients branch on: the spec's closed `Problem.code` enum.
 * A new code: add it to the spec enum (with its description), regenerate (`npm run generate`),
 * then name it here; a code the spec does not list does not compile.
 */
export type ErrorCode = components['schemas']['Problem']['code'];

export const ErrorCode = {
  malformedBody: 'malformed_body',
  /** Refused by the HTTP parser itself (bad request line or header), or a path not percent-encoded. */
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
  appTokenNotAllowed: 'app_token_not_allowed',
  emailTaken: 'email_taken',
  conflict: 'conflict',
  lastAdmin: 'last_admin',
  appTokenLimit: 'app_token_limit',
  rateLimited: 'rate_limited',
  serviceUnavailable: 'service_unavailable',
  hashCapacityExceeded: 'hash_capacity_exceeded',
  storedSecretUnreadable: 'stored_secret_unreadable',
  discogsNotConfigured: 'discogs_not_configured',
  discogsUnavailable: 'discogs_unavailable',
  invalidOAuthState: 'invalid_oauth_state',
  oauthStateMismatch: 'oauth_state_mismatch',
  discogsVerifierRejected: 'discogs_verifier_rejected',
  mailNotConfigured: 'mail_not_configured',
  invalidResetToken: 'invalid_reset_token',
  invalidVerificationToken: 'invalid_verification_token',
  emailNotVerified: 'email_not_verified',
  emailAlreadyVerified: 'email_already_verified',
  mfaRequired: 'mfa_required',
  invalidMfaToken: 'invalid_mfa_token',
  invalidMfaCode: 'invalid_mfa_code',
  mfaAlreadyEnabled: 'mfa_already_enabled',
  mfaSetupRequired: 'mfa_setup_required',
  mfaNotEnabled: 'mfa_not_enabled',
  internalError: 'internal_error',
} as const satisfies Record<string, ErrorCode>;

/**
 * The problem `title` of each status the service answers with: titles are never typed by hand,
 * so one status always has one title. A new status needs its line here.
 */
export const STATUS_TITLES = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
} as const;
export type ProblemStatus = keyof typeof STATUS_TITLES;

export interface FieldError {
  path: string;
  message: string;
}

/**
 * Base of every error the service raises on purpose; anything else is a bug (500). Raise one of
 * the subclasses below (one per status); the title follows from the status.
 */
export class AppError extends Error {
  readonly status: ProblemStatus;
  readonly code: ErrorCode;
  readonly title: string;
  readonly headers: Record<string, string>;
  readonly errors?: FieldError[];
  /** Extra members the spec declares for this problem (e.g. `mfa_token`); never a field above. */
  readonly extensions?: Record<string, string | number>;

  constructor(
    status: ProblemStatus,
    code: ErrorCode,
    detail: string,
    opts: {
      headers?: Record<string, string>;
      errors?: FieldError[];
      extensions?: Record<string, string | number>;
      cause?: unknown;
    } = {},
  ) {
    super(detail, { cause: opts.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.title = STATUS_TITLES[status];
    this.headers = opts.headers ?? {};
    this.errors = opts.errors;
    this.extensions = opts.extensions;
  }
}

/**
 * 400: a body that cannot be parsed or read, a request the HTTP parser refuses, a Discogs
 * authorisation that cannot be completed (its state, or the verifier Discogs refused), or a
 * mailed token that is unknown, spent or expired.
 */
export class BadRequestError extends AppError {
  constructor(
    detail: string,
    code:
      | typeof ErrorCode.malformedBody
      | typeof ErrorCode.malformedRequest
      | typeof ErrorCode.invalidOAuthState
      | typeof ErrorCode.discogsVerifierRejected
      | typeof ErrorCode.invalidResetToken
      | typeof ErrorCode.invalidVerificationToken = ErrorCode.malformedBody,
  ) {
    super(400, code, detail);
  }
}

export class ValidationError extends AppError {
  constructor(errors: FieldError[], detail = 'The request does not match the schema.') {
    super(422, ErrorCode.validationFailed, detail, { errors });
  }
}

export class UnauthorizedError extends AppError {
  constructor(
    code: ErrorCode = ErrorCode.invalidToken,
    detail = 'The access token is missing or invalid.',
  ) {
    super(401, code, detail, {
      headers: {
        'WWW-Authenticate':
          code === ErrorCode.missingToken ? 'Bearer' : 'Bearer error="invalid_token"',
      },
    });
  }
}

export class InvalidCredentialsError extends AppError {
  constructor() {
    super(401, ErrorCode.invalidCredentials, 'The email or password is incorrect.', {
      headers: { 'WWW-Authenticate': 'Bearer' },
    });
  }
}

export class ForbiddenError extends AppError {
  constructor(detail = 'You are not allowed to do this.', code: ErrorCode = ErrorCode.forbidden) {
    super(403, code, detail);
  }
}

export class NotFoundError extends AppError {
  constructor(detail = 'The resource does not exist.') {
    super(404, ErrorCode.notFound, detail);
  }
}

export class MethodNotAllowedError extends AppError {
  /** `allow`: the methods the path accepts, for the `Allow` header (omitted when unknown). */
  constructor(allow: string | undefined) {
    super(405, ErrorCode.methodNotAllowed, 'This method is not allowed on this path.', {
      headers: allow ? { Allow: allow.toUpperCase() } : {},
    });
  }
}

export class ConflictError extends AppError {
  constructor(code: ErrorCode, detail: string) {
    super(409, code, detail);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor() {
    super(413, ErrorCode.payloadTooLarge, 'The request body is larger than 65536 bytes.');
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(detail: string) {
    super(415, ErrorCode.unsupportedMediaType, detail);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(retryAfterSeconds: number, detail = 'Too many requests; try again later.') {
    super(429, ErrorCode.rateLimited, detail, {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    });
  }
}

export class HeadersTooLargeError extends AppError {
  constructor() {
    super(431, ErrorCode.headersTooLarge, 'The request headers are too large.');
  }
}

/** 500: a bug. The detail never says more; the log has the cause. */
export class InternalError extends AppError {
  constructor() {
    super(
      500,
      ErrorCode.internalError,
      'Something went wrong on our side. Quote the request id if you report it.',
    );
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(
    detail = 'A dependency is unavailable; try again shortly.',
    code: ErrorCode = ErrorCode.serviceUnavailable,
    retryAfterSeconds = 1,
  ) {
    super(503, code, detail, {
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
    super(503, ErrorCode.storedSecretUnreadable, detail, {
      headers: { 'Retry-After': '60' },
      cause,
    });
  }
}

/** 502: Discogs failed, was too slow or answered nonsense. Never carries its answer. */
export class BadGatewayError extends AppError {
  constructor(
    detail: string,
    code: typeof ErrorCode.discogsUnavailable = ErrorCode.discogsUnavailable,
  ) {
    super(502, code, detail);
  }
}

/**
 * A correct password that is not enough on its own: the account has a second factor. The
 * `mfa_token` member lets the client finish the login at /api/v1/auth/mfa/verify.
 */
export class MfaRequiredError extends AppError {
  constructor(mfaToken: string, expiresInSeconds: number) {
    super(
      403,
      ErrorCode.mfaRequired,
      'This account needs a second factor; send a code with the mfa_token to /api/v1/auth/mfa/verify.',
      { extensions: { mfa_token: mfaToken, mfa_expires_in: expiresInSeconds } },
    );
  }
}

export class MailNotConfiguredError extends ServiceUnavailableError {
  constructor() {
    super(
      'This service cannot send mail; ask its operator to configure SMTP_URL.',
      ErrorCode.mailNotConfigured,
      3600,
    );
  }
}
