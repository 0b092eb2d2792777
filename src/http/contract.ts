import type { components, operations } from '../../generated/openapi';
import type { Logger } from 'pino';
import type { AuthContext, SessionAuth } from '../sessions/authenticator';

/** Types that tie handlers to the spec: a missing handler or an undeclared response fails to compile. */
export type OperationId = keyof operations;
export type Schemas = components['schemas'];

type Responses<K extends OperationId> = operations[K]['responses'];
type ContentOf<R> = R extends { content: infer C } ? C : never;
/** Declared statuses a handler may return: problem+json bodies come only from the error mapper. */
type Declared<K extends OperationId> = {
  [S in Extract<keyof Responses<K>, number>]: [ContentOf<Responses<K>[S]>] extends [never]
    ? S // no body (204)
    : ContentOf<Responses<K>[S]> extends { 'application/problem+json': unknown }
      ? never
      : S;
}[Extract<keyof Responses<K>, number>];

/** One reply per declared non-error status, with the body its content type declares. */
export type Reply<K extends OperationId> = {
  [S in Declared<K>]: [ContentOf<Responses<K>[S]>] extends [never]
    ? { status: S; body?: undefined; headers?: Record<string, string> }
    : {
        [T in keyof ContentOf<Responses<K>[S]>]: {
          status: S;
          body: ContentOf<Responses<K>[S]>[T];
          /** Defaults to application/json. */
          contentType?: T;
          headers?: Record<string, string>;
        };
      }[keyof ContentOf<Responses<K>[S]>];
}[Declared<K>];

type RequestContent<K extends OperationId> =
  NonNullable<operations[K]['requestBody']> extends { content: infer C } ? C : never;
export type RequestBody<K extends OperationId> = [RequestContent<K>] extends [never]
  ? undefined
  : RequestContent<K>[keyof RequestContent<K>];

// Optional parts (`query?:`) are objects too: match them with Partial.
type Part<P, N extends string> = P extends Partial<Record<N, infer X>> ? NonNullable<X> : never;

export interface RequestContext {
  requestId: string;
  /** Client address, honouring X-Forwarded-For only from TRUST_PROXY. */
  ip: string;
  /** Media type of the request body, without parameters. */
  contentType: string | undefined;
  userAgent: string | undefined;
  log: Logger;
}

export interface HandlerInput<K extends OperationId> {
  body: RequestBody<K>;
  params: Part<operations[K]['parameters'], 'path'>;
  query: Part<operations[K]['parameters'], 'query'>;
  ctx: RequestContext;
  /**
   * Set for secured operations: a session (access token), or an app token on the operations
   * whose security lists `appToken`.
   */
  auth: AuthContext | null;
}

export type Handler<K extends OperationId> = (input: HandlerInput<K>) => Promise<Reply<K>>;
export type HandlerMap = { [K in OperationId]: Handler<K> };

/** Narrows `auth` for handlers of secured operations. */
export function requireAuth(auth: AuthContext | null): AuthContext {
  if (!auth) throw new Error('secured operation reached its handler without authentication');
  return auth;
}

/**
 * Narrows `auth` for operations that need a session. The router refuses app tokens before any
 * handler runs on operations that do not list `appToken`, so this never throws for those.
 */
export function requireSession(auth: AuthContext | null): SessionAuth {
  const a = requireAuth(auth);
  if (a.kind !== 'session')
    throw new Error('an app token reached an operation that needs a session');
  return a;
}
