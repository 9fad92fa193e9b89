/**
 * Real API keys for tests (closed by default: every `/api/v1` request needs one). A keys file with one key per role,
 * made by the same code as `keys create`, and a supertest wrapper that sends, for each request, the key with the
 * least role that route needs according to RIGHTS below: the table, written here independently of src/,
 * so a route guarded too strictly fails every test that uses it, and the per-route test catches one too lax.
 */
import path from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { addKey } from '../../src/auth/keys-file';
import { ROLES, type Role } from '../../src/auth/roles';
import { tempDir } from './servers';

export interface TestKeys {
  /** PUBFLOW_API_KEYS_FILE. */
  file: string;
  /** The token of each role's key (named `test-<role>`). */
  tokens: Record<Role, string>;
  /** `{ Authorization: 'Bearer <token>' }` of a role's key. */
  header(role: Role): { Authorization: string };
}

/** A keys file (JSON, hashes only) with one key per role, in `dir` or a new temporary directory. */
export function createTestKeys(dir: string = tempDir('keys')): TestKeys {
  const file = path.join(dir, 'api-keys.json');
  const tokens = {} as Record<Role, string>;
  for (const role of ROLES) tokens[role] = addKey(file, { name: `test-${role}`, role }).token;
  return { file, tokens, header: (role) => ({ Authorization: `Bearer ${tokens[role]}` }) };
}

type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH' | 'HEAD' | 'OPTIONS' | 'TRACE';

/** The rights of issue "Access control": the least role of each route; the first match wins. */
export const RIGHTS: ReadonlyArray<readonly [Method, RegExp, Role]> = [
  ['POST', /^\/api\/v1\/publish(\/batch)?$/, 'publisher'],
  ['POST', /^\/api\/v1\/tasks\/[^/]+\/(cancel|reschedule)$/, 'publisher'],
  ['POST', /^\/api\/v1\/reviews\/retry-all$/, 'operator'],
  ['POST', /^\/api\/v1\/reviews\/[^/]+\/(retry|resolve|discard)$/, 'operator'],
  ['POST', /^\/api\/v1\/accounts\/[^/]+\/reactivate$/, 'operator'],
  ['DELETE', /^\/api\/v1\/tasks\/[^/]+$/, 'admin'],
  ['GET', /^\/api\/v1\//, 'viewer'],
  ['GET', /^\/metrics$/, 'viewer'],
];

/** The least role for a request, or null for the open routes (health checks, the spec). Unknown routes: viewer. */
export function leastRole(method: string, url: string): Role | null {
  const p = url.split('?')[0]!;
  if (!p.startsWith('/api/v1/') && p !== '/metrics') return null;
  const m = method.toUpperCase();
  for (const [rm, re, role] of RIGHTS) if ((rm === m || (m === 'HEAD' && rm === 'GET')) && re.test(p)) return role;
  return 'viewer';
}

export interface AuthedRequest {
  get(url: string): request.Test;
  post(url: string): request.Test;
  delete(url: string): request.Test;
  put(url: string): request.Test;
  patch(url: string): request.Test;
  head(url: string): request.Test;
  options(url: string): request.Test;
  trace(url: string): request.Test;
}

/** supertest on `app`, each request with the key of `as`, or of the least role its route needs. */
export function authed(app: Express, keys: TestKeys, as?: Role): AuthedRequest {
  const call = (method: Method) => (url: string) => {
    const agent = request(app);
    const test = (
      {
        GET: agent.get,
        POST: agent.post,
        DELETE: agent.delete,
        PUT: agent.put,
        PATCH: agent.patch,
        HEAD: agent.head,
        OPTIONS: agent.options,
        TRACE: agent.trace,
      } as const
    )[method].call(agent, url);
    const role = as ?? leastRole(method, url);
    return role ? test.set(keys.header(role)) : test;
  };
  return {
    get: call('GET'),
    post: call('POST'),
    delete: call('DELETE'),
    put: call('PUT'),
    patch: call('PATCH'),
    head: call('HEAD'),
    options: call('OPTIONS'),
    trace: call('TRACE'),
  };
}
