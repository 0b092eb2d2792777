import { createHash, randomBytes } from 'node:crypto';
import type { UserRecord, UsersRepository } from '../accounts/users.repository';
import type { Database } from '../db/database';
import {
  ConflictError,
  ErrorCode,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
} from '../errors';
import type { Metrics } from '../metrics';
import type { AppTokenRecord, AppTokensRepository } from './app-tokens.repository';

/** Every app token starts with this, so the authenticator tells it from a JWT at a glance. */
export const APP_TOKEN_PREFIX = 'ast_';
export const MAX_LIVE_APP_TOKENS = 50;
/** `last_used_at` lags the real last use by less than this; the first use shows at once. */
export const LAST_USED_PRECISION_MS = 60_000;

export function isAppToken(bearer: string): boolean {
  return bearer.startsWith(APP_TOKEN_PREFIX);
}

function hashAppToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** `ast_` and 256 random bits; only the SHA-256 is stored. */
function newAppToken(): { token: string; hash: string } {
  const token = APP_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashAppToken(token) };
}

function invalidAppToken(): UnauthorizedError {
  return new UnauthorizedError(
    ErrorCode.invalidToken,
    'The app token is invalid, expired or revoked.',
  );
}

export class AppTokensService {
  constructor(
    private readonly db: Database,
    private readonly users: UsersRepository,
    private readonly appTokens: AppTokensRepository,
    private readonly metrics: Metrics,
  ) {}

  /**
   * Creates a token. The user's row is locked first, so concurrent creations are counted one
   * at a time and never exceed the limit; it also orders the creation against a password
   * change or deactivation, which take the same lock to move `tokens_valid_after`.
   */
  async create(
    userId: string,
    name: string,
    expiresInDays: number | undefined,
  ): Promise<AppTokenRecord & { token: string }> {
    const created = await this.db.transaction(async (t) => {
      const user = await this.users.lock(userId, 'update', t);
      if (!user?.isActive) {
        throw new UnauthorizedError(ErrorCode.invalidToken, 'The account no longer exists.');
      }
      const cutoff = user.tokensValidAfter;
      // A token is live only when created strictly after the cutoff (see the repository).
      while (cutoff && Date.now() <= cutoff.getTime()) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const now = new Date();
      await this.appTokens.deleteDead(userId, cutoff, now, t);
      if ((await this.appTokens.countLive(userId, cutoff, now, t)) >= MAX_LIVE_APP_TOKENS) {
        return null;
      }
      const { token, hash } = newAppToken();
      const record = await this.appTokens.insert(
        {
          userId,
          name,
          tokenHash: hash,
          createdAt: now,
          expiresAt: expiresInDays ? new Date(now.getTime() + expiresInDays * 86_400_000) : null,
        },
        t,
      );
      return { ...record, token };
    });
    if (!created) {
      this.metrics.appTokensCreated.inc({ outcome: 'limit_reached' });
      throw new ConflictError(
        ErrorCode.appTokenLimit,
        `An account may have at most ${MAX_LIVE_APP_TOKENS} live app tokens; delete one first.`,
      );
    }
    this.metrics.appTokensCreated.inc({ outcome: 'created' });
    return created;
  }

  list(user: UserRecord): Promise<AppTokenRecord[]> {
    return this.appTokens.listLive(user.id, user.tokensValidAfter, new Date());
  }

  async remove(userId: string, id: string): Promise<void> {
    if (!(await this.appTokens.delete(userId, id))) {
      throw new NotFoundError('You have no app token with this id.');
    }
  }

  /**
   * The owner of a live app token, read from the database on every call (one query), so a
   * deletion, expiry, password change or deactivation, made on any replica or in SQL, is
   * honoured on the next request. A token that is not live is 401 wherever it is sent; a live
   * one is refused with 403 by operations that do not accept app tokens (`allowed`). An
   * accepted use is recorded: at once the first time, then at most once per
   * LAST_USED_PRECISION_MS, so that busy scripts do not write on every request.
   */
  async authenticate(
    bearer: string,
    opts: { allowed: boolean },
  ): Promise<{ user: UserRecord; appTokenId: string }> {
    const outcome = (o: string) => this.metrics.appTokenUses.inc({ outcome: o });
    const found = await this.appTokens.findByHash(hashAppToken(bearer));
    if (!found) {
      outcome('unknown');
      throw invalidAppToken();
    }
    const { token, user } = found;
    const now = new Date();
    if (!user.isActive) {
      outcome('inactive_user');
      throw invalidAppToken();
    }
    if (token.expiresAt && token.expiresAt.getTime() <= now.getTime()) {
      outcome('expired');
      throw invalidAppToken();
    }
    if (user.tokensValidAfter && token.createdAt.getTime() <= user.tokensValidAfter.getTime()) {
      outcome('ended');
      throw invalidAppToken();
    }
    if (!opts.allowed) {
      outcome('not_allowed');
      throw new ForbiddenError(
        'This operation does not accept app tokens; use an access token.',
        ErrorCode.appTokenNotAllowed,
      );
    }
    const staleBefore = new Date(now.getTime() - LAST_USED_PRECISION_MS);
    if (!token.lastUsedAt || token.lastUsedAt.getTime() < staleBefore.getTime()) {
      await this.appTokens.touch(token.id, now, staleBefore);
    }
    outcome('accepted');
    return { user, appTokenId: token.id };
  }
}
