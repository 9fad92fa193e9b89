/**
 * What Schemathesis found in the live API (test/contract/schemathesis.test.ts), each pinned here so it stays fixed
 * without the fuzzer: query integers that were coerced from text the document does not allow, and methods a
 * documented path does not have answered as if the path did not exist. Every response is also checked against the
 * document by the fixtures' hook.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerClientErrors } from '../../src/api/client-errors';
import { buildOpenApiDocument, openApiDocument, SECURITY_SCHEME } from '../../src/api/openapi';
import { publish, publishBody, type ApiStack, useApiStack } from './fixtures';

let stack: ApiStack;
useApiStack((s) => (stack = s));

const api = () => stack.api();

type ErrorOut = { error: { code: string; message: string; details: unknown } };

describe('query integers (limit, offset) are decimal digits only', () => {
  // `offset=` was taken for offset 0 (200): Schemathesis's negative_data_rejection check, seed 1.
  test.each([
    ['/api/v1/tasks', 'offset', ''],
    ['/api/v1/tasks', 'offset', ' '],
    ['/api/v1/tasks', 'offset', '0x10'],
    ['/api/v1/tasks', 'limit', '1e2'],
    ['/api/v1/tasks', 'limit', ' 7 '],
    ['/api/v1/tasks', 'limit', '7.0'],
    ['/api/v1/reviews', 'offset', ''],
    ['/api/v1/reviews', 'limit', '0x10'],
  ])('GET %s?%s=%j is a 400 naming the parameter', async (route, name, value) => {
    const res = await api()
      .get(route)
      .query({ [name]: value });
    const body = res.body as ErrorOut;
    expect([res.status, body.error.code]).toEqual([400, 'invalid_request']);
    expect(body.error.message).toBe(`query.${name}: must be a whole number in decimal digits`);
  });

  test('digits still page, and bounds are still checked', async () => {
    const a = await publish(stack, publishBody());
    const b = await publish(stack, publishBody());
    const first = await api().get('/api/v1/tasks').query({ type: 'publish', limit: '1', offset: '0' });
    const second = await api().get('/api/v1/tasks').query({ type: 'publish', limit: '1', offset: '1' });
    expect([first.status, second.status]).toEqual([200, 200]);
    const ids = [first, second].map((r) => (r.body as { items: Array<{ task_id: string }> }).items[0]?.task_id);
    expect(new Set(ids)).toEqual(new Set([a, b]));
    const tooSmall = await api().get('/api/v1/tasks').query({ limit: '0' });
    expect([tooSmall.status, (tooSmall.body as ErrorOut).error.message]).toEqual([
      400,
      'query.limit: Too small: expected number to be >=1',
    ]);
    const negative = await api().get('/api/v1/tasks').query({ offset: '-1' });
    expect((negative.body as ErrorOut).error.message).toMatch(/^query\.offset: Too small/);
  });
});

describe('a method a documented path does not have is 405 with Allow, not 404', () => {
  // TRACE on every documented path answered 404: Schemathesis's unsupported_method check.
  test.each([
    ['TRACE', '/api/v1/tasks', 'GET, HEAD'],
    ['PUT', '/api/v1/tasks/pub-123', 'DELETE, GET, HEAD'],
    ['PATCH', '/api/v1/tasks/pub-123/cancel', 'POST'],
    ['GET', '/api/v1/publish', 'POST'],
    ['DELETE', '/api/v1/reviews/pub-1/retry', 'POST'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['TRACE', '/openapi.json', 'GET, HEAD'],
    // A concrete path before a templated one, as OpenAPI matches: /tasks/stats is not the task "stats".
    ['PUT', '/api/v1/tasks/stats', 'GET, HEAD'],
    ['DELETE', '/api/v1/tasks/stats', 'GET, HEAD'],
  ])('%s %s -> 405, Allow: %s', async (method, path, allow) => {
    const res = await api()[method.toLowerCase() as 'get'](path);
    const body = res.body as ErrorOut;
    expect([res.status, res.headers.allow, body.error.code]).toEqual([405, allow, 'method_not_allowed']);
    expect(body.error.details).toEqual({ allow: allow.split(', ') });
    expect(body.error.message).toBe(`${method} is not allowed on ${path}; allowed: ${allow}`);
  });

  // OPTIONS /api/v1/tasks/stats advertised DELETE (Express's own answer): Schemathesis's allow_header_conformance.
  test.each([
    ['/healthz', 'GET, HEAD'],
    ['/api/v1/tasks/stats', 'GET, HEAD'],
    ['/api/v1/tasks/pub-123', 'DELETE, GET, HEAD'],
    ['/api/v1/publish', 'POST'],
  ])('OPTIONS %s is 204 with Allow: %s', async (path, allow) => {
    const res = await api().options(path);
    expect([res.status, res.headers.allow, res.text]).toEqual([204, allow, '']);
  });

  test('a path no route has is still 404, whatever the method, and documented methods still answer', async () => {
    for (const method of ['get', 'put', 'trace'] as const) {
      const res = await api()[method]('/api/v1/nothing-here');
      expect([res.status, (res.body as ErrorOut).error.code, res.headers.allow]).toEqual([404, 'not_found', undefined]);
    }
    // One segment per path parameter: a deeper path is not /tasks/:id.
    expect((await api().put('/api/v1/tasks/a/b')).status).toBe(404);
    expect((await api().head('/api/v1/tasks/stats')).status).toBe(200);
    expect((await api().get('/api/v1/tasks/stats')).status).toBe(200);
  });
});

describe('the document declares the API key', () => {
  // Without a security scheme Schemathesis cannot check that a route refuses a request without the key.
  test('every /api/v1 operation and /metrics take the bearer scheme; /healthz, /readyz and /openapi.json none', () => {
    const doc = openApiDocument as unknown as {
      paths: Record<string, Record<string, { security?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.components.securitySchemes[SECURITY_SCHEME]).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops))
        expect({ method, path, security: op.security }).toEqual({
          method,
          path,
          security: path.startsWith('/api/v1/') || path === '/metrics' ? [{ [SECURITY_SCHEME]: [] }] : undefined,
        });
  });
});

describe('a request Node refuses before Express', () => {
  // Schemathesis sent DELETE /tasks/<400 chars>?note=<2,000 emoji>: Node answered 431 with no body, undocumented.
  test('a URL over 16 KiB is 431 in the error envelope, as documented; the server goes on', async () => {
    const server = http.createServer(stack.app);
    answerClientErrors(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const long = await fetch(`http://127.0.0.1:${port}/api/v1/tasks/x?note=${'n'.repeat(20_000)}`, {
        method: 'DELETE',
        headers: stack.keys.header('admin'),
      });
      expect([long.status, long.headers.get('content-type')]).toEqual([431, 'application/json; charset=utf-8']);
      expect(((await long.json()) as ErrorOut).error.code).toBe('headers_too_large');
      const doc = buildOpenApiDocument() as unknown as {
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      };
      expect(Object.keys(doc.paths['/api/v1/tasks/{id}']!.delete!.responses)).toContain('431');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
