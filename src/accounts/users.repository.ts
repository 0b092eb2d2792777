import {
  DataTypes,
  UniqueConstraintError,
  type Model,
  type ModelStatic,
  type Sequelize,
  type Transaction,
} from 'sequelize';
import { ConflictError, ErrorCode } from '../errors';

export interface UserRecord {
  id: string;
  email: string;
  hashedPassword: string;
  isActive: boolean;
  isAdmin: boolean;
  /** Access tokens issued before this moment are refused (set by a password change or reset). */
  tokensValidAfter: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

type UserModel = ModelStatic<Model<UserRecord, Partial<UserRecord>>>;

export function defineUserModel(sequelize: Sequelize): UserModel {
  return sequelize.define<Model<UserRecord, Partial<UserRecord>>>(
    'User',
    {
      id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
      email: { type: DataTypes.STRING(255), allowNull: false },
      hashedPassword: { type: DataTypes.STRING(255), allowNull: false },
      isActive: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
      isAdmin: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
      tokensValidAfter: { type: DataTypes.DATE(3), allowNull: true },
      createdAt: { type: DataTypes.DATE, allowNull: false },
      updatedAt: { type: DataTypes.DATE, allowNull: false },
    },
    { tableName: 'users', underscored: true },
  );
}

/** Sequelize queries for users; returns plain objects, never model instances. */
export class UsersRepository {
  readonly model: UserModel;

  constructor(sequelize: Sequelize) {
    this.model = (sequelize.models.User as UserModel | undefined) ?? defineUserModel(sequelize);
  }

  /** The unique index decides duplicates (no check-then-insert), so racing inserts yield one row. */
  async create(
    input: { email: string; hashedPassword: string; isAdmin?: boolean },
    transaction?: Transaction,
  ): Promise<UserRecord> {
    try {
      const row = await this.model.create(input, { transaction });
      return row.get({ plain: true });
    } catch (err) {
      if (err instanceof UniqueConstraintError) {
        throw new ConflictError(ErrorCode.emailTaken, 'An account with this email already exists.');
      }
      throw err;
    }
  }

  async findById(id: string, transaction?: Transaction): Promise<UserRecord | null> {
    return (await this.model.findOne({
      where: { id },
      raw: true,
      transaction,
    })) as UserRecord | null;
  }

  async findByEmail(email: string, transaction?: Transaction): Promise<UserRecord | null> {
    return (await this.model.findOne({
      where: { email },
      raw: true,
      transaction,
    })) as UserRecord | null;
  }

  /**
   * Swaps the stored hash for an equivalent one (same password, another cost), only if it is
   * still `from`: a password changed meanwhile wins. Not a user-visible change: updated_at stays.
   */
  async replacePasswordHash(id: string, from: string, to: string): Promise<boolean> {
    const [count] = await this.model.update(
      { hashedPassword: to },
      { where: { id, hashedPassword: from }, silent: true },
    );
    return count === 1;
  }

  async update(
    id: string,
    changes: Partial<
      Pick<UserRecord, 'hashedPassword' | 'isActive' | 'isAdmin' | 'tokensValidAfter'>
    >,
    transaction?: Transaction,
  ): Promise<UserRecord | null> {
    const [count, rows] = await this.model.update(changes, {
      where: { id },
      returning: true,
      transaction,
    });
    return count === 0 ? null : rows[0]!.get({ plain: true });
  }
}
