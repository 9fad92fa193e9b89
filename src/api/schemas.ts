/**
 * Every request and response of the HTTP API as one zod schema. Routes parse requests with these; the OpenAPI
 * document (openapi.ts) is generated from the same schemas, and the API tests validate every response against it.
 */
import { z } from 'zod';
import { DECISION_ACTIONS, ERROR_KINDS, TASK_STATUSES, TASK_TYPES } from '../shared/types';
import { DEFAULT_PRIORITY } from '../shared/priority';

// ---------------------------------------------------------------- client strings

/** A lone UTF-16 surrogate cannot be encoded as UTF-8: Temporal, Redis and platforms would each mangle it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const hasLoneSurrogate = (s: string): boolean => LONE_SURROGATE.test(s);
const WELL_FORMED = 'must not contain a lone UTF-16 surrogate';

/** Every string a client sends: well-formed Unicode. */
const text = () => z.string().refine((s) => !hasLoneSurrogate(s), WELL_FORMED);
const nonEmpty = () => text().min(1, 'must not be empty');

const isoWithOffset = () =>
  z.iso.datetime({ offset: true, message: 'must be ISO 8601 with an offset, e.g. 2026-12-01T09:00:00+08:00' });

const fileRef = z.object({ path: nonEmpty() }).strict();

export const OPTIONS_MAX_DEPTH = 8;
export const OPTIONS_MAX_BYTES = 16 * 1024;

type Issue = { path: PropertyKey[]; message: string };

/**
 * Depth (the options object is level 1) and well-formed keys and strings, walked without recursion past the limit,
 * so a deeply nested body is a 400 and never a stack overflow.
 */
function checkOptions(value: Record<string, unknown>): Issue | null {
  const stack: Array<{ v: unknown; depth: number; path: PropertyKey[] }> = [{ v: value, depth: 1, path: [] }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (hasLoneSurrogate(v)) return { path, message: WELL_FORMED };
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth > OPTIONS_MAX_DEPTH) return { path, message: `must be nested at most ${OPTIONS_MAX_DEPTH} levels deep` };
    for (const [k, child] of Object.entries(v)) {
      // Named by its parent: the key itself cannot be written in a field name.
      if (hasLoneSurrogate(k)) return { path, message: `a key ${WELL_FORMED}` };
      stack.push({ v: child, depth: depth + 1, path: [...path, Array.isArray(v) ? Number(k) : k] });
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > OPTIONS_MAX_BYTES) return { path: [], message: `must be at most ${OPTIONS_MAX_BYTES} bytes as JSON` };
  return null;
}

const options = z
  .record(z.string(), z.unknown())
  .superRefine((v, ctx) => {
    const issue = checkOptions(v);
    if (issue) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message, input: v });
  })
  .meta({
    description:
      `Platform options, passed to the driver. At most ${OPTIONS_MAX_DEPTH} levels deep (this object is level 1), ` +
      `at most ${OPTIONS_MAX_BYTES} bytes (16 KiB) as JSON, and no lone UTF-16 surrogate in any key or string.`,
  });

// ---------------------------------------------------------------- requests

export const PublishBody = z
  .object({
    platform: nonEmpty(),
    accountId: nonEmpty(),
    video: fileRef,
    title: nonEmpty().max(1000),
    description: text().max(20_000).optional(),
    tags: z.array(nonEmpty()).max(100).optional(),
    cover: fileRef.optional(),
    publishAt: isoWithOffset().optional(),
    priority: z.number().int().min(0).max(9).default(DEFAULT_PRIORITY),
    options: options.optional(),
  })
  .strict();
export type PublishBody = z.infer<typeof PublishBody>;

export const MAX_BATCH_ITEMS = 100_000;
export const MAX_BATCH_CONCURRENCY = 1000;

/**
 * Fields every item gets unless it sets them (a shallow merge: an item's `options` replaces the default's).
 * `priority` defaults to 5, so an item's priority is the batch's unless the item sets its own.
 */
export const BatchDefaults = PublishBody.partial();

export const BatchBody = z
  .object({
    // Each item is validated as a publish body after the defaults are merged under it (see batch.ts).
    items: z
      .array(z.record(z.string(), z.unknown()))
      .min(1)
      .max(MAX_BATCH_ITEMS)
      .meta({ description: 'Publish bodies; each is validated as one after `defaults` are merged under it.' }),
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

const note = () => text().max(2000);

/** `{batchId}` or the filters of `GET /reviews`; no filter at all retries every open review (like Sidekiq's). */
/** The filters of the open-review queue: `GET /reviews` and `POST /reviews/retry-all` share them. */
const reviewFilters = {
  platform: nonEmpty().optional(),
  accountId: nonEmpty().optional(),
  kind: nonEmpty().optional(),
  batchId: nonEmpty().optional(),
};

export const RetryAllBody = z.object({ ...reviewFilters, note: note().optional() }).strict();

/**
 * A query-string integer: decimal digits only. `z.coerce.number()` took `offset=` and `offset=%20` for 0, and `0x10`,
 * `1e2` and ` 7 ` for numbers, none of which the document's `type: integer` allows (Schemathesis found the empty one).
 */
const queryInt = (min: number, max: number, fallback: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^-?[0-9]+$/.test(v) ? Number(v) : v),
    z
      .number({ error: (i) => (i.code === 'invalid_type' ? 'must be a whole number in decimal digits' : undefined) })
      .int()
      .min(min)
      .max(max)
      .default(fallback),
  );
const pageLimit = queryInt(1, 1000, 50);
const pageOffset = queryInt(0, Number.MAX_SAFE_INTEGER, 0);

/** The filters of `GET /tasks` that no index covers: with any of them the list is a bounded scan, paged by `cursor`. */
export const TASK_SCAN_FILTERS = ['platform', 'accountId', 'since', 'until', 'search', 'cursor'] as const;

export const ListTasksQuery = z
  .object({
    status: z.enum(TASK_STATUSES).optional(),
    type: z.enum(TASK_TYPES).optional(),
    parent: nonEmpty().max(400).optional().meta({ description: 'A batch id: its children.' }),
    platform: nonEmpty().max(200).optional(),
    accountId: nonEmpty().max(400).optional(),
    since: isoWithOffset().optional().meta({ description: 'From this time on (inclusive), by `time`.' }),
    until: isoWithOffset().optional().meta({ description: 'Up to this time (inclusive), by `time`.' }),
    time: z
      .enum(['created', 'updated'])
      .default('created')
      .meta({ description: 'Which timestamp `since`/`until` and the order use (with a scan filter).' }),
    search: nonEmpty().max(200).optional().meta({ description: 'A task id, or part of a task id or title.' }),
    cursor: nonEmpty()
      .max(600)
      .optional()
      .meta({ description: 'The `next` of the previous page (scan filters only).' }),
    limit: pageLimit,
    offset: pageOffset.meta({
      description: 'Index filters only (status, type, parent); with a scan filter use `cursor`.',
    }),
  })
  .strict()
  .superRefine((q, ctx) => {
    const scan = TASK_SCAN_FILTERS.some((k) => q[k] !== undefined);
    if (scan && q.offset > 0)
      ctx.addIssue({
        code: 'custom',
        path: ['offset'],
        message: "use cursor (the previous page's next) with these filters",
      });
    if (q.since !== undefined && q.until !== undefined && Date.parse(q.since) > Date.parse(q.until))
      ctx.addIssue({ code: 'custom', path: ['until'], message: 'must not be before since' });
  });
export type ListTasksQuery = z.infer<typeof ListTasksQuery>;

export const ListReviewsQuery = z
  .object({
    ...reviewFilters,
    limit: pageLimit,
    offset: pageOffset,
  })
  .strict();

export const DeleteQuery = z
  // A query note is shorter than a body's: 500 characters percent-encoded (up to 12 bytes each) keep the URL under
  // Node's 16 KiB header limit, past which the server answers 431 before the API sees the request.
  .object({ force: z.enum(['true', 'false']).optional(), note: text().max(500).optional() })
  .strict();

export const RetryBody = z
  .object({
    patch: z
      .object({
        title: nonEmpty().max(1000).optional(),
        description: text().max(20_000).optional(),
        tags: z.array(nonEmpty()).max(100).optional(),
        accountId: nonEmpty().optional(),
        video: fileRef.optional(),
      })
      .strict()
      .optional(),
    note: note().optional(),
  })
  .strict();

/** Only http(s): the URL is shown to people as a link. */
const httpUrl = z
  .url({ protocol: /^https?$/, message: 'must be an http or https URL' })
  .refine((s) => !hasLoneSurrogate(s), WELL_FORMED)
  .meta({ pattern: '^[Hh][Tt][Tt][Pp][Ss]?://' });

export const ResolveBody = z.object({ url: httpUrl.optional(), note: note().optional() }).strict();
export const DiscardBody = z.object({ note: note().optional() }).strict();
/** The optional body of cancel and reactivate: a note for the audit trail. */
export const NoteBody = z.object({ note: note().optional() }).strict();

export const TaskIdParam = nonEmpty().max(400);
export const AccountIdParam = nonEmpty().max(400);

export const RescheduleBody = z.object({ publishAt: isoWithOffset(), note: note().optional() }).strict();

/** The `Idempotency-Key` header of the two publish routes (checked by hand in the routes: 1 to 256 characters). */
export const IdempotencyKeyHeader = z.string().min(1).max(256);

// ---------------------------------------------------------------- responses

const timestamp = () => z.iso.datetime({ offset: true });

export const ErrorBody = z
  .object({
    error: z
      .object({
        code: z.string(),
        message: z.string(),
        /** 400: every offending field; 413: the sizes; 500: the request id; otherwise null. */
        details: z.union([
          z.null(),
          z.array(z.object({ field: z.string(), message: z.string() }).strict()),
          z.record(z.string(), z.unknown()),
        ]),
      })
      .strict(),
  })
  .strict();
export type ErrorBody = z.infer<typeof ErrorBody>;

const TaskStatus = z.enum(TASK_STATUSES);

export const BatchCountsSchema = z
  .object({
    total: z.number().int(),
    pending: z.number().int(),
    running: z.number().int(),
    success: z.number().int(),
    failed: z.number().int(),
    cancelled: z.number().int(),
  })
  .strict();

export const ReviewRecordSchema = z
  .object({
    open: z.boolean(),
    reason: z.string(),
    kind: z.enum(ERROR_KINDS),
    message: z.string(),
    attempt: z.number().int(),
    failed_at: timestamp(),
    evidence: z.string().optional(),
    decision: z.enum(['retry', 'resolve', 'discard', 'expired']).optional(),
    decided_at: timestamp().optional(),
    note: z.string().optional(),
    expires_at: timestamp(),
  })
  .strict();

/** One human action in a document's `decisions` (src/shared/types.ts DecisionRecord). */
export const DecisionRecordSchema = z
  .object({
    action: z.enum(DECISION_ACTIONS),
    by: z.string(),
    role: z.string(),
    at: timestamp(),
    note: z.string().nullable(),
    via: z.literal('retry-all').optional(),
    attempt: z.number().int().optional(),
    publishAt: z.string().optional(),
  })
  .strict();

/** `data` of a publish: the request as the API accepted it (media paths resolved to absolute paths). */
const PublishData = z
  .object({
    platform: z.string(),
    accountId: z.string(),
    video: z.object({ path: z.string() }).strict(),
    title: z.string(),
    description: z.string().optional(),
    tags: z.array(z.string()).optional(),
    cover: z.object({ path: z.string() }).strict().optional(),
    publishAt: z.string().optional(),
    priority: z.number().int(),
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/** `data` of a batch: its size and how it runs. */
const BatchData = z
  .object({
    total: z.number().int(),
    concurrency: z.number().int(),
    spacing: z.object({ intervalSeconds: z.number(), jitterSeconds: z.number() }).strict().nullable(),
  })
  .strict();

/** The document at `celery:task:<id>` (src/shared/types.ts TaskDoc): the Celery fields, then pubflow's own. */
export const TaskDocSchema = z
  .object({
    task_id: z.string(),
    task_type: z.enum(TASK_TYPES),
    data: z.union([PublishData, BatchData]),
    priority: z.number().int(),
    parent_task_id: z.string().nullable(),
    status: TaskStatus,
    created_at: timestamp(),
    started_at: timestamp().nullable(),
    completed_at: timestamp().nullable(),
    updated_at: timestamp(),
    error_message: z.string().nullable(),
    result: z.object({ postId: z.string().optional(), url: z.string().optional() }).strict().nullable(),
    retry_count: z.number().int(),
    version: z.number().int(),
    attempt: z.number().int(),
    progress: z.object({ percent: z.number(), stage: z.string() }).strict().nullable(),
    review: ReviewRecordSchema.nullable(),
    /** null on a batch document. */
    platform: z.string().nullable(),
    account_id: z.string().nullable(),
    workflow_id: z.string(),
    run_id: z.string().nullable(),
    scheduled_for: timestamp().nullable(),
    error_kind: z.enum(ERROR_KINDS).nullable(),
    /** Batches only. */
    counts: BatchCountsSchema.optional(),
    /** The audit trail: every human action, oldest first (absent until the first one). */
    decisions: z.array(DecisionRecordSchema).optional(),
  })
  .strict();

export const TaskPage = z.object({ items: z.array(TaskDocSchema), total: z.number().int() }).strict();

/**
 * `GET /tasks`: with index filters only, `total` counts every match and `offset` pages; with a scan filter (platform,
 * accountId, since, until, search) `total` is null, `next` continues and `scanned` says how many tasks this page
 * looked at (at most 2,000).
 */
export const TaskListPage = z
  .object({
    items: z.array(TaskDocSchema),
    total: z.number().int().nullable(),
    next: z.string().nullable(),
    scanned: z.number().int().min(0).optional(),
  })
  .strict();

const optText = () => z.string().nullable().optional();
/** One entry of `GET /tasks/:id/timeline` (src/service/timeline.ts); which fields are set depends on `type`. */
export const TimelineEntrySchema = z
  .object({
    type: z.enum(['attempt', 'auto_retry', 'review_opened', 'review_closed', 'decision', 'finished']),
    at: timestamp(),
    attempt: z.number().int().optional(),
    title: z.string().optional(),
    platform: z.string().optional(),
    accountId: z.string().optional(),
    started_at: timestamp().nullable().optional(),
    ended_at: timestamp().nullable().optional(),
    outcome: z.enum(['running', 'success', 'failed', 'timed_out', 'cancelled']).optional(),
    error_kind: optText(),
    message: optText(),
    evidence: optText().meta({ description: "The platform's answer, as the driver kept it (shown as text)" }),
    url: optText(),
    delay_seconds: z.number().int().min(0).optional(),
    action: z.string().optional(),
    by: z.string().optional(),
    role: z.string().optional(),
    note: optText(),
    via: z.string().optional(),
    patched: z.array(z.string()).optional(),
    status: z.string().optional(),
  })
  .strict();

export const TimelineSchema = z
  .object({
    taskId: z.string(),
    runId: z.string().nullable(),
    fromHistory: z.boolean(),
    entries: z.array(TimelineEntrySchema),
  })
  .strict();

const count = () => z.number().int().min(0);
/** The ZCARD of each status index, and their sum. */
export const QueueStatsSchema = z
  .object({
    pending: count(),
    running: count(),
    success: count(),
    failed: count(),
    retry: count(),
    cancelled: count(),
    total: count(),
  })
  .strict();

export const PublishAccepted = z.object({ taskId: z.string(), status: z.literal('pending') }).strict();
/** A repeat with the same Idempotency-Key: the existing task, as it is now. */
export const PublishReplayed = z.object({ taskId: z.string(), status: TaskStatus }).strict();
export const BatchAccepted = z.object({ taskId: z.string(), total: z.number().int() }).strict();

export const CancelDone = z.object({ taskId: z.string(), status: z.literal('cancelled') }).strict();
export const CancelRequested = z.object({ taskId: z.string(), status: z.literal('cancelling') }).strict();

export const DeleteOutcomeSchema = z
  .object({
    taskId: z.string(),
    deleted: z.boolean(),
    terminated: z.boolean(),
    children: z.object({ deleted: z.number().int(), terminated: z.number().int() }).strict().optional(),
  })
  .strict();

export const RescheduleOutcome = z.object({ taskId: z.string(), scheduled_for: timestamp() }).strict();

export const ReviewOutcomeSchema = z
  .object({ taskId: z.string(), action: z.enum(['retry', 'resolve', 'discard']), attempt: z.number().int() })
  .strict();

export const RetryAllOutcome = z
  .object({
    matched: z.number().int(),
    retried: z.number().int(),
    failed: z.array(z.object({ taskId: z.string(), code: z.string(), message: z.string() }).strict()),
  })
  .strict();

export const AccountViewSchema = z
  .object({
    id: z.string(),
    platform: z.string(),
    displayName: z.string(),
    settings: z.record(z.string(), z.unknown()),
    status: z.enum(['active', 'needs_login', 'unknown']),
    needsLogin: z.object({ since: z.string().nullable(), reason: z.string().nullable() }).strict().nullable(),
    /** Who reactivated the account last, and when; null if nobody has (since its gate started). */
    lastReactivation: DecisionRecordSchema.nullable(),
  })
  .strict();
export const AccountList = z.object({ items: z.array(AccountViewSchema) }).strict();

export const ReactivateOutcome = z
  .object({ accountId: z.string(), status: z.enum(['active', 'needs_login']), waiting: z.number().int() })
  .strict();

export const Health = z.object({ status: z.literal('ok') }).strict();
export const Ready = z
  .object({ status: z.literal('ready'), redis: z.literal('ok'), temporal: z.literal('ok') })
  .strict();
export const NotReady = z
  .object({
    status: z.literal('not_ready'),
    /** `ok` or `error: <message>`. */
    redis: z.string(),
    temporal: z.string(),
  })
  .strict();

export const OpenApiDocumentSchema = z
  .looseObject({ openapi: z.string().regex(/^3\.1\./), info: z.looseObject({}), paths: z.looseObject({}) })
  .meta({ description: 'This document.' });
