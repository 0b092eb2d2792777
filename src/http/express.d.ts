import type { Logger } from 'pino';
import type { AppError } from '../errors';
import type { AuthContext } from '../sessions/authenticator';

declare global {
  namespace Express {
    interface Request {
      /** This request's id (X-Request-Id), set first thing by the access log. */
      id: string;
      /** A logger whose lines name this request; made on first use. */
      log: Logger;
      auth?: AuthContext;
      authFailure?: AppError;
      /** The one bearer check of this request, shared by the equivalent security schemes. */
      authCheck?: Promise<boolean>;
    }
  }
}
export {};
