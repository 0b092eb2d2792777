/**
 * Compile-time checks of the handler contract, run by `npm run typecheck` (not by jest): each
 * `@ts-expect-error` fails the type-check if the line below it ever starts compiling.
 */
import type { Handler, HandlerMap } from '../../src/http/contract';

declare const handlers: HandlerMap;

// A map without one of the spec's operations is not a HandlerMap.
// @ts-expect-error getCurrentUser is missing
export const missing: HandlerMap = { ...handlers, getCurrentUser: undefined };

const user = {
  id: 'u',
  email: 'a@example.com',
  is_active: true,
  is_admin: false,
  email_verified: false,
  mfa_enabled: false,
  created_at: 'now',
};

// A status the spec does not declare for the operation does not compile, even with a valid body.
// @ts-expect-error registerUser declares 201, not 200
export const wrongStatus: Handler<'registerUser'> = async () => ({ status: 200, body: user });
export const rightStatus: Handler<'registerUser'> = async () => ({ status: 201, body: user });

// A body that is not the declared schema does not compile.
const notAUser = { password: 'x' };
// @ts-expect-error the User schema needs id, email, is_active, is_admin, email_verified, mfa_enabled and created_at
export const wrongBody: Handler<'getCurrentUser'> = async () => ({ status: 200, body: notAUser });

// Error bodies come from the one error mapper (thrown AppErrors), never from a handler.
const problem = {
  type: 't',
  title: 'Conflict',
  status: 409,
  detail: 'd',
  code: 'email_taken',
  request_id: 'r',
};
// @ts-expect-error 409 is a problem+json response
export const handMadeError: Handler<'registerUser'> = async () => ({ status: 409, body: problem });

// The declared shape compiles.
export const ok: Handler<'getLiveness'> = async () => ({ status: 200, body: { status: 'ok' } });
