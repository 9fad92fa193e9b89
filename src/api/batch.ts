/**
 * Batch routes: `POST /publish/batch` and `POST /reviews/retry-all`, registered on the `/api/v1` router by
 * createApp (which owns the single-item validation, `toRequest`).
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { Request, Response, Router } from 'express';
import type { z } from 'zod';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { ProjectionStore } from '../projection/store';
import type { TaskStateManager } from '../projection/task-state-manager';
import { reviewDecisionUpdate } from '../shared/definitions';
import type { PublishPolicy } from '../shared/policy';
import { DEFAULT_PRIORITY, priorityKey } from '../shared/priority';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes';
import type { PublishRequest } from '../shared/types';
import { initialBatchDoc, type PublishBatchInput } from '../workflows/publish-batch';
import { ApiError, badRequest, fieldName, fromZod } from './errors';
import { BatchBody, PublishBody, RetryAllBody } from './schemas';

export { MAX_BATCH_CONCURRENCY, MAX_BATCH_ITEMS } from './schemas';

/**
 * The workflow input travels as one Temporal payload, which the server refuses over 2 MiB by default
 * (limit.blobSize.error). Continue-as-new carries the unstarted items plus about one byte per item, so this leaves
 * room for that. About 10,000 typical items fit; larger batches must be split (or the limit raised on the server).
 */
export const MAX_BATCH_INPUT_BYTES = 1_800_000;
/** Review decisions sent at once by retry-all. */
const RETRY_ALL_CONCURRENCY = 16;

export interface BatchRouteContext {
  client: Client;
  store: ProjectionStore;
  tsm: TaskStateManager;
  config: Pick<Config, 'policyFor' | 'temporal'>;
  log: Logger;
  /** createApp's check of one parsed publish body against accounts, drivers and the media root. */
  toRequest: (body: PublishBody, where: string) => PublishRequest;
}

interface FieldIssue {
  field: string;
  message: string;
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw fromZod(where, r.error);
  return r.data;
}

/** Same derivation as singles (app.ts), under its own prefix. */
export function idempotentBatchId(key: string): string {
  return `batch-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

/** Every item, merged with the defaults and checked like a single; all problems are collected, none started. */
function toRequests(body: BatchBody, toRequest: BatchRouteContext['toRequest']): PublishRequest[] {
  const requests: PublishRequest[] = [];
  const issues: FieldIssue[] = [];
  let badItems = 0;
  body.items.forEach((item, i) => {
    const where = `items[${i}]`;
    const merged = PublishBody.safeParse({ ...body.defaults, ...item });
    if (!merged.success) {
      badItems++;
      for (const issue of merged.error.issues)
        issues.push({ field: fieldName(where, issue.path), message: issue.message });
      return;
    }
    try {
      requests.push(toRequest(merged.data, where));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 400) throw err;
      badItems++;
      issues.push(
        ...(Array.isArray(err.details) ? (err.details as FieldIssue[]) : [{ field: where, message: err.message }]),
      );
    }
  });
  if (badItems > 0) {
    const first = issues[0]!;
    throw new ApiError(
      400,
      'invalid_request',
      `${badItems} of ${body.items.length} items are invalid; nothing was started (first: ${first.field}: ${first.message})`,
      issues,
    );
  }
  return requests;
}

async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

export function registerBatchRoutes(api: Router, ctx: BatchRouteContext): void {
  const { client, store, tsm, config, log } = ctx;

  api.post('/publish/batch', async (req: Request, res: Response) => {
    const body = parse(BatchBody, req.body, '');
    const key = req.get('Idempotency-Key');
    if (key !== undefined && (key.length === 0 || key.length > 256))
      throw badRequest('Idempotency-Key', 'must be 1 to 256 characters');
    const requests = toRequests(body, ctx.toRequest);
    const total = requests.length;
    const taskId = key ? idempotentBatchId(key) : `batch-${randomUUID()}`;
    const createdAt = new Date().toISOString();
    const priority = body.defaults.priority ?? DEFAULT_PRIORITY;
    const policies: Record<string, PublishPolicy> = {};
    for (const r of requests) policies[r.platform] ??= config.policyFor(r.platform);
    const input: PublishBatchInput = {
      items: requests,
      policies,
      concurrency: body.concurrency,
      spacing: body.spacing,
      createdAt,
      priority,
    };
    const bytes = Buffer.byteLength(JSON.stringify(input));
    if (bytes > MAX_BATCH_INPUT_BYTES)
      throw new ApiError(
        413,
        'batch_too_large',
        `this batch is ${bytes} bytes as a workflow input; the limit is ${MAX_BATCH_INPUT_BYTES}: split it into smaller batches`,
        { bytes, limit: MAX_BATCH_INPUT_BYTES, items: total },
      );
    try {
      const handle = await client.workflow.start('publishBatch', {
        taskQueue: config.temporal.taskQueue,
        workflowId: taskId,
        args: [input],
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        // The batch's own workflow tasks go first, as the gates' do: they are bookkeeping (starting children,
        // counting their reports, writing the batch document), and behind a backlog of its own children's tasks the
        // batch document lagged 30-45 s on a 1,000-item batch. The children, and so the uploads, keep the items'
        // priorities (children are started with their own priority, not the parent's).
        priority: { priorityKey: priorityKey(0) },
        typedSearchAttributes: new TypedSearchAttributes([
          { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'pending' },
          { key: SEARCH_ATTRIBUTE_KEYS.type, value: 'batch_publish' },
        ]),
      });
      await store
        .write(
          initialBatchDoc({
            taskId,
            total,
            concurrency: body.concurrency,
            spacing: body.spacing,
            priority,
            createdAt,
            runId: handle.firstExecutionRunId,
          }),
        )
        .catch((err: Error) => log.warn('initial projection write failed', { taskId, error: err.message }));
      res.status(202).json({ taskId, total });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        const existing = await tsm.getTaskState(taskId).catch(() => null);
        res.status(200).json({ taskId, total: existing?.counts?.total ?? total });
        return;
      }
      throw err;
    }
  });

  api.post('/reviews/retry-all', async (req: Request, res: Response) => {
    const { note, ...filter } = parse(RetryAllBody, req.body, 'body');
    const ids = await tsm.listReviewTaskIds(filter);
    const outcomes = await mapBounded(ids, RETRY_ALL_CONCURRENCY, async (taskId) => {
      try {
        await client.workflow
          .getHandle(taskId)
          .executeUpdate(reviewDecisionUpdate, { args: [{ action: 'retry', note }] });
        return null;
      } catch (err) {
        // Decided or closed since it was listed: report it, carry on with the rest.
        if (err instanceof WorkflowUpdateFailedError)
          return { taskId, code: 'no_open_review', message: err.cause?.message ?? 'no open review' };
        if (err instanceof WorkflowNotFoundError)
          return { taskId, code: 'review_closed', message: 'task has finished' };
        log.warn('retry-all: decision failed', { taskId, error: (err as Error).message });
        return { taskId, code: 'error', message: (err as Error).message };
      }
    });
    const failed = outcomes.filter((o) => o !== null);
    res.json({ matched: ids.length, retried: ids.length - failed.length, failed });
  });
}
