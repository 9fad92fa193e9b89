/** One task by id: read it, cancel it, delete it, move its publish time. */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { rescheduleUpdate, taskStateQuery } from '../shared/definitions';
import type { TaskDoc, TaskStatus, TaskType } from '../shared/types';
import { auditOf, logAudit, type Actor } from './audit';
import type { ServiceDeps } from './deps';
import { ConflictError, NotFoundError, invalid } from './errors';
import { InvalidCursorError } from '../projection/task-state-manager';
import { TaskControl, type CancelOutcome, type DeleteOutcome } from './task-control';
import { describeTask } from './temporal';
import { readTimeline, type Timeline } from './timeline';

/** The stored JSON, byte for byte what `redis-cli GET celery:task:<id>` shows, or the live document from Temporal. */
/** The parsed query of `GET /tasks` (src/api/schemas.ts ListTasksQuery). */
export interface TaskListQuery {
  status?: TaskStatus;
  type?: TaskType;
  parent?: string;
  platform?: string;
  accountId?: string;
  /** ISO 8601. */
  since?: string;
  until?: string;
  time: 'created' | 'updated';
  search?: string;
  cursor?: string;
  limit: number;
  offset: number;
}

export interface TaskListPage {
  items: TaskDoc[];
  /** Null for a scan. */
  total: number | null;
  next: string | null;
  scanned?: number;
}

export type TaskRead = { raw: string } | { doc: TaskDoc };

/** An ISO time the schema accepted, as epoch ms (a value Date cannot place is a 400, never a NaN score). */
function epochMs(iso: string | undefined, field: string): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw invalid(field, 'is not a time this server can place');
  return ms;
}

export function createTaskService(deps: ServiceDeps) {
  const { client, tsm, store, log } = deps;
  const control = new TaskControl(client, store);

  return {
    /**
     * `GET /tasks`: index filters alone (status, type, parent) are an exact page with a total; any other filter makes
     * it a bounded scan (TaskStateManager.scanTasks says why and how) paged by cursor.
     */
    async listTasks(q: TaskListQuery): Promise<TaskListPage> {
      const { since, until, cursor, search, platform, accountId, time, limit, offset, ...index } = q;
      if ([since, until, cursor, search, platform, accountId].every((v) => v === undefined)) {
        const page = await tsm.listTasks({ ...index, limit, offset });
        return { ...page, next: null };
      }
      try {
        const page = await tsm.scanTasks({
          ...index,
          platform,
          accountId,
          search,
          cursor,
          time,
          limit,
          since: epochMs(since, 'query.since'),
          until: epochMs(until, 'query.until'),
        });
        return { items: page.items, total: null, next: page.next, scanned: page.scanned };
      } catch (err) {
        if (err instanceof InvalidCursorError) throw invalid('query.cursor', err.message);
        throw err;
      }
    },

    /** Every attempt, review and decision, from Temporal's history (see timeline.ts). */
    async timeline(taskId: string): Promise<Timeline> {
      return readTimeline(client, taskId, await tsm.getTaskState(taskId));
    },

    async getTask(taskId: string): Promise<TaskRead> {
      const raw = await tsm.getRaw(taskId);
      if (raw !== null) return { raw };
      // Not in the mirror but still running (e.g. Redis was wiped): ask the truth, so a live task is never hidden.
      // A finished task without a document has expired or was deleted: 404, as redis-cli GET would say.
      const d = await describeTask(client, taskId);
      if (!d || d.status.name !== 'RUNNING') throw new NotFoundError(`task ${taskId}`);
      try {
        return { doc: await client.workflow.getHandle(taskId).query(taskStateQuery) };
      } catch {
        throw new NotFoundError(`task ${taskId}`);
      }
    },

    async cancel(taskId: string, by: Actor, note?: string): Promise<CancelOutcome> {
      const audit = auditOf(by, note);
      const out = await control.cancel(taskId, { audit });
      logAudit(log, 'cancel', { taskId }, audit, out.status);
      return out;
    },

    async remove(taskId: string, opts: { force: boolean; note?: string }, by: Actor): Promise<DeleteOutcome> {
      const audit = auditOf(by, opts.note);
      const out = await control.delete(taskId, await tsm.getTaskState(taskId), { force: opts.force, audit });
      logAudit(log, 'delete', { taskId }, audit, out.terminated ? 'terminated' : 'ok');
      return out;
    },

    /** Moves a scheduled task's publish time; only while it still waits for it. */
    async reschedule(
      taskId: string,
      publishAt: string,
      by: Actor,
      note?: string,
    ): Promise<{ taskId: string; scheduled_for: string }> {
      const d = await describeTask(client, taskId);
      if (!d) throw new NotFoundError(`task ${taskId}`);
      const finished = () => new ConflictError('task_finished', `task ${taskId} has finished; nothing to reschedule`);
      if (d.status.name !== 'RUNNING') throw finished();
      try {
        const audit = auditOf(by, note);
        const out = await client.workflow
          .getHandle(taskId)
          .executeUpdate(rescheduleUpdate, { args: [{ publishAt, audit }] });
        logAudit(log, 'reschedule', { taskId }, audit);
        return { taskId, scheduled_for: out.publishAt };
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError)
          throw new ConflictError(
            'not_waiting',
            err.cause?.message ?? `task ${taskId} is no longer waiting for its publish time`,
          );
        // The run was running a moment ago (described above) and ended before the update reached it: Temporal
        // answers "workflow execution already completed" (WorkflowNotFoundError). A 409 like any finished task's;
        // it was a 500, most likely the one schemathesis found twice fuzzing reschedule.
        if (err instanceof WorkflowNotFoundError) throw finished();
        throw err;
      }
    },
  };
}
