import type { HandlerMap, RequestBody } from '../http/contract';
import type { SessionsService } from './sessions.service';

type TokenRequest = RequestBody<'issueToken'>;

/** The form carries the OAuth2 password grant; JSON carries {email, password}. */
function credentials(body: TokenRequest): { email: string; password: string } {
  if ('grant_type' in body) return { email: body.username, password: body.password };
  return { email: body.email, password: body.password };
}

export function sessionHandlers(sessions: SessionsService): Pick<HandlerMap, 'issueToken'> {
  return {
    async issueToken({ body }) {
      const { email, password } = credentials(body);
      return { status: 200, body: await sessions.login(email, password) };
    },
  };
}
