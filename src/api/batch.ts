/** Batch routes: `POST /publish/batch` and `POST /reviews/retry-all`, registered on the `/api/v1` router. */
import type { Router } from 'express';
import { z } from 'zod';
import type { PubflowService } from '../service';
import type { ParsedItem } from '../service/publish';
import { DEFAULT_PRIORITY } from '../shared/priority';
import { fieldName, parse } from './errors';
import { PublishBody } from './schemas';

export const MAX_BATCH_ITEMS = 100_000;
export const MAX_BATCH_CONCURRENCY = 1000;

/**
 * Fields every item gets unless it sets them (a shallow merge: an item's `options` replaces the default's).
 * `priority` defaults to 5, so an item's priority is the batch's unless the item sets its own.
 */
export const BatchDefaults = PublishBody.partial();

export const BatchBody = z
  .object({
    // Each item is validated as a publish body after the defaults are merged under it (see below).
    items: z.array(z.record(z.string(), z.unknown())).min(1).max(MAX_BATCH_ITEMS),
    defaults: BatchDefaults.default({ priority: DEFAULT_PRIORITY }),
    concurrency: z.number().int().min(1).max(MAX_BATCH_CONCURRENCY).default(50),
    spacing: z
      .object({
        intervalSeconds: z.number().min(0).max(86_400).default(0),
        jitterSeconds: z.number().min(0).max(86_400).default(0),
      })
      .strict()
      .optional(),
  })
  .strict();
export type BatchBody = z.infer<typeof BatchBody>;

/** `{batchId}` or the filters of `GET /reviews`; no filter at all retries every open review (like Sidekiq's). */
export const RetryAllBody = z
  .object({
    batchId: z.string().min(1).optional(),
    platform: z.string().min(1).optional(),
    accountId: z.string().min(1).optional(),
    kind: z.string().min(1).optional(),
    note: z.string().max(2000).optional(),
  })
  .strict();

/** Each item merged over the defaults and parsed as a publish body; the service names every bad one. */
function parseItems(body: BatchBody): ParsedItem[] {
  return body.items.map((item, i) => {
    const merged = PublishBody.safeParse({ ...body.defaults, ...item });
    if (merged.success) return { ok: true, request: merged.data };
    const issues = merged.error.issues.map((issue) => ({
      field: fieldName(`items[${i}]`, issue.path),
      message: issue.message,
    }));
    return { ok: false, issues };
  });
}

export function registerBatchRoutes(api: Router, service: PubflowService): void {
  api.post('/publish/batch', async (req, res) => {
    const body = parse(BatchBody, req.body, '');
    const out = await service.submitBatch(
      {
        items: parseItems(body),
        concurrency: body.concurrency,
        spacing: body.spacing,
        priority: body.defaults.priority ?? DEFAULT_PRIORITY,
      },
      { idempotencyKey: req.get('Idempotency-Key') },
    );
    res.status(out.created ? 202 : 200).json({ taskId: out.taskId, total: out.total });
  });

  api.post('/reviews/retry-all', async (req, res) => {
    const { note, ...filter } = parse(RetryAllBody, req.body, 'body');
    res.json(await service.retryAll(filter, note));
  });
}
