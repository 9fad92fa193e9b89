import type { Role } from '../auth/roles';

/**
 * Each desk action, the API route it stands for, and that route's least role: the same table as the API's
 * (src/api/app.ts, docs/security.md). test/desk/desk-auth.test.ts checks each against the API itself.
 */
export const DESK_ACTIONS = {
  retry: 'operator', // POST /api/v1/reviews/:taskId/retry
  resolve: 'operator', // POST /api/v1/reviews/:taskId/resolve
  discard: 'operator', // POST /api/v1/reviews/:taskId/discard
  retryAll: 'operator', // POST /api/v1/reviews/retry-all
  reactivate: 'operator', // POST /api/v1/accounts/:id/reactivate
  cancel: 'publisher', // POST /api/v1/tasks/:id/cancel
} as const satisfies Record<string, Role>;

export type DeskAction = keyof typeof DESK_ACTIONS;
