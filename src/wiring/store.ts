import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { MemoryStore, RedisStore, type EphemeralStore } from '../state/ephemeral-store';

export interface OpenedStore {
  /** The Redis client, when REDIS_URL is set. */
  redis: Redis | null;
  store: EphemeralStore;
  close(): Promise<void>;
}

/** Short-lived state: Redis when REDIS_URL is set, else in process (single-instance mode). */
export function openStore(
  config: Readonly<Config>,
  logger: Logger,
  keyPrefix: string,
): OpenedStore {
  if (!config.redisUrl) {
    const memory = new MemoryStore();
    logger.warn(
      'REDIS_URL is not set: short-lived state is kept in process (single-instance mode; several replicas need Redis)',
    );
    return { redis: null, store: memory, close: async () => memory.close() };
  }
  // Every command has a deadline, also while it waits in the offline queue (ioredis starts
  // the timer before queueing), so a Redis that accepts connections but never answers
  // cannot hold a request: the command fails and the caller's fallback takes over.
  const redis = new Redis(config.redisUrl, {
    lazyConnect: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: config.redisCommandTimeoutMs,
    enableOfflineQueue: true,
  });
  redis.on('error', (err) => logger.warn({ err: { message: err.message } }, 'redis error'));
  return {
    redis,
    store: new RedisStore(redis, keyPrefix),
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
