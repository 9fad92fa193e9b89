/** Batch routes: `POST /publish/batch` and `POST /reviews/retry-all`, registered on the `/api/v1` router. */
import type { Router } from 'express';
import type { PubflowService } from '../service';
import type { ParsedItem } from '../service/publish';
import { DEFAULT_PRIORITY } from '../shared/priority';
import { principalOf, requireRole as role } from './auth';
import { fieldName, parse } from './errors';
import { BatchBody, PublishBody, RetryAllBody } from './schemas';

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
  api.post('/publish/batch', role('publisher'), async (req, res) => {
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

  api.post('/reviews/retry-all', role('operator'), async (req, res) => {
    const { note, ...filter } = parse(RetryAllBody, req.body, 'body');
    res.json(await service.retryAll(filter, note, principalOf(req)));
  });
}
