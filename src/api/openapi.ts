/**
 * The OpenAPI 3.1 document served at GET /openapi.json, generated from the zod schemas of schemas.ts (zod 4's JSON
 * Schema output, draft 2020-12, which OpenAPI 3.1 uses as is) and the route table below. Nothing here is written by
 * hand but the table: a test checks it against the routes Express registers, and the API tests validate every
 * response against the generated document.
 */
import { REQUEST_ID_PATTERN } from '../interceptors/request-id-header';
import { REQUEST_ID_HTTP_HEADER } from './request-id';
import type { Role } from '../auth/roles';
import { z } from 'zod';
import {
  AccountIdParam,
  AccountList,
  BatchAccepted,
  BatchBody,
  CancelDone,
  CancelRequested,
  DeleteOutcomeSchema,
  DeleteQuery,
  NoteBody,
  DiscardBody,
  ErrorBody,
  Health,
  IdempotencyKeyHeader,
  ListReviewsQuery,
  ListTasksQuery,
  NotReady,
  OpenApiDocumentSchema,
  PublishAccepted,
  PublishBody,
  PublishReplayed,
  QueueStatsSchema,
  ReactivateOutcome,
  Ready,
  RescheduleBody,
  RescheduleOutcome,
  ResolveBody,
  RetryAllBody,
  RetryAllOutcome,
  RetryBody,
  ReviewOutcomeSchema,
  TaskDocSchema,
  TaskIdParam,
  TaskPage,
  TaskListPage,
  TimelineSchema,
} from './schemas';

type JsonSchema = Record<string, unknown>;

export interface ResponseSpec {
  description: string;
  schema: z.ZodType;
  /** Error responses: the `error.code` values this status can carry on this route. */
  codes?: readonly string[];
  /** Default application/json. */
  mediaType?: string;
}

export interface RouteSpec {
  method: 'get' | 'post' | 'delete';
  /** The Express path, as registered (`/api/v1/tasks/:id`). */
  path: string;
  summary: string;
  params?: Record<string, z.ZodType>;
  query?: z.ZodObject;
  headers?: Record<string, z.ZodType>;
  body?: z.ZodType;
  bodyRequired?: boolean;
  responses: Record<number, ResponseSpec>;
  /** The least role that may call the route (src/api/app.ts guards it with the same; unset: an open route). */
  role?: Role;
}

const err = (description: string, ...codes: string[]): ResponseSpec => ({ description, schema: ErrorBody, codes });

/** Body-parser codes (express.json) pass through the error handler as `error.code`. */
const PARSE_FAILED = 'entity.parse.failed';

/** What every route that reads a JSON body may also answer. */
const jsonBodyErrors = {
  413: err("The body is over the JSON limit (2 MB, under Temporal's 2 MiB payload limit)", 'entity.too.large'),
  415: err(
    'The body is not JSON (Content-Type must be application/json), or its charset or encoding is not supported',
    'unsupported_media_type',
    'charset.unsupported',
    'encoding.unsupported',
  ),
} as const;

const internal = { 500: err('Unexpected error; details carry the request id (the stack is logged)', 'internal') };

/** Every /api/v1 route: authentication, roles and the rate limit. */
const accessControlResponses = {
  401: err('No API key, or an unknown one', 'unauthorized'),
  403: err("The key's role may not call this route; details name the role needed", 'forbidden'),
  429: err('Over the per-key request rate; Retry-After says when to come back', 'rate_limited'),
  431: err(
    "The request line and headers are over Node's 16 KiB (a URL with kilobytes of query): send long text in a body",
    'headers_too_large',
  ),
} as const;

const v1 = (spec: RouteSpec & { role: Role }): RouteSpec => ({
  ...spec,
  path: `/api/v1${spec.path}`,
  summary: `${spec.summary} (role: ${spec.role})`,
  responses: { ...spec.responses, ...accessControlResponses },
});

const REQUEST_ID_PARAMETER = {
  name: REQUEST_ID_HTTP_HEADER,
  in: 'header',
  required: false,
  description:
    'Your id for this request (1 to 128 of A-Za-z0-9._:-), logged with every line about it, in the API and in the ' +
    "workers; anything else is replaced by a generated one. The response's X-Request-Id says which was used.",
  schema: { type: 'string' },
};
const REQUEST_ID_RESPONSE_HEADER = {
  [REQUEST_ID_HTTP_HEADER]: {
    description: "This request's id: yours when it was valid, else a generated one (grep the logs for it).",
    schema: { type: 'string', pattern: REQUEST_ID_PATTERN.source },
  },
};
const idempotencyKey = {
  'Idempotency-Key': IdempotencyKeyHeader.meta({
    description: 'The same key always names the same task: a repeat returns it (200) and never publishes twice.',
  }),
};
const idempotencyMismatch = {
  422: err('The Idempotency-Key was used before with a different body', 'idempotency_mismatch'),
};

const bad = (description: string) => err(description, 'invalid_request');
const badBody = (description: string) => err(description, 'invalid_request', PARSE_FAILED);
const taskNotFound = err('Unknown task', 'not_found');
const reviewConflict = err('The task has no open review', 'review_closed', 'no_open_review');

/** Every route of the app (app.ts, batch.ts, accounts.ts), in the order they are registered. */
export const ROUTES: readonly RouteSpec[] = [
  {
    method: 'get',
    path: '/healthz',
    summary: 'The process is up',
    responses: { 200: { description: 'Up', schema: Health }, ...internal },
  },
  {
    method: 'get',
    path: '/readyz',
    summary: 'Temporal and Redis answer',
    responses: {
      200: { description: 'Ready', schema: Ready },
      503: { description: 'Not ready: says which of the two did not answer', schema: NotReady },
      ...internal,
    },
  },
  {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    responses: { 200: { description: 'The OpenAPI 3.1 document', schema: OpenApiDocumentSchema }, ...internal },
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics: HTTP requests, tasks by status, open reviews, accounts needing a login',
    role: 'viewer',
    responses: {
      200: { description: 'Prometheus text format 0.0.4', schema: z.string(), mediaType: 'text/plain' },
      ...accessControlResponses,
      ...internal,
    },
  },
  v1({
    method: 'post',
    path: '/publish/batch',
    role: 'publisher',
    summary: 'Submit a batch: every item is validated before anything starts',
    headers: idempotencyKey,
    body: BatchBody,
    bodyRequired: true,
    responses: {
      202: { description: 'Started', schema: BatchAccepted },
      200: { description: 'Already submitted with this Idempotency-Key', schema: BatchAccepted },
      400: badBody('Invalid batch; details list every bad item by index and field'),
      ...jsonBodyErrors,
      413: err(
        'The body is over the JSON limit, or the batch is too large for one workflow input (split it)',
        'entity.too.large',
        'batch_too_large',
      ),
      ...idempotencyMismatch,
      ...internal,
    },
  }),
  v1({
    method: 'post',
    path: '/reviews/retry-all',
    role: 'operator',
    summary: 'Retry every matching open review (by batchId, or the filters of GET /reviews)',
    body: RetryAllBody,
    responses: {
      200: { description: 'What was retried, and what could not be', schema: RetryAllOutcome },
      400: badBody('Invalid filter'),
      ...jsonBodyErrors,
      ...internal,
    },
  }),
  v1({
    method: 'post',
    path: '/publish',
    role: 'publisher',
    summary: 'Submit one publish',
    headers: idempotencyKey,
    body: PublishBody,
    bodyRequired: true,
    responses: {
      202: { description: 'Started', schema: PublishAccepted },
      200: {
        description: 'Already submitted with this Idempotency-Key: the task as it is now',
        schema: PublishReplayed,
      },
      400: badBody('Invalid request; the message and details name the field'),
      ...jsonBodyErrors,
      413: err(
        'The body is over the JSON limit, or the publish is too large for one workflow input',
        'entity.too.large',
        'publish_too_large',
      ),
      ...idempotencyMismatch,
      ...internal,
    },
  }),
  v1({
    method: 'get',
    path: '/tasks/stats',
    role: 'viewer',
    summary: 'Queue stats: the ZCARDs of the status indexes, and their sum',
    responses: { 200: { description: 'Counts by status', schema: QueueStatsSchema }, ...internal },
  }),
  v1({
    method: 'get',
    path: '/tasks',
    role: 'viewer',
    summary:
      'List tasks, newest first: by status, type or batch (exact, paged by offset), and by platform, account, time ' +
      'range or a search by id or title (a bounded scan of at most 2,000 tasks per page, paged by cursor)',
    query: ListTasksQuery,
    responses: {
      200: { description: 'One page', schema: TaskListPage },
      400: bad('Invalid query; the message names the parameter'),
      ...internal,
    },
  }),
  v1({
    method: 'get',
    path: '/tasks/:id',
    role: 'viewer',
    summary: 'The task document (the same JSON as redis-cli GET celery:task:<id>)',
    params: { id: TaskIdParam },
    responses: {
      200: { description: 'The document', schema: TaskDocSchema },
      400: bad('Invalid id'),
      404: taskNotFound,
      ...internal,
    },
  }),
  v1({
    method: 'get',
    path: '/tasks/:id/timeline',
    role: 'viewer',
    summary:
      "A task's timeline from Temporal's history: every upload attempt (error kind, message, evidence), automatic " +
      'retries, reviews opened and closed, and every human decision with who and when',
    params: { id: TaskIdParam },
    responses: {
      200: { description: 'The timeline, oldest first', schema: TimelineSchema },
      400: bad('Invalid id'),
      404: taskNotFound,
      ...internal,
    },
  }),
  v1({
    method: 'post',
    path: '/tasks/:id/cancel',
    role: 'publisher',
    summary: 'Cancel a pending, scheduled, running or in-review task',
    params: { id: TaskIdParam },
    body: NoteBody,
    responses: {
      200: { description: 'Cancelled', schema: CancelDone },
      202: { description: 'Cancellation requested, still settling', schema: CancelRequested },
      400: badBody('Invalid id'),
      404: taskNotFound,
      409: err('The task has already finished', 'task_finished'),
      ...jsonBodyErrors,
      ...internal,
    },
  }),
  v1({
    method: 'delete',
    path: '/tasks/:id',
    role: 'admin',
    summary: "Delete the task document and its index entries; a batch also its children's documents",
    params: { id: TaskIdParam },
    query: DeleteQuery,
    responses: {
      200: { description: 'Deleted', schema: DeleteOutcomeSchema },
      400: bad('Invalid id or query'),
      404: taskNotFound,
      409: err(
        "The workflow (task_open) or one of a batch's children (children_open) is still open; force=true terminates them",
        'task_open',
        'children_open',
      ),
      ...internal,
    },
  }),
  v1({
    method: 'post',
    path: '/tasks/:id/reschedule',
    role: 'publisher',
    summary: 'Move a scheduled task to a new publishAt (while it is still waiting)',
    params: { id: TaskIdParam },
    body: RescheduleBody,
    bodyRequired: true,
    responses: {
      200: { description: 'The new publish time', schema: RescheduleOutcome },
      400: badBody('Invalid publishAt, or beyond the horizon (PUBFLOW_SCHEDULE_HORIZON)'),
      404: taskNotFound,
      409: err('The task has finished, or is no longer waiting', 'task_finished', 'not_waiting'),
      ...jsonBodyErrors,
      ...internal,
    },
  }),
  v1({
    method: 'get',
    path: '/reviews',
    role: 'viewer',
    summary: 'Open reviews, most recently failed first',
    query: ListReviewsQuery,
    responses: {
      200: { description: 'One page', schema: TaskPage },
      400: bad('Invalid query; the message names the parameter'),
      ...internal,
    },
  }),
  ...(
    [
      ['retry', 'Retry the publish (attempt N+1), optionally with corrected fields', RetryBody],
      ['resolve', 'Mark as published by hand (with the url of the post, http or https)', ResolveBody],
      ['discard', 'Close the review; the task stays failed', DiscardBody],
    ] as const
  ).map(([action, summary, body]) =>
    v1({
      method: 'post',
      path: `/reviews/:taskId/${action}`,
      role: 'operator',
      summary,
      params: { taskId: TaskIdParam },
      body,
      responses: {
        200: { description: 'The decision was taken', schema: ReviewOutcomeSchema },
        400: badBody('Invalid decision; the message names the field'),
        404: taskNotFound,
        409: reviewConflict,
        ...jsonBodyErrors,
        ...internal,
      },
    }),
  ),
  v1({
    method: 'get',
    path: '/accounts',
    role: 'viewer',
    summary: 'Configured accounts, without credentials, with their login state',
    responses: { 200: { description: 'Every account', schema: AccountList }, ...internal },
  }),
  v1({
    method: 'post',
    path: '/accounts/:id/reactivate',
    role: 'operator',
    summary: "After a new login: release the account's held queue (it needed a login after AuthExpired)",
    params: { id: AccountIdParam },
    body: NoteBody,
    responses: {
      200: { description: 'Active again', schema: ReactivateOutcome },
      400: badBody('Invalid id'),
      404: err('Unknown account', 'not_found'),
      409: err('The account does not need a login', 'not_needing_login'),
      ...jsonBodyErrors,
      ...internal,
    },
  }),
];

/** `/tasks/:id` -> `/tasks/{id}`. */
export const openApiPath = (expressPath: string): string => expressPath.replace(/:(\w+)/g, '{$1}');

const REF = '#/components/schemas/';
/** The one security scheme: a bearer API key. */
export const SECURITY_SCHEME = 'apiKey';

/** Component names of the shared schemas; any other gets one made of its route and status. */
const REQUEST_NAMES: Array<[string, z.ZodType]> = [
  ['PublishBody', PublishBody],
  ['BatchBody', BatchBody],
  ['RetryAllBody', RetryAllBody],
  ['RetryBody', RetryBody],
  ['ResolveBody', ResolveBody],
  ['DiscardBody', DiscardBody],
  ['NoteBody', NoteBody],
  ['RescheduleBody', RescheduleBody],
];
const RESPONSE_NAMES: Array<[string, z.ZodType]> = [
  ['Error', ErrorBody],
  ['TaskDoc', TaskDocSchema],
  ['TaskPage', TaskPage],
  ['TaskListPage', TaskListPage],
  ['Timeline', TimelineSchema],
  ['QueueStats', QueueStatsSchema],
  ['PublishAccepted', PublishAccepted],
  ['PublishReplayed', PublishReplayed],
  ['BatchAccepted', BatchAccepted],
  ['CancelDone', CancelDone],
  ['CancelRequested', CancelRequested],
  ['DeleteOutcome', DeleteOutcomeSchema],
  ['RescheduleOutcome', RescheduleOutcome],
  ['ReviewOutcome', ReviewOutcomeSchema],
  ['RetryAllOutcome', RetryAllOutcome],
  ['AccountList', AccountList],
  ['ReactivateOutcome', ReactivateOutcome],
  ['Health', Health],
  ['Ready', Ready],
  ['NotReady', NotReady],
  ['OpenApiDocument', OpenApiDocumentSchema],
];

/** zod's JSON Schema, without the `$schema`/`$id` it puts on each root (the document's dialect covers them). */
function clean(schema: JsonSchema): JsonSchema {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/** Component names: each schema object gets one, the first name it is registered under. */
function registerAll(entries: Array<[string, z.ZodType]>): {
  registry: z.core.$ZodRegistry<{ id: string }>;
  ids: Map<z.ZodType, string>;
} {
  const registry = z.registry<{ id: string }>();
  const ids = new Map<z.ZodType, string>();
  for (const [id, schema] of entries) {
    if (ids.has(schema)) continue;
    ids.set(schema, id);
    registry.add(schema, { id });
  }
  return { registry, ids };
}

function componentsFor(
  entries: Array<[string, z.ZodType]>,
  io: 'input' | 'output',
): { schemas: Record<string, JsonSchema>; ids: Map<z.ZodType, string> } {
  const { registry, ids } = registerAll(entries);
  const out = z.toJSONSchema(registry, { io, uri: (id) => `${REF}${id}`, target: 'draft-2020-12' });
  const schemas: Record<string, JsonSchema> = {};
  for (const [id, s] of Object.entries(out.schemas)) schemas[id] = clean(s as JsonSchema);
  return { schemas, ids };
}

/** A parameter's schema, inline (parameters are small and never shared). */
const inline = (schema: z.ZodType): JsonSchema =>
  clean(z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as JsonSchema);

function errorSchema(codes: readonly string[] | undefined): JsonSchema {
  const ref = { $ref: `${REF}Error` };
  if (!codes || codes.length === 0) return ref;
  return {
    allOf: [ref, { type: 'object', properties: { error: { type: 'object', properties: { code: { enum: codes } } } } }],
  };
}

/** Builds the document from the route table. */
export function buildOpenApiDocument(routes: readonly RouteSpec[] = ROUTES): Record<string, unknown> {
  // Components: names from the route table (Body/Response suffixes keep request and response names apart).
  const responseEntries: Array<[string, z.ZodType]> = [...RESPONSE_NAMES];
  const requestEntries: Array<[string, z.ZodType]> = [...REQUEST_NAMES];
  const nameOf = (method: string, path: string, suffix: string) =>
    `${method}${path.replace(/^\/api\/v1/, '').replace(/[^A-Za-z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}${suffix}`;
  for (const r of routes) {
    if (r.body) requestEntries.push([nameOf(r.method, r.path, 'Body'), r.body]);
    for (const [status, resp] of Object.entries(r.responses))
      if (resp.schema !== ErrorBody) responseEntries.push([nameOf(r.method, r.path, status), resp.schema]);
  }
  const requests = componentsFor(requestEntries, 'input');
  const responses = componentsFor(responseEntries, 'output');

  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const parameters: JsonSchema[] = [];
    for (const [name, schema] of Object.entries(r.params ?? {}))
      parameters.push({ name, in: 'path', required: true, schema: inline(schema) });
    if (r.query) {
      const q = inline(r.query) as { properties?: Record<string, JsonSchema>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {}))
        parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema });
    }
    for (const [name, schema] of Object.entries(r.headers ?? {})) {
      const s = inline(schema);
      const { description, ...rest } = s;
      parameters.push({ name, in: 'header', required: false, ...(description ? { description } : {}), schema: rest });
    }
    // Every route (src/api/request-id.ts): a valid client id is kept, anything else is replaced, never refused.
    parameters.push(REQUEST_ID_PARAMETER);
    const responseObjects: Record<string, unknown> = {};
    for (const [status, resp] of Object.entries(r.responses)) {
      const schema =
        resp.schema === ErrorBody ? errorSchema(resp.codes) : { $ref: `${REF}${responses.ids.get(resp.schema)!}` };
      const mediaType = resp.mediaType ?? 'application/json';
      responseObjects[status] = {
        description: resp.description,
        headers: REQUEST_ID_RESPONSE_HEADER,
        content: { [mediaType]: { schema } },
      };
    }
    const operation: Record<string, unknown> = {
      operationId: nameOf(r.method, r.path, ''),
      summary: r.summary,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(r.body
        ? {
            requestBody: {
              required: r.bodyRequired ?? false,
              content: { 'application/json': { schema: { $ref: `${REF}${requests.ids.get(r.body)!}` } } },
            },
          }
        : {}),
      responses: responseObjects,
      // Every /api/v1 route and /metrics take an API key (docs/security.md); /healthz, /readyz and this document stay open.
      ...(r.role ? { security: [{ [SECURITY_SCHEME]: [] }] } : {}),
      ...(r.role ? { 'x-pubflow-role': r.role } : {}),
    };
    (paths[openApiPath(r.path)] ??= {})[r.method] = operation;
  }

  return {
    openapi: '3.1.1',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'pubflow',
      version: '0.1.0',
      description:
        'Durable publishing: single and batch publishes run as Temporal workflows; failures go to a manual-review ' +
        'library; every task is mirrored at celery:task:<id> in Redis. Errors are {"error": {"code", "message", ' +
        '"details"}}. Generated from the zod schemas of src/api/schemas.ts.',
    },
    paths,
    components: {
      schemas: { ...requests.schemas, ...responses.schemas },
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API key from the keys file (PUBFLOW_API_KEYS_FILE): `Authorization: Bearer pf_…`',
        },
      },
    },
  };
}

export const openApiDocument = buildOpenApiDocument();
