/**
 * Cancel and delete: the two write operations of the old task_state_manager API. They act on Temporal (the truth)
 * and then on the projection. Only task workflows answer to a task id: an internal workflow (a gate, a schedule's
 * run) is "not found".
 */
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { accountGateId, cancelRequestedSignal, gateRunClosedSignal, platformGateId } from '../shared/definitions';
import type { Audit, TaskDoc } from '../shared/types';
import { WORKFLOW_TYPES } from '../shared/workflow-contracts';
import { deletedBy } from './audit';
import { ConflictError, NotFoundError } from './errors';
import { describeTask } from './temporal';
import { parentIndex } from '../projection/keys';
import type { ProjectionStore } from '../projection/store';

export interface CancelOutcome {
  taskId: string;
  /** 'cancelling' when the workflow had not confirmed within the wait. */
  status: 'cancelled' | 'cancelling';
}

export interface DeleteOutcome {
  taskId: string;
  deleted: boolean;
  terminated: boolean;
  /** A batch: its children's documents deleted, and open children terminated (force=true). */
  children?: { deleted: number; terminated: number };
}

/** Child documents deleted (and tombstoned) this many at a time. */
const CHILD_DELETE_CHUNK = 500;

/** A document whose outcome is decided: the workflow may still be finishing its last write. */
export const isSettled = (doc: TaskDoc) =>
  doc.status === 'success' || doc.status === 'cancelled' || (doc.status === 'failed' && doc.review?.open !== true);

export class TaskControl {
  constructor(
    private readonly client: Client,
    private readonly store: ProjectionStore,
  ) {}

  describe(taskId: string): Promise<WorkflowExecutionDescription | null> {
    return describeTask(this.client, taskId);
  }

  /** Resolves when the workflow closes or after `ms`, whichever is first. */
  async settleWithin(taskId: string, ms: number): Promise<'closed' | 'cancelled' | 'waiting'> {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      this.client.workflow
        .getHandle(taskId)
        .result()
        .then(
          () => 'closed' as const,
          () => 'cancelled' as const,
        ),
      new Promise<'waiting'>((r) => (timer = setTimeout(() => r('waiting'), ms))),
    ]);
    clearTimeout(timer);
    return outcome;
  }

  /** Cancels a pending, scheduled, running or in-review task; a running upload is aborted. */
  async cancel(taskId: string, opts: { waitMs?: number; audit?: Audit } = {}): Promise<CancelOutcome> {
    const d = await this.describe(taskId);
    if (!d) throw new NotFoundError(`task ${taskId}`);
    if (d.status.name !== 'RUNNING')
      throw new ConflictError(
        'task_finished',
        `task ${taskId} has already finished (${d.status.name.toLowerCase()}); nothing to cancel`,
      );
    const handle = this.client.workflow.getHandle(taskId);
    // Who asked goes into the history (and the document) first: a cancel request carries no arguments.
    if (opts.audit) await handle.signal(cancelRequestedSignal, opts.audit).catch(() => undefined);
    await handle.cancel();
    // Wait briefly for the driver to abort, so the answer can say "cancelled" rather than "cancelling".
    const outcome = await this.settleWithin(taskId, opts.waitMs ?? 10_000);
    // The task had already reached its outcome and was only finishing its last status write.
    if (outcome === 'closed')
      throw new ConflictError('task_finished', `task ${taskId} finished before the cancel took effect`);
    return { taskId, status: outcome === 'cancelled' ? 'cancelled' : 'cancelling' };
  }

  /**
   * Removes the document and its index entries; an open workflow is a conflict unless `force` terminates it. A
   * batch takes its children with it, under the same rule: an open child is a conflict unless `force`.
   */
  async delete(
    taskId: string,
    stored: TaskDoc | null,
    opts: { force?: boolean; audit?: Audit } = {},
  ): Promise<DeleteOutcome> {
    const reason = (what: string) => (opts.audit ? deletedBy(opts.audit, what) : what);
    let d = await this.describe(taskId);
    if (!d && !stored) throw new NotFoundError(`task ${taskId}`);
    if (d?.status.name === 'RUNNING' && stored && isSettled(stored)) {
      await this.settleWithin(taskId, 5000);
      d = await this.describe(taskId);
    }
    const open = d?.status.name === 'RUNNING';
    if (open && !opts.force)
      throw new ConflictError(
        'task_open',
        `task ${taskId} is still running; cancel it first, or delete with force=true to terminate it`,
      );
    const isBatch = stored?.task_type === 'batch_publish' || d?.type === WORKFLOW_TYPES.publishBatch;
    if (isBatch && !opts.force) {
      const openChildren = await this.childIds(taskId, true);
      if (openChildren.length > 0)
        throw new ConflictError(
          'children_open',
          `${openChildren.length} children of batch ${taskId} are still running; cancel the batch first, or delete with force=true to terminate them`,
        );
    }
    if (open) {
      // The batch first, so that it starts no further child.
      await this.client.workflow.getHandle(taskId).terminate(reason('deleted with force=true'));
      if (!isBatch) await this.releaseGates(d!, stored);
    }
    let children: DeleteOutcome['children'];
    if (isBatch) {
      let terminated = 0;
      const openChildren = opts.force ? await this.childIds(taskId, true) : [];
      for (const id of openChildren)
        if (await this.terminateOpen(id, reason(`batch ${taskId} deleted with force=true`))) terminated++;
      const ids = new Set([
        ...(await this.store.redis.zrange(parentIndex(taskId), 0, -1)),
        ...(await this.childIds(taskId, false)),
      ]);
      let deleted = 0;
      const all = [...ids];
      for (let k = 0; k < all.length; k += CHILD_DELETE_CHUNK) {
        const outcomes = await Promise.all(all.slice(k, k + CHILD_DELETE_CHUNK).map((id) => this.store.delete(id)));
        deleted += outcomes.filter(Boolean).length;
      }
      children = { deleted, terminated };
    }
    const deleted = await this.store.delete(taskId);
    return { taskId, deleted: deleted || stored !== null, terminated: open, ...(children ? { children } : {}) };
  }

  /** The batch's children Temporal knows (open ones only, or all), from visibility. */
  private async childIds(batchId: string, openOnly: boolean): Promise<string[]> {
    const ids: string[] = [];
    const query =
      `PubflowParent = '${batchId.replace(/'/g, "\\'")}'` + (openOnly ? ` AND ExecutionStatus = 'Running'` : '');
    for await (const e of this.client.workflow.list({ query })) ids.push(e.workflowId);
    return ids;
  }

  /** Terminates a still-open task and gives back its account turn; false if it had closed meanwhile. */
  private async terminateOpen(taskId: string, reason: string): Promise<boolean> {
    const d = await this.describe(taskId);
    if (d?.status.name !== 'RUNNING') return false;
    try {
      await this.client.workflow.getHandle(taskId).terminate(reason);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
    await this.releaseGates(d, null);
    return true;
  }

  /**
   * A terminated run cannot give back its turn on its account (or platform slot): tell the gates at once, rather than
   * leave the account blocked until the gate's next lease check. Best effort: the lease check remains the backstop.
   */
  private async releaseGates(d: WorkflowExecutionDescription, stored: TaskDoc | null): Promise<void> {
    const sa = (key: string) => {
      const v = d.searchAttributes?.[key];
      return Array.isArray(v) && typeof v[0] === 'string' ? v[0] : null;
    };
    const accountId = stored?.account_id ?? sa('PubflowAccount');
    const platform = stored?.platform ?? sa('PubflowPlatform');
    const gates = [
      ...(accountId ? [accountGateId(accountId, d.taskQueue)] : []),
      ...(platform ? [platformGateId(platform, d.taskQueue)] : []),
    ];
    await Promise.all(
      gates.map(
        (gateId) =>
          this.client.workflow
            .getHandle(gateId)
            .signal(gateRunClosedSignal, { workflowId: d.workflowId, runId: d.runId })
            .catch(() => undefined), // no such gate running: it holds nothing of this run
      ),
    );
  }
}
