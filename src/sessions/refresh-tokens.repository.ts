import {
  DataTypes,
  Op,
  Transaction,
  type Model,
  type ModelStatic,
  type Sequelize,
  type WhereOptions,
} from 'sequelize';

export type RevokedReason = 'logout' | 'reuse' | 'password_change' | 'sessions_ended';

export interface RefreshTokenRecord {
  id: string;
  userId: string;
  familyId: string;
  parentId: string | null;
  tokenHash: string;
  accessJti: string | null;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  replacedBy: string | null;
  revokedAt: Date | null;
  revokedReason: RevokedReason | null;
}

type NewRefreshToken = Pick<
  RefreshTokenRecord,
  'userId' | 'familyId' | 'parentId' | 'tokenHash' | 'accessJti' | 'createdAt' | 'expiresAt'
>;

type RefreshTokenModel = ModelStatic<Model<RefreshTokenRecord, Partial<RefreshTokenRecord>>>;

function defineModel(sequelize: Sequelize): RefreshTokenModel {
  return sequelize.define<Model<RefreshTokenRecord, Partial<RefreshTokenRecord>>>(
    'RefreshToken',
    {
      id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      userId: { type: DataTypes.UUID, allowNull: false },
      familyId: { type: DataTypes.UUID, allowNull: false },
      parentId: { type: DataTypes.UUID, allowNull: true },
      tokenHash: { type: DataTypes.CHAR(64), allowNull: false },
      accessJti: { type: DataTypes.STRING(64), allowNull: true },
      createdAt: { type: DataTypes.DATE(3), allowNull: false },
      expiresAt: { type: DataTypes.DATE(3), allowNull: false },
      usedAt: { type: DataTypes.DATE(3), allowNull: true },
      replacedBy: { type: DataTypes.UUID, allowNull: true },
      revokedAt: { type: DataTypes.DATE(3), allowNull: true },
      revokedReason: { type: DataTypes.STRING(32), allowNull: true },
    },
    // Times are set by the service from one clock, so no automatic timestamps.
    { tableName: 'refresh_tokens', underscored: true, timestamps: false },
  );
}

/** Sequelize queries for refresh tokens; returns plain objects. Only hashes are ever stored. */
export class RefreshTokensRepository {
  readonly model: RefreshTokenModel;

  constructor(private readonly sequelize: Sequelize) {
    this.model =
      (sequelize.models.RefreshToken as RefreshTokenModel | undefined) ?? defineModel(sequelize);
  }

  /** Runs `fn` in one READ COMMITTED transaction. */
  transaction<T>(fn: (t: Transaction) => Promise<T>): Promise<T> {
    return this.sequelize.transaction(
      { isolationLevel: Transaction.ISOLATION_LEVELS.READ_COMMITTED },
      fn,
    );
  }

  async insert(input: NewRefreshToken, transaction?: Transaction): Promise<RefreshTokenRecord> {
    const row = await this.model.create(input, { transaction });
    return row.get({ plain: true });
  }

  /**
   * Reads a token and locks its row until the transaction ends: a concurrent refresh of the
   * same token waits here and then sees the first one's outcome.
   */
  async findByHashForUpdate(
    tokenHash: string,
    transaction: Transaction,
  ): Promise<RefreshTokenRecord | null> {
    return (await this.model.findOne({
      where: { tokenHash },
      raw: true,
      transaction,
      lock: transaction.LOCK.UPDATE,
    })) as RefreshTokenRecord | null;
  }

  async findByHash(tokenHash: string): Promise<RefreshTokenRecord | null> {
    return (await this.model.findOne({
      where: { tokenHash },
      raw: true,
    })) as RefreshTokenRecord | null;
  }

  async markUsed(
    id: string,
    replacedBy: string,
    at: Date,
    transaction: Transaction,
  ): Promise<void> {
    await this.model.update({ usedAt: at, replacedBy }, { where: { id }, transaction });
  }

  async revokeFamily(
    familyId: string,
    reason: RevokedReason,
    at: Date,
    transaction?: Transaction,
  ): Promise<number> {
    return this.revokeWhere({ familyId }, reason, at, transaction);
  }

  /** Revokes every live refresh token of the user, optionally sparing one family (the caller's). */
  async revokeAllForUser(
    userId: string,
    reason: RevokedReason,
    at: Date,
    opts: { exceptFamilyId?: string | null; transaction?: Transaction } = {},
  ): Promise<number> {
    const where: WhereOptions<RefreshTokenRecord> = opts.exceptFamilyId
      ? { userId, familyId: { [Op.ne]: opts.exceptFamilyId } }
      : { userId };
    return this.revokeWhere(where, reason, at, opts.transaction);
  }

  /**
   * Row lock on the user, taken first by every transaction that issues (share) or ends
   * (update) sessions, so that those serialise per user in one order and never deadlock.
   */
  async lockUser(
    userId: string,
    mode: 'share' | 'update',
    transaction: Transaction,
  ): Promise<void> {
    await this.sequelize.query(
      `SELECT 1 FROM users WHERE id = :userId FOR ${mode === 'share' ? 'SHARE' : 'UPDATE'}`,
      { replacements: { userId }, transaction },
    );
  }

  /** The session (family) an access token was issued into, if it was issued with a refresh token. */
  async familyOfAccessToken(
    userId: string,
    jti: string,
    transaction?: Transaction,
  ): Promise<string | null> {
    const row = (await this.model.findOne({
      attributes: ['familyId'],
      where: { userId, accessJti: jti },
      raw: true,
      transaction,
    })) as Pick<RefreshTokenRecord, 'familyId'> | null;
    return row?.familyId ?? null;
  }

  /**
   * The access tokens issued into these families at or after `since`, whatever the state of
   * their refresh tokens: those are the ones that may still be live.
   */
  async accessTokensOfFamilies(
    familyIds: string[],
    since: Date,
    transaction?: Transaction,
  ): Promise<{ accessJti: string; createdAt: Date }[]> {
    if (familyIds.length === 0) return [];
    return (await this.model.findAll({
      attributes: ['accessJti', 'createdAt'],
      where: {
        familyId: { [Op.in]: familyIds },
        accessJti: { [Op.ne]: null },
        createdAt: { [Op.gte]: since },
      },
      raw: true,
      transaction,
    })) as unknown as { accessJti: string; createdAt: Date }[];
  }

  private async revokeWhere(
    where: WhereOptions<RefreshTokenRecord>,
    reason: RevokedReason,
    at: Date,
    transaction?: Transaction,
  ): Promise<number> {
    const [count] = await this.model.update(
      { revokedAt: at, revokedReason: reason },
      { where: { ...where, revokedAt: null }, transaction },
    );
    return count;
  }
}
