import { requireAuth, type HandlerMap } from '../http/contract';
import { toTokenResponse } from '../sessions/sessions.views';
import type { MfaService } from './mfa.service';

export function mfaHandlers(
  mfa: MfaService,
): Pick<HandlerMap, 'setupTotp' | 'confirmTotp' | 'disableTotp' | 'verifyMfa'> {
  return {
    async setupTotp({ auth }) {
      return { status: 200, body: await mfa.setup(requireAuth(auth).user) };
    },
    async confirmTotp({ body, auth, ctx }) {
      const codes = await mfa.confirm(requireAuth(auth), body.code, ctx.ip);
      return { status: 200, body: { recovery_codes: codes } };
    },
    async disableTotp({ body, auth, ctx }) {
      await mfa.disable(requireAuth(auth), body.password, body.code, ctx.ip);
      return { status: 204 };
    },
    async verifyMfa({ body, ctx }) {
      const factor = 'code' in body ? { code: body.code } : { recoveryCode: body.recovery_code };
      return {
        status: 200,
        body: toTokenResponse(
          await mfa.verify(body.mfa_token, factor, { ip: ctx.ip, userAgent: ctx.userAgent }),
        ),
      };
    },
  };
}
