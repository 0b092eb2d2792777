import type { AppError } from '../errors';
import type { AuthContext } from '../sessions/authenticator';

declare global {
  namespace Express {
    interface Request {
      auth?: AuthContext;
      authFailure?: AppError;
    }
  }
}
export {};
