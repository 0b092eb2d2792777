import type { Schemas } from '../http/contract';
import type { UserRecord } from './users.repository';

/** Records -> response bodies of the accounts feature; shapes come from the spec. */

export function toUser(u: UserRecord): Schemas['User'] {
  return {
    id: u.id,
    email: u.email,
    is_active: u.isActive,
    is_admin: u.isAdmin,
    email_verified: u.emailVerifiedAt !== null,
    mfa_enabled: u.mfaEnabled,
    created_at: new Date(u.createdAt).toISOString(),
  };
}
