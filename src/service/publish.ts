/**
 * Submitting work: one publish, or a batch. Every request is checked whole before anything starts (a bad item
 * starts nothing), its task id is derived from the Idempotency-Key when there is one, and its first document is
 * both the workflow's memo and the first projection write.
 */
import { createHash, randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type WorkflowStartOptions } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import pLimit from 'p-limit';
import type { PublishPolicy } from '../shared/policy';
import { priorityKey } from '../shared/priority';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes';
import { DOC_MEMO_KEY, initialBatchDoc, initialTaskDoc } from '../shared/task-doc';
import type { PublishRequest, TaskDoc, TaskStatus } from '../shared/types';
import {
  REQUEST_HASH_MEMO_KEY,
  TASK_PROTOCOL,
  WORKFLOW_TYPES,
  type BatchSpacing,
  type PublishBatchInput,
  type PublishBatchWorkflow,
  type PublishSingleInput,
  type PublishSingleWorkflow,
} from '../shared/workflow-contracts';
import type { ServiceDeps } from './deps';
import { IdempotencyMismatchError, InvalidInputError, invalid, TooLargeError, type FieldIssue } from './errors';
import { resolveMediaPath } from './media';

/**
 * A workflow input travels as one Temporal payload, which the server refuses over 2 MiB by default
 * (limit.blobSize.error). A batch's continue-as-new carries the unstarted items plus about one byte per item, so this
 * leaves room for that. About 10,000 typical items fit in a batch; larger batches must be split.
 */
export const MAX_WORKFLOW_INPUT_BYTES = 1_800_000;
/** Items whose accounts and media are checked at once: the checks are file-system calls, each yielding the loop. */
const CHECK_CONCURRENCY = 32;

export interface Submitted {
  taskId: string;
  /** False when the Idempotency-Key had already started this task: nothing new was started. */
  created: boolean;
}

/** A batch item as the route parsed it (merged with the batch's defaults): a publish request, or what is wrong. */
export type ParsedItem = { ok: true; request: PublishRequest } | { ok: false; issues: FieldIssue[] };

export interface BatchSubmission {
  items: ParsedItem[];
  concurrency: number;
  spacing?: BatchSpacing;
  priority: number;
}

/** Workflow ids derived from an Idempotency-Key: the same key always names the same task. */
export function idempotentId(prefix: 'pub' | 'batch', key: string): string {
  return `${prefix}-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

/** The request's fingerprint: the same request (whatever its key order) gives the same hash. */
export function requestHash(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex');
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function checkIdempotencyKey(key: string | undefined): void {
  if (key !== undefined && (key.length === 0 || key.length > 256))
    throw invalid('Idempotency-Key', 'must be 1 to 256 characters');
}

function inputBytes(input: unknown, what: string, items: number): void {
  const bytes = Buffer.byteLength(JSON.stringify(input));
  if (bytes > MAX_WORKFLOW_INPUT_BYTES)
    throw new TooLargeError(
      `${what}_too_large`,
      `this ${what} is ${bytes} bytes as a workflow input; the limit is ${MAX_WORKFLOW_INPUT_BYTES}` +
        (what === 'batch' ? ': split it into smaller batches' : ''),
      { bytes, limit: MAX_WORKFLOW_INPUT_BYTES, items },
    );
}

export function createPublishService(deps: ServiceDeps) {
  const { client, store, tsm, accounts, drivers, config, log } = deps;

  function checkHorizon(publishAt: string, field: string): void {
    if (Date.parse(publishAt) > Date.now() + config.scheduleHorizonMs)
      throw invalid(
        field,
        `more than ${Math.round(config.scheduleHorizonMs / 86_400_000)} days ahead (PUBFLOW_SCHEDULE_HORIZON)`,
      );
  }

  /** Checks one parsed request against the drivers, the accounts, the horizon and the media root. */
  async function toRequest(body: PublishRequest, where: string): Promise<PublishRequest> {
    const f = (name: string) => (where ? `${where}.${name}` : name);
    if (!drivers.get(body.platform))
      throw invalid(f('platform'), `unknown platform "${body.platform}" (known: ${drivers.platforms().join(', ')})`);
    const account = accounts.get(body.accountId);
    if (!account) throw invalid(f('accountId'), `unknown account "${body.accountId}"`);
    if (account.platform !== body.platform)
      throw invalid(
        f('platform'),
        `account "${account.id}" is on platform "${account.platform}", not "${body.platform}"`,
      );
    if (body.publishAt) checkHorizon(body.publishAt, f('publishAt'));
    const request: PublishRequest = {
      ...body,
      video: { path: await resolveMediaPath(config.mediaRoot, body.video.path, f('video.path')) },
    };
    if (body.cover)
      request.cover = { path: await resolveMediaPath(config.mediaRoot, body.cover.path, f('cover.path')) };
    return request;
  }

  /**
   * The task an Idempotency-Key already started. A different request under the same key is refused: returning the
   * first task would tell the client its second request was accepted.
   */
  async function existing(taskId: string, hash: string): Promise<void> {
    const d = await client.workflow.getHandle(taskId).describe();
    const stored = d.memo?.[REQUEST_HASH_MEMO_KEY];
    if (typeof stored === 'string' && stored !== hash) throw new IdempotencyMismatchError(taskId);
  }

  /**
   * Starts the task's workflow, its memo holding the request's hash and, for a single, its first document (until the
   * task ends, the reconciler can rebuild it from visibility alone when no worker answers its query; the single's
   * projector writes its final document there as it ends; runs before protocol 2 also on every status change). A batch never updates a document memo, so it gets none: the
   * reconciler would take a stale v1 memo for the truth and asks a batch's query instead. Then writes the document.
   */
  async function start<W extends PublishSingleWorkflow | PublishBatchWorkflow>(
    type: string,
    doc: TaskDoc,
    hash: string,
    options: Omit<WorkflowStartOptions<W>, 'memo' | 'workflowId' | 'taskQueue' | 'workflowIdConflictPolicy'>,
    { docInMemo }: { docInMemo: boolean },
  ): Promise<boolean> {
    try {
      const handle = await client.workflow.start<W>(type, {
        ...(options as WorkflowStartOptions<W>),
        workflowId: doc.task_id,
        taskQueue: config.temporal.taskQueue,
        memo: { ...(docInMemo ? { [DOC_MEMO_KEY]: doc } : {}), [REQUEST_HASH_MEMO_KEY]: hash },
        // The id is the task: one key, one task, ever (within retention). Temporal enforces it.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
      // Visible at once; best-effort (the workflow writes every later version, and Redis may be down).
      await store
        .write({ ...doc, run_id: handle.firstExecutionRunId })
        .catch((err: Error) =>
          log.warn('initial projection write failed', { taskId: doc.task_id, error: err.message }),
        );
      return true;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        await existing(doc.task_id, hash);
        return false;
      }
      throw err;
    }
  }

  async function currentStatus(taskId: string): Promise<TaskStatus> {
    const doc = await tsm.getTaskState(taskId).catch(() => null);
    return doc?.status ?? 'pending';
  }

  return {
    async submitSingle(
      body: PublishRequest,
      opts: { idempotencyKey?: string } = {},
    ): Promise<Submitted & { status: TaskStatus }> {
      checkIdempotencyKey(opts.idempotencyKey);
      const request = await toRequest(body, '');
      const taskId = opts.idempotencyKey ? idempotentId('pub', opts.idempotencyKey) : `pub-${randomUUID()}`;
      const createdAt = new Date().toISOString();
      const input: PublishSingleInput = {
        request,
        policy: config.policyFor(request.platform),
        createdAt,
        protocol: TASK_PROTOCOL,
      };
      inputBytes(input, 'publish', 1);
      const doc = initialTaskDoc({ taskId, request, parentTaskId: null, createdAt, runId: null });
      const created = await start<PublishSingleWorkflow>(
        WORKFLOW_TYPES.publishSingle,
        doc,
        requestHash(body),
        {
          args: [input],
          priority: { priorityKey: priorityKey(request.priority) },
          typedSearchAttributes: new TypedSearchAttributes([
            { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'pending' },
            { key: SEARCH_ATTRIBUTE_KEYS.type, value: 'publish' },
            { key: SEARCH_ATTRIBUTE_KEYS.platform, value: request.platform },
            { key: SEARCH_ATTRIBUTE_KEYS.account, value: request.accountId },
          ]),
        },
        { docInMemo: true },
      );
      return { taskId, created, status: created ? 'pending' : await currentStatus(taskId) };
    },

    async submitBatch(
      batch: BatchSubmission,
      opts: { idempotencyKey?: string } = {},
    ): Promise<Submitted & { total: number }> {
      checkIdempotencyKey(opts.idempotencyKey);
      const requests = await checkItems(batch.items);
      const total = requests.length;
      const taskId = opts.idempotencyKey ? idempotentId('batch', opts.idempotencyKey) : `batch-${randomUUID()}`;
      const createdAt = new Date().toISOString();
      const policies: Record<string, PublishPolicy> = {};
      for (const r of requests) policies[r.platform] ??= config.policyFor(r.platform);
      const input: PublishBatchInput = {
        items: requests,
        policies,
        concurrency: batch.concurrency,
        spacing: batch.spacing,
        createdAt,
        priority: batch.priority,
        protocol: TASK_PROTOCOL,
      };
      inputBytes(input, 'batch', total);
      const doc = initialBatchDoc({ taskId, total, ...batch, createdAt, runId: null });
      const created = await start<PublishBatchWorkflow>(
        WORKFLOW_TYPES.publishBatch,
        doc,
        requestHash(batch),
        {
          args: [input],
          // The batch's own workflow tasks go first, as the gates' do: they are bookkeeping (starting children,
          // counting their reports, writing the batch document), and behind a backlog of its own children's tasks the
          // batch document lagged 30-45 s on a 1,000-item batch. The children, and so the uploads, keep the items'
          // priorities (children are started with their own priority, not the parent's).
          priority: { priorityKey: priorityKey(0) },
          typedSearchAttributes: new TypedSearchAttributes([
            { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'pending' },
            { key: SEARCH_ATTRIBUTE_KEYS.type, value: 'batch_publish' },
          ]),
        },
        { docInMemo: false },
      );
      if (created) return { taskId, created, total };
      const stored = await tsm.getTaskState(taskId).catch(() => null);
      return { taskId, created, total: stored?.counts?.total ?? total };
    },

    toRequest,
    checkHorizon,
  };

  /**
   * Every item checked like a single; all problems (the route's and these) are collected, in item order, and nothing
   * is started if any item is bad. Items are numbered from 0, as in the request.
   */
  async function checkItems(items: ParsedItem[]): Promise<PublishRequest[]> {
    const limit = pLimit(CHECK_CONCURRENCY);
    const issues: (FieldIssue[] | undefined)[] = items.map((item) => (item.ok ? undefined : item.issues));
    const checked = await Promise.all(
      items.map((item, i) =>
        limit(async () => {
          if (!item.ok) return null;
          try {
            return await toRequest(item.request, `items[${i}]`);
          } catch (err) {
            if (!(err instanceof InvalidInputError)) throw err;
            issues[i] = err.issues;
            return null;
          }
        }),
      ),
    );
    const bad = issues.filter((x) => x !== undefined);
    if (bad.length === 0) return checked as PublishRequest[];
    const all = bad.flat();
    const first = all[0] ?? { field: 'items', message: 'invalid' };
    throw new InvalidInputError(
      all,
      `${bad.length} of ${items.length} items are invalid; nothing was started (first: ${first.field}: ${first.message})`,
    );
  }
}

export type PublishService = ReturnType<typeof createPublishService>;
