/** The OpenAPI 3 document served at GET /openapi.json. Keep it in step with app.ts (a test checks the routes). */
const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});
const json = (schema: object, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const taskIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const reviewTaskIdParam = { name: 'taskId', in: 'path', required: true, schema: { type: 'string' } };
const page = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
  { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
];
const statuses = ['pending', 'running', 'success', 'failed', 'retry', 'cancelled'];

export const openApiDocument = {
  openapi: '3.0.3',
  info: {
    title: 'pubflow',
    version: '0.1.0',
    description:
      'Durable publishing: single and batch publishes run as Temporal workflows; failures go to a manual-review library; every task is mirrored at celery:task:<id> in Redis.',
  },
  paths: {
    '/healthz': { get: { summary: 'The process is up', responses: { 200: json({ type: 'object' }) } } },
    '/readyz': {
      get: {
        summary: 'Temporal and Redis answer',
        responses: { 200: json({ type: 'object' }), 503: json({ type: 'object' }, 'Not ready') },
      },
    },
    '/openapi.json': { get: { summary: 'This document', responses: { 200: json({ type: 'object' }) } } },
    '/api/v1/publish': {
      post: {
        summary: 'Submit one publish',
        parameters: [{ name: 'Idempotency-Key', in: 'header', schema: { type: 'string', maxLength: 256 } }],
        requestBody: { required: true, content: { 'application/json': { schema: ref('PublishRequest') } } },
        responses: {
          202: json(ref('Accepted'), 'Started'),
          200: json(ref('Accepted'), 'Already submitted with this Idempotency-Key'),
          400: errorResponse('Invalid request; the message names the field'),
        },
      },
    },
    '/api/v1/publish/batch': {
      post: {
        summary: 'Submit a batch: every item is validated before anything starts',
        parameters: [{ name: 'Idempotency-Key', in: 'header', schema: { type: 'string', maxLength: 256 } }],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['items'],
                properties: {
                  items: { type: 'array', items: { type: 'object' }, minItems: 1, maxItems: 100000 },
                  defaults: { type: 'object', description: 'fields applied to every item unless it sets them' },
                  concurrency: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
                  spacing: {
                    type: 'object',
                    properties: { intervalSeconds: { type: 'number' }, jitterSeconds: { type: 'number' } },
                  },
                },
              },
            },
          },
        },
        responses: {
          202: json(
            { type: 'object', properties: { taskId: { type: 'string' }, total: { type: 'integer' } } },
            'Started',
          ),
          200: json({ type: 'object' }, 'Already submitted with this Idempotency-Key'),
          400: errorResponse('Invalid items; details lists every bad item by index and field'),
          413: errorResponse('The batch is too large for one workflow input'),
        },
      },
    },
    '/api/v1/reviews/retry-all': {
      post: {
        summary: 'Retry every matching open review (by batchId, or the filters of GET /reviews)',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  batchId: { type: 'string' },
                  platform: { type: 'string' },
                  accountId: { type: 'string' },
                  kind: { type: 'string' },
                  note: { type: 'string' },
                },
              },
            },
          },
        },
        responses: { 200: json({ type: 'object' }), 400: errorResponse('Invalid filter') },
      },
    },
    '/api/v1/tasks': {
      get: {
        summary: 'List tasks, newest first',
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: statuses } },
          { name: 'type', in: 'query', schema: { type: 'string', enum: ['publish', 'batch_publish'] } },
          { name: 'parent', in: 'query', schema: { type: 'string' } },
          ...page,
        ],
        responses: { 200: json(ref('TaskList')), 400: errorResponse('Invalid query') },
      },
    },
    '/api/v1/tasks/stats': {
      get: { summary: 'Queue stats: the ZCARDs of the status indexes', responses: { 200: json(ref('Stats')) } },
    },
    '/api/v1/tasks/{id}': {
      get: {
        summary: 'The task document (same JSON as redis-cli GET celery:task:<id>)',
        parameters: [taskIdParam],
        responses: { 200: json(ref('TaskDoc')), 404: errorResponse('Unknown task') },
      },
      delete: {
        summary: "Delete the task document and its index entries; a batch also its children's documents",
        parameters: [taskIdParam, { name: 'force', in: 'query', schema: { type: 'string', enum: ['true', 'false'] } }],
        responses: {
          200: json({
            type: 'object',
            required: ['taskId', 'deleted', 'terminated'],
            properties: {
              taskId: { type: 'string' },
              deleted: { type: 'boolean' },
              terminated: { type: 'boolean' },
              children: {
                type: 'object',
                description: 'A batch: child documents deleted, open children terminated (force=true)',
                properties: { deleted: { type: 'integer' }, terminated: { type: 'integer' } },
              },
            },
          }),
          404: errorResponse('Unknown task'),
          409: errorResponse(
            "The workflow (task_open) or one of a batch's children (children_open) is still open; force=true terminates them",
          ),
        },
      },
    },
    '/api/v1/tasks/{id}/cancel': {
      post: {
        summary: 'Cancel a pending, scheduled, running or in-review task',
        parameters: [taskIdParam],
        responses: {
          200: json({ type: 'object' }, 'Cancelled'),
          202: json({ type: 'object' }, 'Cancellation requested, still settling'),
          404: errorResponse('Unknown task'),
          409: errorResponse('The task has already finished'),
        },
      },
    },
    '/api/v1/tasks/{id}/reschedule': {
      post: {
        summary: 'Move a scheduled task to a new publishAt (while it is still waiting)',
        parameters: [taskIdParam],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['publishAt'],
                properties: { publishAt: { type: 'string', format: 'date-time' } },
              },
            },
          },
        },
        responses: {
          200: json({ type: 'object' }),
          400: errorResponse('Invalid publishAt, or beyond the horizon'),
          404: errorResponse('Unknown task'),
          409: errorResponse('The task is no longer waiting'),
        },
      },
    },
    '/api/v1/reviews': {
      get: {
        summary: 'Open reviews, newest first',
        parameters: [
          { name: 'platform', in: 'query', schema: { type: 'string' } },
          { name: 'accountId', in: 'query', schema: { type: 'string' } },
          { name: 'kind', in: 'query', schema: { type: 'string' } },
          { name: 'batchId', in: 'query', schema: { type: 'string' } },
          ...page,
        ],
        responses: { 200: json(ref('TaskList')), 400: errorResponse('Invalid query') },
      },
    },
    '/api/v1/reviews/{taskId}/retry': {
      post: {
        summary: 'Retry the publish (attempt N+1), optionally with corrected fields',
        parameters: [reviewTaskIdParam],
        requestBody: { content: { 'application/json': { schema: ref('RetryDecision') } } },
        responses: {
          200: json(ref('ReviewOutcome')),
          400: errorResponse('Invalid patch'),
          404: errorResponse('Unknown task'),
          409: errorResponse('No open review'),
        },
      },
    },
    '/api/v1/reviews/{taskId}/resolve': {
      post: {
        summary: 'Mark as published by hand',
        parameters: [reviewTaskIdParam],
        requestBody: {
          content: {
            'application/json': {
              schema: { type: 'object', properties: { url: { type: 'string' }, note: { type: 'string' } } },
            },
          },
        },
        responses: {
          200: json(ref('ReviewOutcome')),
          404: errorResponse('Unknown task'),
          409: errorResponse('No open review'),
        },
      },
    },
    '/api/v1/reviews/{taskId}/discard': {
      post: {
        summary: 'Close the review; the task stays failed',
        parameters: [reviewTaskIdParam],
        requestBody: {
          content: { 'application/json': { schema: { type: 'object', properties: { note: { type: 'string' } } } } },
        },
        responses: {
          200: json(ref('ReviewOutcome')),
          404: errorResponse('Unknown task'),
          409: errorResponse('No open review'),
        },
      },
    },
    '/api/v1/accounts': {
      get: {
        summary: 'Configured accounts, without credentials, with their login state (active | needs_login | unknown)',
        responses: { 200: json({ type: 'object' }) },
      },
    },
    '/api/v1/accounts/{id}/reactivate': {
      post: {
        summary: "After a new login: release the account's held queue (it needed a login after AuthExpired)",
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          200: json({ type: 'object' }),
          404: errorResponse('Unknown account'),
          409: errorResponse('The account does not need a login'),
        },
      },
    },
  },
  components: {
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
          },
        },
      },
      FileRef: { type: 'object', required: ['path'], properties: { path: { type: 'string' } } },
      PublishRequest: {
        type: 'object',
        required: ['platform', 'accountId', 'video', 'title'],
        additionalProperties: false,
        properties: {
          platform: { type: 'string' },
          accountId: { type: 'string' },
          video: ref('FileRef'),
          title: { type: 'string' },
          description: { type: 'string' },
          tags: { type: 'array', items: { type: 'string' } },
          cover: ref('FileRef'),
          publishAt: { type: 'string', format: 'date-time' },
          priority: { type: 'integer', minimum: 0, maximum: 9, default: 5 },
          options: { type: 'object' },
        },
      },
      Accepted: { type: 'object', properties: { taskId: { type: 'string' }, status: { type: 'string' } } },
      TaskDoc: {
        type: 'object',
        properties: {
          task_id: { type: 'string' },
          task_type: { type: 'string', enum: ['publish', 'batch_publish'] },
          data: { type: 'object' },
          priority: { type: 'integer' },
          parent_task_id: { type: 'string', nullable: true },
          status: { type: 'string', enum: statuses },
          created_at: { type: 'string' },
          started_at: { type: 'string', nullable: true },
          completed_at: { type: 'string', nullable: true },
          updated_at: { type: 'string' },
          error_message: { type: 'string', nullable: true },
          result: { type: 'object', nullable: true },
          retry_count: { type: 'integer' },
          version: { type: 'integer' },
          attempt: { type: 'integer' },
          progress: { type: 'object', nullable: true },
          review: { type: 'object', nullable: true },
          platform: { type: 'string' },
          account_id: { type: 'string' },
          workflow_id: { type: 'string' },
          run_id: { type: 'string', nullable: true },
          scheduled_for: { type: 'string', nullable: true },
          error_kind: { type: 'string', nullable: true },
        },
      },
      TaskList: {
        type: 'object',
        properties: { items: { type: 'array', items: ref('TaskDoc') }, total: { type: 'integer' } },
      },
      Stats: {
        type: 'object',
        properties: Object.fromEntries([...statuses, 'total'].map((s) => [s, { type: 'integer' }])),
      },
      RetryDecision: {
        type: 'object',
        properties: {
          patch: {
            type: 'object',
            properties: {
              title: { type: 'string' },
              description: { type: 'string' },
              tags: { type: 'array', items: { type: 'string' } },
              accountId: { type: 'string' },
              video: ref('FileRef'),
            },
          },
          note: { type: 'string' },
        },
      },
      ReviewOutcome: {
        type: 'object',
        properties: { taskId: { type: 'string' }, action: { type: 'string' }, attempt: { type: 'integer' } },
      },
    },
  },
} as const;
