/**
 * Access control on the real app (issue "Access control", Done when): without a token every route but the health
 * checks is a 401; each role can do exactly its rights, route by route (a test per route and role); a key over its
 * rate is a 429 with Retry-After. The rights are the test's own table (test/helpers/api-keys.ts RIGHTS), not the
 * app's: every route of the app's route table must be covered by it.
 */
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { buildOpenApiDocument, openApiPath, ROUTES } from '../../src/api/openapi';
import { ROLES, roleAtLeast, type Role } from '../../src/auth/roles';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import { loadAccounts } from '../../src/platforms/accounts';
import { ProjectionStore } from '../../src/projection/store';
import { TaskStateManager } from '../../src/projection/task-state-manager';
import { leastRole } from '../helpers/api-keys';
import { redisDoc, publish, publishBody, type ApiStack, useApiStack } from './fixtures';

let stack: ApiStack;
useApiStack((s) => (stack = s));

/** Every route of the app, with its path parameters filled in with an id that exists nowhere. */
const routes = ROUTES.map((r) => ({
  method: r.method.toUpperCase(),
  path: r.path.replace(/:(\w+)/g, 'no-such-$1'),
  spec: `${r.method.toUpperCase()} ${openApiPath(r.path)}`,
}));
const guarded = routes.filter((r) => r.path.startsWith('/api/v1/') || r.path === '/metrics');
const open = routes.filter((r) => !guarded.includes(r));

function send(method: string, path: string, headers: Record<string, string> = {}) {
  const agent = request(stack.app);
  const test = method === 'GET' ? agent.get(path) : method === 'POST' ? agent.post(path) : agent.delete(path);
  return test.set(headers);
}

test('the rights table covers every route, and the open routes are exactly the health checks and the spec', () => {
  expect(open.map((r) => r.spec).sort()).toEqual(['GET /healthz', 'GET /openapi.json', 'GET /readyz']);
  expect(guarded.length).toBeGreaterThanOrEqual(15);
});

test('/openapi.json names the least role of every /api/v1 operation (x-pubflow-role), as the rights table says', () => {
  const doc = buildOpenApiDocument() as unknown as {
    paths: Record<string, Record<string, { 'x-pubflow-role'?: string; security?: unknown }>>;
  };
  for (const r of ROUTES) {
    const op = doc.paths[openApiPath(r.path)]![r.method]!;
    const filled = r.path.replace(/:(\w+)/g, 'x');
    expect({ route: `${r.method} ${r.path}`, role: op['x-pubflow-role'] ?? null }).toEqual({
      route: `${r.method} ${r.path}`,
      role: leastRole(r.method, filled),
    });
  }
});

describe('without a token', () => {
  test.each(guarded.map((r) => [r.spec, r] as const))('%s is 401 with WWW-Authenticate: Bearer', async (_s, r) => {
    const res = await send(r.method, r.path);
    expect([res.status, res.body?.error?.code]).toEqual([401, 'unauthorized']);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
  });

  test.each(open.map((r) => [r.spec, r] as const))('%s stays open', async (_s, r) => {
    expect((await send(r.method, r.path)).status).toBe(200);
  });

  test('a wrong token, or a known token under another scheme, is 401 too', async () => {
    for (const header of ['Bearer pf_not-a-key', `Basic ${stack.keys.tokens.admin}`, 'Bearer'])
      expect((await send('GET', '/api/v1/tasks/stats', { Authorization: header })).status).toBe(401);
  });

  test('/healthz and /readyz say nothing about tasks', async () => {
    await publish(stack, publishBody());
    for (const p of ['/healthz', '/readyz']) {
      const body = JSON.stringify((await send('GET', p)).body);
      expect(body).not.toMatch(/task|pub-|scripted|scr-1|pending|success/i);
    }
  });
});

describe('each role can do exactly its rights', () => {
  const cases = guarded.flatMap((r) => ROLES.map((role) => [`${r.spec} as ${role}`, r, role] as const));

  test.each(cases)('%s', async (_name, r, role: Role) => {
    const needed = leastRole(r.method, r.path)!;
    const res = await send(r.method, r.path, stack.keys.header(role));
    if (roleAtLeast(role, needed)) {
      // Let in: whatever the route answers for an id that exists nowhere (400, 404, 409 or 200), never 401/403.
      expect([401, 403]).not.toContain(res.status);
      expect(res.status).toBeLessThan(500);
    } else {
      expect(res.status).toBe(403);
      expect(res.body.error).toEqual({
        code: 'forbidden',
        message: expect.stringContaining(`needs role ${needed}`),
        details: { required: needed, role },
      });
    }
  });

  test('a refused request changes nothing: a viewer cannot cancel, and a publisher cannot delete', async () => {
    const id = await publish(stack, publishBody({ options: { behave: 'hang' }, accountId: 'scr-2' }));
    const before = await redisDoc(stack.redis, id);
    expect((await stack.api('viewer').post(`/api/v1/tasks/${id}/cancel`)).status).toBe(403);
    expect((await stack.api('publisher').delete(`/api/v1/tasks/${id}`).query({ force: 'true' })).status).toBe(403);
    const d = await stack.client.workflow.getHandle(id).describe();
    expect(d.status.name).toBe('RUNNING');
    expect((await redisDoc(stack.redis, id))?.task_id).toBe(before?.task_id);
    expect((await stack.api('admin').delete(`/api/v1/tasks/${id}`).query({ force: 'true' })).status).toBe(200);
  });
});

describe('rate limit per key', () => {
  test('past its burst a key gets 429 with Retry-After, and another key is not held back', async () => {
    const config = loadConfig({
      ...process.env,
      PUBFLOW_API_KEYS_FILE: stack.keys.file,
      PUBFLOW_API_RATE_LIMIT: '1/m',
      PUBFLOW_API_RATE_BURST: '2',
    });
    const app = createApp({
      client: stack.client,
      redis: stack.redis,
      tsm: new TaskStateManager(stack.redis),
      store: new ProjectionStore(stack.redis),
      accounts: loadAccounts(stack.config.accountsFile),
      drivers: new DriverRegistry([]),
      config: { ...stack.config, api: config.api },
      log: createLogger('test-api', { silent: true }),
    });
    const get = (role: Role) => request(app).get('/api/v1/tasks/stats').set(stack.keys.header(role));
    expect((await get('viewer')).status).toBe(200);
    expect((await get('viewer')).status).toBe(200);
    const limited = await get('viewer');
    expect([limited.status, limited.body.error.code]).toEqual([429, 'rate_limited']);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await get('operator')).status).toBe(200);
    // The health checks are not counted.
    for (let i = 0; i < 5; i++) expect((await request(app).get('/healthz')).status).toBe(200);
  });
});
