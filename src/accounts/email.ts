import { ValidationError } from '../errors';

/**
 * The one rule for emails: stored trimmed and lower-cased, and every lookup (registration, login,
 * admin, the CLI) goes through `normaliseEmail`, so an address matches however it was typed.
 */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export const EMAIL_MAX_LENGTH = 255;

/**
 * ajv-formats' `email` in fast mode (the HTML `type=email` rule), which the validator applied
 * before surrounding white space was allowed. The spec's Email pattern is this expression between
 * `^\s*(?=\S{1,255}\s*$)` and `\s*$`; test/spec.test.ts keeps the two equal.
 */
export const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** For callers with no validator in front (the CLI): the spec's rule, on a normalised email. */
export function assertEmail(email: string, field: string): void {
  if (email.length > EMAIL_MAX_LENGTH || !EMAIL.test(email)) {
    throw new ValidationError([
      { path: field, message: 'must be a valid email address of at most 255 characters' },
    ]);
  }
}
