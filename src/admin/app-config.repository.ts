import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';

export interface AppConfigEntry {
  key: string;
  value: string;
  updatedAt: Date;
}

/** The `app_config` key/value table. Values that are secrets arrive here already sealed. */
export class AppConfigRepository {
  constructor(private readonly sequelize: Sequelize) {}

  async getMany(keys: readonly string[], transaction?: Tx): Promise<Map<string, AppConfigEntry>> {
    const rows = await this.sequelize.query<AppConfigEntry>(
      `SELECT key, value, updated_at AS "updatedAt" FROM app_config WHERE key IN (:keys)`,
      { type: QueryTypes.SELECT, replacements: { keys: [...keys] }, transaction },
    );
    return new Map(rows.map((r) => [r.key, r]));
  }

  async upsert(key: string, value: string, transaction: Tx): Promise<void> {
    await this.sequelize.query(
      `INSERT INTO app_config (key, value, updated_at) VALUES (:key, :value, now())
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
      { type: QueryTypes.INSERT, replacements: { key, value }, transaction },
    );
  }

  /** Returns how many of the keys existed. */
  async deleteMany(keys: readonly string[], transaction: Tx): Promise<number> {
    const rows = await this.sequelize.query<{ key: string }>(
      `DELETE FROM app_config WHERE key IN (:keys) RETURNING key`,
      { type: QueryTypes.SELECT, replacements: { keys: [...keys] }, transaction },
    );
    return rows.length;
  }
}
