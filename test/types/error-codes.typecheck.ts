/**
 * Compile-time checks that error codes come from the spec's closed `Problem.code` enum, run by
 * `npm run typecheck`: each `@ts-expect-error` fails the type-check if the line below compiles.
 */
import type { components } from '../../generated/openapi';
import { AppError, ConflictError, ErrorCode } from '../../src/errors';

type SpecCode = components['schemas']['Problem']['code'];

// A code the spec does not list cannot be raised...
// @ts-expect-error 'not_in_the_spec' is not in the Problem.code enum
export const unknownCode = new ConflictError('not_in_the_spec', 'd');
// ...nor added to the constant clients' codes are named by.
export const extended = {
  ...ErrorCode,
  // @ts-expect-error 'not_in_the_spec' is not in the Problem.code enum
  notInTheSpec: 'not_in_the_spec',
} as const satisfies Record<string, ErrorCode>;

// A status without a title in STATUS_TITLES cannot be answered.
// @ts-expect-error 418 has no title
export const unknownStatus = new AppError(418, ErrorCode.conflict, 'd');

// The constant names every code of the spec: a code listed but missing here is an error.
type Unnamed = Exclude<SpecCode, (typeof ErrorCode)[keyof typeof ErrorCode]>;
export const everyCodeNamed: [Unnamed] extends [never] ? true : Unnamed = true;

// Nothing reopens the type: any string is not an ErrorCode.
declare const someString: string;
// @ts-expect-error a plain string is not an ErrorCode
export const open: ErrorCode = someString;
