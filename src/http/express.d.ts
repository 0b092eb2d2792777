import type { AppError } from '../errors';
import type { AuthContext } from '../sessions/authenticator';

declare global {
  namespace Express {
    interface Request {
      auth?: AuthContext;
      authFailure?: AppError;
      /** The one bearer check of this request, shared by the equivalent security schemes. */
      authCheck?: Promise<boolean>;
    }
  }
}
export {};
