/** pubflow priority: 0..9, 0 most urgent, 5 the default (as in the old system). */
export const DEFAULT_PRIORITY = 5;

/**
 * pubflow priority 0..9 onto Temporal's priority key 1..N (lower runs first).
 * With `matching.priorityLevels=10` on the server the mapping is one-to-one: key = priority + 1.
 */
export function priorityKey(priority: number): number {
  return Math.min(9, Math.max(0, Math.round(priority))) + 1;
}
