import type { AppError } from '../errors';
import type { AuthContext } from '../sessions/authenticator';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      auth?: AuthContext;
      authFailure?: AppError;
    }
  }
}
export {};
