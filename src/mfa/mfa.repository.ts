import { QueryTypes, type Sequelize } from 'sequelize';
import type { Tx } from '../db/database';

export interface TotpFactor {
  /** Sealed; null when no factor is set up or pending. */
  secret: string | null;
  enabled: boolean;
  lastStep: number | null;
}

export interface MfaChallengeRecord {
  id: string;
  userId: string;
  createdAt: Date;
  expiresAt: Date;
  failedAttempts: number;
}

const CHALLENGE_COLUMNS = `CAST(id AS text) AS id, CAST(user_id AS text) AS "userId",
  created_at AS "createdAt", expires_at AS "expiresAt", failed_attempts AS "failedAttempts"`;

/**
 * The TOTP factor (columns of `users`), its recovery codes, and pending login challenges.
 * Plain objects only. Every write to the factor happens under the user's row lock, which the
 * services take through UsersRepository (the one place user rows are locked).
 */
export class MfaRepository {
  constructor(private readonly sequelize: Sequelize) {}

  /** The factor's columns; callers hold the user's row lock (UsersRepository.lock). */
  async getFactor(userId: string, transaction: Tx): Promise<TotpFactor | null> {
    const [row] = await this.sequelize.query<{
      secret: string | null;
      enabled: boolean;
      lastStep: string | null;
    }>(
      `SELECT totp_secret AS secret, mfa_enabled AS enabled, totp_last_step AS "lastStep"
         FROM users WHERE id = :userId`,
      { type: QueryTypes.SELECT, replacements: { userId }, transaction },
    );
    if (!row) return null;
    // bigint arrives as text; steps (about 6e7 today) are exact as numbers.
    return { ...row, lastStep: row.lastStep === null ? null : Number(row.lastStep) };
  }

  /** A new pending secret replaces any earlier pending one; an active factor is never touched. */
  async setPendingSecret(userId: string, sealed: string, transaction: Tx): Promise<void> {
    await this.sequelize.query(
      `UPDATE users SET totp_secret = :sealed, totp_last_step = NULL
        WHERE id = :userId AND NOT mfa_enabled`,
      { type: QueryTypes.UPDATE, replacements: { userId, sealed }, transaction },
    );
  }

  /** Activates the factor with its first accepted step and a fresh set of recovery codes. */
  async enable(
    userId: string,
    step: number,
    recoveryCodeHashes: string[],
    transaction: Tx,
  ): Promise<void> {
    await this.sequelize.query(
      `UPDATE users SET mfa_enabled = true, totp_last_step = :step, updated_at = now()
        WHERE id = :userId`,
      { type: QueryTypes.UPDATE, replacements: { userId, step }, transaction },
    );
    await this.deleteRecoveryCodes(userId, transaction);
    await this.sequelize.query(
      `INSERT INTO mfa_recovery_codes (user_id, code_hash)
       SELECT :userId, unnest(ARRAY[:hashes]::text[])`,
      {
        type: QueryTypes.INSERT,
        replacements: { userId, hashes: recoveryCodeHashes },
        transaction,
      },
    );
  }

  async setLastStep(userId: string, step: number, transaction: Tx): Promise<void> {
    await this.sequelize.query(`UPDATE users SET totp_last_step = :step WHERE id = :userId`, {
      type: QueryTypes.UPDATE,
      replacements: { userId, step },
      transaction,
    });
  }

  /** Removes the factor (active or pending), its recovery codes and pending challenges. */
  async remove(userId: string, transaction: Tx): Promise<void> {
    await this.sequelize.query(
      `UPDATE users SET mfa_enabled = false, totp_secret = NULL, totp_last_step = NULL,
              updated_at = now()
        WHERE id = :userId`,
      { type: QueryTypes.UPDATE, replacements: { userId }, transaction },
    );
    await this.deleteRecoveryCodes(userId, transaction);
    await this.sequelize.query(`DELETE FROM mfa_challenges WHERE user_id = :userId`, {
      type: QueryTypes.DELETE,
      replacements: { userId },
      transaction,
    });
  }

  /** Spends a recovery code: true when it existed (and now no longer does). */
  async useRecoveryCode(userId: string, codeHash: string, transaction: Tx): Promise<boolean> {
    const [rows] = (await this.sequelize.query(
      `DELETE FROM mfa_recovery_codes WHERE user_id = :userId AND code_hash = :codeHash
       RETURNING id`,
      { replacements: { userId, codeHash }, transaction },
    )) as [unknown[], unknown];
    return rows.length > 0;
  }

  async countRecoveryCodes(userId: string): Promise<number> {
    const [row] = await this.sequelize.query<{ n: number }>(
      `SELECT CAST(count(*) AS int) AS n FROM mfa_recovery_codes WHERE user_id = :userId`,
      { type: QueryTypes.SELECT, replacements: { userId } },
    );
    return row?.n ?? 0;
  }

  /** Stores a challenge; long-expired ones of anyone are swept on the way. */
  async createChallenge(userId: string, tokenHash: string, expiresAt: Date): Promise<void> {
    await this.sequelize.query(
      `WITH swept AS (DELETE FROM mfa_challenges WHERE expires_at < now() - interval '1 hour')
       INSERT INTO mfa_challenges (user_id, token_hash, expires_at)
       VALUES (:userId, :tokenHash, :expiresAt)`,
      { type: QueryTypes.INSERT, replacements: { userId, tokenHash, expiresAt } },
    );
  }

  async findChallenge(tokenHash: string): Promise<MfaChallengeRecord | null> {
    const [row] = await this.sequelize.query<MfaChallengeRecord>(
      `SELECT ${CHALLENGE_COLUMNS} FROM mfa_challenges WHERE token_hash = :tokenHash`,
      { type: QueryTypes.SELECT, replacements: { tokenHash } },
    );
    return row ?? null;
  }

  async lockChallenge(id: string, transaction: Tx): Promise<MfaChallengeRecord | null> {
    const [row] = await this.sequelize.query<MfaChallengeRecord>(
      `SELECT ${CHALLENGE_COLUMNS} FROM mfa_challenges WHERE id = :id FOR UPDATE`,
      { type: QueryTypes.SELECT, replacements: { id }, transaction },
    );
    return row ?? null;
  }

  /** Counts a wrong code; returns the count so far. */
  async recordFailure(id: string, transaction: Tx): Promise<number> {
    const [rows] = (await this.sequelize.query(
      `UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1 WHERE id = :id
       RETURNING failed_attempts AS n`,
      { replacements: { id }, transaction },
    )) as [{ n: number }[], unknown];
    return rows[0]?.n ?? Number.MAX_SAFE_INTEGER;
  }

  async deleteChallenge(id: string, transaction: Tx): Promise<void> {
    await this.sequelize.query(`DELETE FROM mfa_challenges WHERE id = :id`, {
      type: QueryTypes.DELETE,
      replacements: { id },
      transaction,
    });
  }

  private async deleteRecoveryCodes(userId: string, transaction: Tx): Promise<void> {
    await this.sequelize.query(`DELETE FROM mfa_recovery_codes WHERE user_id = :userId`, {
      type: QueryTypes.DELETE,
      replacements: { userId },
      transaction,
    });
  }
}
