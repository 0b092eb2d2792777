import { NotFoundError } from '../errors';
import { requireSession, type HandlerMap, type RequestBody } from '../http/contract';
import type { SessionsService, TokenPair } from './sessions.service';
import { toSession, toTokenResponse } from './sessions.views';

type TokenRequest = NonNullable<RequestBody<'issueToken'>>;

type Grant =
  { kind: 'password'; email: string; password: string } | { kind: 'refresh'; refreshToken: string };

/**
 * The form carries OAuth2 grants; JSON carries {email, password} or the refresh grant.
 * `grant_type` alone decides: the form admits extra members, so a password grant may carry a
 * refresh_token, which must not turn it into a refresh.
 */
function grantOf(body: TokenRequest): Grant {
  if (!('grant_type' in body)) {
    return { kind: 'password', email: body.email, password: body.password };
  }
  switch (body.grant_type) {
    case 'refresh_token':
      return { kind: 'refresh', refreshToken: body.refresh_token };
    case 'password':
      return { kind: 'password', email: body.username, password: body.password };
  }
}

export function sessionHandlers(
  sessions: SessionsService,
): Pick<
  HandlerMap,
  'issueToken' | 'logout' | 'changePassword' | 'listSessions' | 'endSession' | 'endOtherSessions'
> {
  return {
    async issueToken({ body, ctx }) {
      const grant = grantOf(body);
      const pair: TokenPair =
        grant.kind === 'refresh'
          ? await sessions.refresh(grant.refreshToken)
          : await sessions.login(grant.email, grant.password, {
              ip: ctx.ip,
              userAgent: ctx.userAgent,
            });
      return { status: 200, body: toTokenResponse(pair) };
    },
    async logout({ body, auth }) {
      await sessions.logout(requireSession(auth), body?.refresh_token);
      return { status: 204 };
    },
    async listSessions({ auth }) {
      const { user, claims } = requireSession(auth);
      const list = await sessions.listSessions(user.id);
      return { status: 200, body: { sessions: list.map((s) => toSession(s, claims.sid)) } };
    },
    async endSession({ params, auth }) {
      if (!(await sessions.endSession(requireSession(auth).user.id, params.id))) {
        throw new NotFoundError('You have no live session with this id.');
      }
      return { status: 204 };
    },
    async endOtherSessions({ auth }) {
      const { user, claims } = requireSession(auth);
      await sessions.endOtherSessions(user.id, claims.sid);
      return { status: 204 };
    },
    async changePassword({ body, auth, ctx }) {
      await sessions.changePassword(
        requireSession(auth),
        body.current_password,
        body.new_password,
        ctx.ip,
      );
      return { status: 204 };
    },
  };
}
