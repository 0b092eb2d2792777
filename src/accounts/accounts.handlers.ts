import type { HandlerMap } from '../http/contract';
import { requireAuth, requireSession } from '../http/contract';
import type { RateLimits } from '../sessions/rate-limits';
import type { AccountDeletionService } from './account-deletion.service';
import type { AccountsService } from './accounts.service';
import { toUser } from './accounts.views';
import type { EmailVerificationService } from './email-verification.service';
import type { PasswordResetService } from './password-reset.service';

export interface AccountHandlerDeps {
  accounts: AccountsService;
  rateLimits: Pick<RateLimits, 'registration'>;
  passwordReset: PasswordResetService;
  emailVerification: EmailVerificationService;
  deletion: AccountDeletionService;
}

export function accountHandlers(
  d: AccountHandlerDeps,
): Pick<
  HandlerMap,
  | 'registerUser'
  | 'getCurrentUser'
  | 'requestPasswordReset'
  | 'confirmPasswordReset'
  | 'verifyEmail'
  | 'resendVerificationEmail'
  | 'deleteAccount'
> {
  return {
    async registerUser({ body, ctx }) {
      await d.rateLimits.registration(ctx.ip);
      const user = await d.accounts.register(body.email, body.password, ctx.ip);
      return { status: 201, body: toUser(user) };
    },
    async getCurrentUser({ auth }) {
      return { status: 200, body: toUser(requireAuth(auth).user) };
    },
    async deleteAccount({ body, auth, ctx }) {
      await d.deletion.deleteAccount(requireSession(auth).user, {
        password: body.password,
        code: body.code,
        ip: ctx.ip,
        requestId: ctx.requestId,
      });
      return { status: 204 };
    },
    async requestPasswordReset({ body, ctx }) {
      await d.passwordReset.request(body.email, ctx.ip);
      return { status: 202 };
    },
    async confirmPasswordReset({ body, ctx }) {
      await d.passwordReset.confirm(body.token, body.new_password, ctx.ip);
      return { status: 204 };
    },
    async verifyEmail({ body }) {
      await d.emailVerification.verify(body.token);
      return { status: 204 };
    },
    async resendVerificationEmail({ auth }) {
      await d.emailVerification.resend(requireAuth(auth).user);
      return { status: 202 };
    },
  };
}
