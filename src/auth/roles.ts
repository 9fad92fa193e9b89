/** API roles, each including every right of the ones before it (docs/security.md). */
export const ROLES = ['viewer', 'publisher', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who made a request: the key's name and role. */
export interface Principal {
  name: string;
  role: Role;
}

export const roleRank = (role: Role): number => ROLES.indexOf(role);

/** True when `role` has every right of `required` (admin ⊇ operator ⊇ publisher ⊇ viewer). */
export const roleAtLeast = (role: Role, required: Role): boolean => roleRank(role) >= roleRank(required);

export const isRole = (value: unknown): value is Role => (ROLES as readonly unknown[]).includes(value);
