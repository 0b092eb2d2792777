import type { Metrics } from '../metrics';
import type { SessionCheck, SessionState } from './session-state';
import { ALL_USERS, type UserStateEvents } from './user-state-listener';

export interface CacheHealth {
  /** True while the database's change notifications are known to reach this process. */
  readonly healthy: boolean;
}

/**
 * The authenticated path's user-and-session check, answered from memory when the database has
 * said nothing changed. Triggers on `users` and `sessions` NOTIFY the user id on every change
 * (migration 20261201002000); every replica LISTENs and drops that user's entries, so a
 * deactivation, demotion, delete or ended session made anywhere, by the API or by SQL, reaches
 * every replica as fast as PostgreSQL delivers the notification (well under a second).
 *
 * Only live answers are kept (the user exists and is active, the session has not ended): a
 * refusal is read from the database every time, so nothing can keep a token alive by being
 * cached, and a cache miss costs what the check always cost. While the listener is not proven
 * healthy (see UserStateListener), every call reads the database.
 */
export class CachedSessionState implements SessionState, UserStateEvents {
  /** user id -> session id -> the live answer. */
  private readonly entries = new Map<string, Map<string, SessionCheck>>();
  private size = 0;
  /** Bumped by every invalidation: a read that overlapped one must not be stored. */
  private generation = 0;

  constructor(
    private readonly database: SessionState,
    private readonly health: CacheHealth,
    private readonly metrics: Metrics,
    private readonly maxEntries = 10_000,
  ) {}

  async check(
    userId: string,
    sessionId: string,
    opts: { fresh?: boolean } = {},
  ): Promise<SessionCheck> {
    if (opts.fresh || !this.health.healthy) {
      this.metrics.userStateCache.inc({ result: 'bypass' });
      return this.database.check(userId, sessionId);
    }
    const hit = this.entries.get(userId)?.get(sessionId);
    if (hit) {
      this.metrics.userStateCache.inc({ result: 'hit' });
      return hit;
    }
    this.metrics.userStateCache.inc({ result: 'miss' });
    const generation = this.generation;
    const answer = await this.database.check(userId, sessionId);
    // A change notified while the read was in flight may not be in `answer`: keep it only when
    // no invalidation happened since the read began.
    if (
      generation === this.generation &&
      this.health.healthy &&
      answer.sessionLive &&
      answer.user?.isActive
    ) {
      // A bound on memory, not an eviction policy: past it, start over (misses cost one query).
      if (this.size >= this.maxEntries) this.clear();
      let sessions = this.entries.get(userId);
      if (!sessions) this.entries.set(userId, (sessions = new Map()));
      if (!sessions.has(sessionId)) this.size++;
      sessions.set(sessionId, answer);
    }
    return answer;
  }

  changed(userId: string): void {
    this.generation++;
    if (userId === ALL_USERS) return this.clear();
    const sessions = this.entries.get(userId);
    if (!sessions) return;
    this.size -= sessions.size;
    this.entries.delete(userId);
  }

  lost(): void {
    this.generation++;
    this.clear();
  }

  private clear(): void {
    this.entries.clear();
    this.size = 0;
  }
}
