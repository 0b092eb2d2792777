import type { Redis } from 'ioredis';
import type { Sequelize } from 'sequelize';
import type { Database } from '../db/database';
import { pendingMigrations } from '../db/migrator';

export type CheckState = 'ok' | 'down' | 'disabled' | 'unknown' | 'pending';

export interface Lifecycle {
  shuttingDown: boolean;
}

async function pingRedis(redis: Redis, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const pong = await Promise.race([
      redis.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('redis ping timed out')), timeoutMs);
      }),
    ]);
    return pong === 'PONG';
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export class HealthService {
  private migrationsApplied = false;

  constructor(
    private readonly db: Database,
    private readonly redis: Redis | null,
    readonly lifecycle: Lifecycle,
  ) {}

  async dependencies(): Promise<{ database: CheckState; redis: CheckState }> {
    const [database, redis] = await Promise.all([
      this.db.ping(),
      this.redis ? pingRedis(this.redis, 1_000) : Promise.resolve(null),
    ]);
    return {
      database: database ? 'ok' : 'down',
      redis: redis === null ? 'disabled' : redis ? 'ok' : 'down',
    };
  }

  async readiness(): Promise<{ ready: boolean; checks: Record<string, CheckState> }> {
    const deps = await this.dependencies();
    let migrations: CheckState = 'unknown';
    if (deps.database === 'ok')
      migrations = (await this.migrationsDone(this.db.sequelize)) ? 'ok' : 'pending';
    const checks = { ...deps, migrations };
    const ready =
      !this.lifecycle.shuttingDown &&
      deps.database === 'ok' &&
      deps.redis !== 'down' &&
      migrations === 'ok';
    return { ready, checks };
  }

  /** Once every migration is seen applied it stays so for this process; no need to re-read. */
  private async migrationsDone(sequelize: Sequelize): Promise<boolean> {
    if (this.migrationsApplied) return true;
    try {
      this.migrationsApplied = (await pendingMigrations(sequelize)).length === 0;
    } catch {
      return false;
    }
    return this.migrationsApplied;
  }
}
