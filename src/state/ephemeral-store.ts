import type { Redis } from 'ioredis';

/**
 * Short-lived state with expiry (the pending OAuth 1.0a request tokens). Never a revocation:
 * those live in PostgreSQL (see sessions), so losing this state cannot bring a token back.
 * Redis when configured, so every replica sees the same state; otherwise in process, which
 * is single-instance only.
 */
export interface EphemeralStore {
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  get(key: string): Promise<string | null>;
  /** Reads and deletes atomically: a value can be taken once. */
  take(key: string): Promise<string | null>;
  delete(key: string): Promise<void>;
}

export class RedisStore implements EphemeralStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'auth:',
  ) {}

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(this.prefix + key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds)));
  }

  get(key: string): Promise<string | null> {
    return this.redis.get(this.prefix + key);
  }

  take(key: string): Promise<string | null> {
    return this.redis.getdel(this.prefix + key);
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }
}

export class MemoryStore implements EphemeralStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    // Expired entries are dropped on read and swept once a minute so memory stays bounded.
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.entries.set(key, { value, expiresAt: this.now() + ttlSeconds * 1000 });
  }

  async get(key: string): Promise<string | null> {
    return this.live(key);
  }

  async take(key: string): Promise<string | null> {
    const v = this.live(key);
    this.entries.delete(key);
    return v;
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private live(key: string): string | null {
    const e = this.entries.get(key);
    if (!e) return null;
    if (e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return null;
    }
    return e.value;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
  }
}
