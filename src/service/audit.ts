/**
 * The audit trail (issue "Access control" §2): every human action carries who (the API key's name and role), when,
 * and the note. The service puts it into the update's or signal's arguments, so Temporal's history keeps it and the
 * workflow copies it into the task document's `decisions`; it also writes one `audit` log line per action, which is
 * the only record of a delete (the document is gone; a forced delete's terminate reason names the person too).
 */
import type { Logger } from '../log';
import type { Actor, Audit, DecisionAction } from '../shared/types';

export type { Actor } from '../shared/types';

/** The audit of an action `actor` takes now. */
export function auditOf(actor: Actor, note?: string, via?: Audit['via']): Audit {
  return {
    by: { name: actor.name, role: actor.role },
    at: new Date().toISOString(),
    ...(note !== undefined && note !== '' ? { note } : {}),
    ...(via ? { via } : {}),
  };
}

/** One `audit` log line: action, target, who, note and how it ended; never a token. */
export function logAudit(
  log: Logger,
  action: DecisionAction | 'retry-all',
  target: { taskId?: string; accountId?: string; matched?: number; retried?: number },
  audit: Audit,
  outcome: 'ok' | string = 'ok',
): void {
  log.info('audit', {
    audit: true,
    action,
    ...target,
    by: audit.by.name,
    role: audit.by.role,
    at: audit.at,
    note: audit.note ?? null,
    ...(audit.via ? { via: audit.via } : {}),
    outcome,
  });
}

/** A terminate reason that says who deleted the task (it stays in the run's history). */
export const deletedBy = (audit: Audit, what: string) =>
  `${what} by ${audit.by.name} (${audit.by.role})${audit.note ? `: ${audit.note}` : ''}`;
