/**
 * The generated OpenAPI document (src/api/openapi.ts) against the app: the route table against the routes Express
 * registers, every status each route can return, the 415 for a body that is not JSON, and the schema hardening of
 * issue 11. Every response here is also validated against the document by the fixtures' hook.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import type { z } from 'zod';
import type { AccountView } from '../../src/service/accounts';
import type {
  AccountViewSchema,
  CancelDone,
  CancelRequested,
  DeleteOutcomeSchema,
  QueueStatsSchema,
  ReviewOutcomeSchema,
  TaskDocSchema,
} from '../../src/api/schemas';
import type { CancelOutcome, DeleteOutcome } from '../../src/service/task-control';
import type { QueueStats } from '../../src/projection/task-state-manager';
import type { ReviewOutcome } from '../../src/shared/definitions';
import type { TaskDoc } from '../../src/shared/types';
import { buildOpenApiDocument, openApiDocument, openApiPath, ROUTES } from '../../src/api/openapi';
import {
  assertResponsesValid,
  checkedResponses,
  OpenApiValidator,
  validateResponses,
} from '../helpers/openapi-validator';
import { docWhere, publish, publishBody, redisDoc, startApiStack, type ApiStack } from './fixtures';
import { WebhookReceiver } from '../helpers/webhook-receiver';

/** The response schemas are at least as narrow as the types the routes build (a drift fails the typecheck). */
type Narrower<S, T> = S extends T ? true : never;
export const typesAgree: [
  Narrower<z.infer<typeof TaskDocSchema>, TaskDoc>,
  Narrower<z.infer<typeof ReviewOutcomeSchema>, ReviewOutcome>,
  Narrower<z.infer<typeof CancelDone> | z.infer<typeof CancelRequested>, CancelOutcome>,
  Narrower<z.infer<typeof DeleteOutcomeSchema>, DeleteOutcome>,
  Narrower<z.infer<typeof AccountViewSchema>, AccountView>,
  Narrower<z.infer<typeof QueueStatsSchema>, QueueStats>,
] = [true, true, true, true, true, true];

type Operation = { responses: Record<string, { content: { 'application/json': { schema: unknown } } }> };
const doc = openApiDocument as unknown as {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, Record<string, unknown>> }> };
};
const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({ method, path, op, statuses: Object.keys(op.responses) })),
);

describe('the generated document', () => {
  test('is OpenAPI 3.1 and every schema in it compiles with ajv (draft 2020-12, strict)', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(new OpenApiValidator().compileAll()).toBeGreaterThan(ROUTES.length);
  });

  test('every route documents 500; every /api/v1 route 401, 403 and 429; the publish routes 422', () => {
    for (const { method, path, statuses } of operations) {
      expect([`${method} ${path}`, statuses.includes('500')]).toEqual([`${method} ${path}`, true]);
      if (path.startsWith('/api/v1/'))
        expect([`${method} ${path}`, ...['401', '403', '429'].filter((s) => !statuses.includes(s))]).toEqual([
          `${method} ${path}`,
        ]);
    }
    for (const path of ['/api/v1/publish', '/api/v1/publish/batch'])
      expect(Object.keys(doc.paths[path]!.post!.responses)).toEqual(
        expect.arrayContaining(['200', '202', '400', '413', '415', '422']),
      );
  });

  test('every operation takes an optional X-Request-Id and every response says which id was used', () => {
    for (const { method, path, op } of operations) {
      const o = op as unknown as {
        parameters?: Array<{ name: string; in: string; required: boolean }>;
        responses: Record<string, { headers?: Record<string, { schema: { pattern?: string } }> }>;
      };
      const header = o.parameters?.find((p) => p.in === 'header' && p.name === 'X-Request-Id');
      expect([`${method} ${path}`, header?.required]).toEqual([`${method} ${path}`, false]);
      for (const [status, r] of Object.entries(o.responses))
        expect([`${method} ${path} ${status}`, r.headers?.['X-Request-Id']?.schema.pattern]).toEqual([
          `${method} ${path} ${status}`,
          expect.any(String),
        ]);
    }
  });

  test('every POST documents 400, 413 and 415 (it reads a JSON body)', () => {
    for (const { path, statuses } of operations.filter((o) => o.method === 'post'))
      expect([path, ...['400', '413', '415'].filter((s) => !statuses.includes(s))]).toEqual([path]);
    expect(statuses('post', '/api/v1/publish/batch', 413)).toEqual(['entity.too.large', 'batch_too_large']);
    expect(statuses('delete', '/api/v1/tasks/{id}', 409)).toEqual(['task_open', 'children_open']);
  });

  test('carries what the hand-written one had drifted from: the title limit, and platform null on a batch', () => {
    const publishBodySchema = doc.components.schemas.PublishBody!;
    expect(publishBodySchema.properties?.title).toMatchObject({ type: 'string', minLength: 1, maxLength: 1000 });
    const taskDoc = doc.components.schemas.TaskDoc!;
    expect(taskDoc.properties?.platform).toEqual({ type: ['string', 'null'] });
    expect(JSON.stringify(publishBodySchema.properties?.options)).toMatch(/8 levels deep.*16384 bytes/);
  });

  test('the validator refuses a body that breaks the schema and a status the route does not document', () => {
    const v = new OpenApiValidator();
    const ok = { taskId: 'pub-1', status: 'pending' };
    const json = 'application/json; charset=utf-8';
    expect(
      v.check({ method: 'POST', path: '/api/v1/publish', status: 202, contentType: json, body: JSON.stringify(ok) }),
    ).toEqual([]);
    expect(
      v.check({ method: 'POST', path: '/api/v1/publish', status: 202, contentType: json, body: '{"taskId":1}' }),
    ).toHaveLength(1);
    expect(v.check({ method: 'POST', path: '/api/v1/publish', status: 404, contentType: json, body: '{}' })[0]).toMatch(
      /status 404 is not documented/,
    );
    const conflict = (code: string) => JSON.stringify({ error: { code, message: 'm', details: null } });
    const path = '/api/v1/tasks/pub-1';
    expect(v.check({ method: 'DELETE', path, status: 409, contentType: json, body: conflict('task_open') })).toEqual(
      [],
    );
    expect(
      v.check({ method: 'DELETE', path, status: 409, contentType: json, body: conflict('review_closed') }),
    ).toHaveLength(1);
    expect(v.check({ method: 'GET', path: '/nowhere', status: 200, contentType: json, body: '{}' })).toHaveLength(1);
  });
});

test('a wrapped app records a response that breaks the document, and the next check fails with it', async () => {
  const app = express();
  app.get('/api/v1/tasks/stats', (_req, res) => {
    res.json({ pending: 'many' });
  });
  const res = await request(validateResponses(app)).get('/api/v1/tasks/stats');
  expect(res.status).toBe(200);
  expect(assertResponsesValid).toThrow(/GET \/api\/v1\/tasks\/stats -> 200: .*pending must be integer/);
  expect(assertResponsesValid).not.toThrow(); // reported once
});

function statuses(method: string, path: string, status: number): unknown {
  const schema = doc.paths[path]![method]!.responses[String(status)]!.content['application/json'].schema as {
    allOf: [unknown, { properties: { error: { properties: { code: { enum: string[] } } } } }];
  };
  return schema.allOf[1].properties.error.properties.code.enum;
}

describe('against the running app', () => {
  let stack: ApiStack;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    stack = await startApiStack({ webhookUrl: receiver.url });
  });

  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  });

  const api = () => stack.api();

  function expectBadRequest(res: request.Response, field: string, pattern?: RegExp) {
    expect([res.status, res.body?.error?.code]).toEqual([400, 'invalid_request']);
    const error = (res.body as { error: { message: string; details: Array<{ field: string }> } }).error;
    expect(error.message.startsWith(`${field}:`)).toBe(true);
    expect(error.details.map((d) => d.field)).toContain(field);
    if (pattern) expect(error.message).toMatch(pattern);
  }

  /** A batch's 400 counts the bad items in its message and names each field in its details. */
  function expectBatchItemRefused(res: request.Response, field: string) {
    expect([res.status, res.body?.error?.code]).toEqual([400, 'invalid_request']);
    const error = (res.body as { error: { message: string; details: Array<{ field: string }> } }).error;
    expect(error.message).toMatch(new RegExp(`nothing was started \\(first: ${field.replace(/[[\]]/g, '\\$&')}:`));
    expect(error.details.map((d) => d.field)).toContain(field);
  }

  test('the route table and the routes Express registers are the same set', () => {
    const table = ROUTES.map((r) => `${r.method} ${openApiPath(r.path)}`).sort();
    // The desk's pages (src/desk, docs/desk.md) are HTML for people, not API routes: not in the document.
    expect(registeredRoutes(stack.app).filter((r) => !/^get \/$| \/ui(\/|$)/.test(r))).toEqual(table);
  });

  test("the fixtures' app checks every response", async () => {
    const before = checkedResponses();
    await api().get('/healthz');
    await api().get('/api/v1/nowhere');
    expect(checkedResponses()).toBe(before + 2);
  });

  test("a response's X-Request-Id matches the documented pattern: the client's valid id, else a generated one", async () => {
    const responseHeader = (
      doc.paths['/api/v1/tasks/stats']!.get as unknown as {
        responses: Record<string, { headers: Record<string, { schema: { pattern: string } }> }>;
      }
    ).responses['200']!.headers['X-Request-Id']!.schema.pattern;
    const kept = await api().get('/api/v1/tasks/stats').set('X-Request-Id', 'ops-4711.a:b');
    expect([kept.status, kept.headers['x-request-id']]).toEqual([200, 'ops-4711.a:b']);
    const replaced = await api().get('/api/v1/tasks/stats').set('X-Request-Id', 'has spaces/and slashes');
    expect(replaced.status).toBe(200);
    expect(replaced.headers['x-request-id']).not.toBe('has spaces/and slashes');
    expect(replaced.headers['x-request-id']).toMatch(new RegExp(responseHeader));
  });

  test('GET /openapi.json serves the generated document', async () => {
    const res = await api().get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(buildOpenApiDocument());
  });

  describe('413', () => {
    test('a body over the JSON limit (2 MB) is entity.too.large', async () => {
      const res = await api()
        .post('/api/v1/publish')
        .send(publishBody({ description: 'x'.repeat(3 * 1024 * 1024) }));
      expect([res.status, res.body.error?.code]).toEqual([413, 'entity.too.large']);
    });

    test('a batch too large for one workflow input is batch_too_large, with the sizes', async () => {
      const { title: _t, ...defaults } = publishBody();
      const items = Array.from({ length: 100 }, (_, i) => ({ title: `big ${i}`, description: 'd'.repeat(19_000) }));
      const res = await api().post('/api/v1/publish/batch').send({ items, defaults });
      expect([res.status, res.body.error?.code]).toEqual([413, 'batch_too_large']);
      expect(res.body.error.details).toMatchObject({ items: 100, limit: expect.any(Number) });
    });
  });

  describe('415 for a body that is not JSON', () => {
    test.each([
      ['text/plain', 'platform=local'],
      ['application/x-www-form-urlencoded', 'platform=local&title=x'],
    ])('a publish sent as %s', async (type, body) => {
      const res = await api().post('/api/v1/publish').set('Content-Type', type).send(body);
      expect(res.status).toBe(415);
      expect(res.body.error).toMatchObject({ code: 'unsupported_media_type', message: expect.stringContaining(type) });
    });

    test('a review decision sent as text is refused, not taken with its fields dropped', async () => {
      const res = await api()
        .post(`/api/v1/reviews/pub-${randomUUID()}/resolve`)
        .set('Content-Type', 'text/plain')
        .send('url=javascript:alert(1)');
      expect(res.status).toBe(415);
    });

    test('a POST without a body needs no Content-Type; JSON with a charset is JSON', async () => {
      expect((await api().post(`/api/v1/tasks/pub-${randomUUID()}/cancel`)).status).toBe(404);
      const res = await api()
        .post(`/api/v1/reviews/pub-${randomUUID()}/discard`)
        .set('Content-Type', 'application/json; charset=utf-8')
        .send('{}');
      expect(res.status).toBe(404);
    });
  });

  describe('400 for a client string holding a lone UTF-16 surrogate, naming the field', () => {
    const LONE = '\ud800';
    const post = (path: string, body: unknown) =>
      api()
        .post(path)
        .set('Content-Type', 'application/json')
        // JSON.stringify writes a lone surrogate as the escape \ud800, which JSON.parse turns back into one.
        .send(JSON.stringify(body));

    test.each([
      ['title', { title: `bad ${LONE}` }],
      ['description', { description: `x${LONE}y` }],
      ['tags[1]', { tags: ['ok', `${LONE}`] }],
      ['accountId', { accountId: `scr-1${LONE}` }],
      ['options.caption', { options: { caption: `a\udc00` } }],
      ['options.nested.list[0]', { options: { nested: { list: [LONE] } } }],
      ['options', { options: { [`k${LONE}`]: 1 } }],
    ])('a publish with one in %s', async (field, over) => {
      expectBadRequest(await post('/api/v1/publish', publishBody(over)), field, /lone UTF-16 surrogate/);
    });

    test('a batch item, a review note, a retry-all filter and a retry patch', async () => {
      const { title: _t, ...defaults } = publishBody();
      expectBatchItemRefused(
        await post('/api/v1/publish/batch', { items: [{ title: 'fine' }, { title: LONE }], defaults }),
        'items[1].title',
      );
      // Validation comes before the task is looked up: an unknown task is still a 400 here.
      const id = `pub-${randomUUID()}`;
      expectBadRequest(await post(`/api/v1/reviews/${id}/discard`, { note: `n${LONE}` }), 'body.note');
      expectBadRequest(await post(`/api/v1/reviews/${id}/retry`, { patch: { title: LONE } }), 'body.patch.title');
      expectBadRequest(await post('/api/v1/reviews/retry-all', { batchId: `batch-${LONE}` }), 'body.batchId');
    });

    test('a surrogate pair (an emoji) is fine', async () => {
      const id = await publish(stack, publishBody({ title: 'launch \ud83d\ude80', options: { e: '\ud83d\ude80' } }));
      const done = await docWhere(stack.redis, id, (d) => d.status === 'success');
      expect(done.data).toMatchObject({ title: 'launch 🚀', options: { e: '🚀' } });
    });
  });

  describe('options are bounded: depth 8 and 16 KiB', () => {
    const nest = (levels: number): Record<string, unknown> => {
      let v: Record<string, unknown> = { leaf: true };
      for (let i = 1; i < levels; i++) v = { n: v };
      return v;
    };

    test('8 levels and 16 KiB are accepted', async () => {
      const id = await publish(stack, publishBody({ options: nest(8) }));
      expect((await redisDoc(stack.redis, id))?.data.options).toEqual(nest(8));
      const filler = 'x'.repeat(16 * 1024 - '{"f":""}'.length);
      await publish(stack, publishBody({ options: { f: filler } }));
    });

    test('9 levels, and a very deep body, are a 400 naming options', async () => {
      const res = await api()
        .post('/api/v1/publish')
        .send(publishBody({ options: nest(9) }));
      expectBadRequest(res, `options${'.n'.repeat(8)}`, /at most 8 levels deep/);
      const deep = `{"platform":"scripted","accountId":"scr-1","video":{"path":"clip.mp4"},"title":"d","options":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
      const r2 = await api().post('/api/v1/publish').set('Content-Type', 'application/json').send(deep);
      expectBadRequest(r2, `options${'.a'.repeat(8)}`, /at most 8 levels deep/);
    });

    test('over 16 KiB as JSON is a 400 naming options', async () => {
      const filler = 'x'.repeat(16 * 1024 - '{"f":""}'.length + 1);
      expectBadRequest(
        await api()
          .post('/api/v1/publish')
          .send(publishBody({ options: { f: filler } })),
        'options',
        /at most 16384 bytes/,
      );
      const { title: _t, ...defaults } = publishBody();
      const batch = await api()
        .post('/api/v1/publish/batch')
        .send({ items: [{ title: 'a', options: { f: filler } }], defaults });
      expectBatchItemRefused(batch, 'items[0].options');
    });
  });

  describe("resolve's url is http or https only", () => {
    test.each(['javascript:alert(1)', 'data:text/html,<b>x</b>', 'file:///etc/passwd', 'ftp://example.test/p'])(
      '%s is a 400 naming body.url, and the review stays open',
      async (url) => {
        const id = await publish(stack, publishBody({ options: { behave: 'unconfirmed' } }));
        await docWhere(stack.redis, id, (d) => d.review?.open === true);
        expectBadRequest(await api().post(`/api/v1/reviews/${id}/resolve`).send({ url }), 'body.url', /http or https/);
        expect((await redisDoc(stack.redis, id))?.review?.open).toBe(true);
        const ok = await api().post(`/api/v1/reviews/${id}/resolve`).send({ url: 'HTTPS://cms.test/p/1' });
        expect(ok.status).toBe(200);
        const done = await docWhere(stack.redis, id, (d) => d.status === 'success');
        expect(done.result?.url).toMatch(/^https:\/\/cms\.test\/p\/1$/i);
      },
    );
  });
});

type RouterLayer = {
  rawPath?: unknown;
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: RouterLayer[] };
};

/** Every `METHOD /path` an Express 5 app registers (router 2.x keeps a mounted router's path as `rawPath`). */
function registeredRoutes(app: express.Express): string[] {
  const out: string[] = [];
  const walk = (stack: RouterLayer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods))
          if (on && method !== '_all') out.push(`${method} ${openApiPath(prefix + layer.route.path)}`);
      } else if (layer.handle.stack) {
        if (typeof layer.rawPath !== 'string') throw new Error('cannot read a mounted router path from Express');
        walk(layer.handle.stack, layer.rawPath === '/' ? prefix : prefix + layer.rawPath);
      }
    }
  };
  walk((app as unknown as { router: { stack: RouterLayer[] } }).router.stack, '');
  return out.sort();
}
