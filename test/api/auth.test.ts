import { writeFileSync } from 'node:fs';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { assertSafeListen, authenticate, isLoopbackHost, rateLimit, requireRole } from '../../src/api/auth';
import { errorHandler } from '../../src/api/errors';
import { KeyRegistry } from '../../src/auth/key-registry';
import { hashToken } from '../../src/auth/keys-file';
import { TokenBucketLimiter } from '../../src/auth/rate-limit';
import type { Role } from '../../src/auth/roles';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/log';
import { tempDir } from '../helpers/servers';

const TOKENS: Record<Role, string> = {
  viewer: 'pf_viewer-token',
  publisher: 'pf_publisher-token',
  operator: 'pf_operator-token',
  admin: 'pf_admin-token',
};
const registry = () =>
  new KeyRegistry(
    (Object.keys(TOKENS) as Role[]).map((role) => ({ name: `${role}-key`, role, sha256: hashToken(TOKENS[role]) })),
  );

/** The shape the lead wires: health outside, then authenticate + rate limit on /api/v1, a role per route. */
function tinyApp(keys: KeyRegistry | null, limiter: TokenBucketLimiter | null = null) {
  const app = express();
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  const api = express.Router();
  app.use('/api/v1', api);
  api.use(authenticate(keys, { log: createLogger('test', { silent: true }) }), rateLimit(limiter));
  api.get('/tasks', requireRole('viewer'), (req, res) => void res.json({ principal: req.principal }));
  api.post('/publish', requireRole('publisher'), (_req, res) => void res.status(202).json({ ok: true }));
  api.post('/reviews/retry-all', requireRole('operator'), (_req, res) => void res.json({ ok: true }));
  api.delete('/tasks/:id', requireRole('admin'), (_req, res) => void res.json({ ok: true }));
  app.use(errorHandler(createLogger('test', { silent: true })));
  return app;
}

const bearer = (role: Role) => ({ Authorization: `Bearer ${TOKENS[role]}` });

describe('API keys middleware', () => {
  it('a request without a token is 401 with WWW-Authenticate: Bearer, in the error envelope', async () => {
    const res = await request(tinyApp(registry())).get('/api/v1/tasks');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect(res.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String), details: null } });
  });

  it.each([
    ['a wrong token', 'Bearer pf_not-a-key'],
    ['another scheme', `Basic ${TOKENS.admin}`],
    ['no token after Bearer', 'Bearer '],
  ])('%s is 401 and the answer does not echo it', async (_what, header) => {
    const res = await request(tinyApp(registry())).get('/api/v1/tasks').set('Authorization', header);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect(res.body.error.code).toBe('unauthorized');
    expect(JSON.stringify(res.body)).not.toContain(TOKENS.admin);
  });

  it('a key sets req.principal to its name and role', async () => {
    const res = await request(tinyApp(registry())).get('/api/v1/tasks').set(bearer('operator'));
    expect(res.status).toBe(200);
    expect(res.body.principal).toEqual({ name: 'operator-key', role: 'operator' });
  });

  it('a role without the right is 403 naming the role needed', async () => {
    const res = await request(tinyApp(registry())).post('/api/v1/reviews/retry-all').set(bearer('publisher'));
    expect(res.status).toBe(403);
    expect(res.body.error).toEqual({
      code: 'forbidden',
      message: expect.stringContaining('needs role operator'),
      details: { required: 'operator', role: 'publisher' },
    });
  });

  it('each role includes the rights of the ones before it, and only those', async () => {
    const app = tinyApp(registry());
    const routes: [Role, () => request.Test][] = [
      ['viewer', () => request(app).get('/api/v1/tasks')],
      ['publisher', () => request(app).post('/api/v1/publish')],
      ['operator', () => request(app).post('/api/v1/reviews/retry-all')],
      ['admin', () => request(app).delete('/api/v1/tasks/t1')],
    ];
    const seen: string[] = [];
    for (const role of Object.keys(TOKENS) as Role[])
      for (const [needed, send] of routes) seen.push(`${role}->${needed}:${(await send().set(bearer(role))).status}`);
    expect(seen).toEqual([
      'viewer->viewer:200',
      'viewer->publisher:403',
      'viewer->operator:403',
      'viewer->admin:403',
      'publisher->viewer:200',
      'publisher->publisher:202',
      'publisher->operator:403',
      'publisher->admin:403',
      'operator->viewer:200',
      'operator->publisher:202',
      'operator->operator:200',
      'operator->admin:403',
      'admin->viewer:200',
      'admin->publisher:202',
      'admin->operator:200',
      'admin->admin:200',
    ]);
  });

  it('health stays open and says nothing about tasks', async () => {
    const res = await request(tinyApp(registry())).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('a key over its rate is 429 with Retry-After; other keys are not held back', async () => {
    let now = 5_000_000;
    const app = tinyApp(registry(), new TokenBucketLimiter({ perSecond: 1, burst: 2 }, () => now));

    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await request(app).get('/api/v1/tasks').set(bearer('viewer'))).status);
    const limited = await request(app).get('/api/v1/tasks').set(bearer('viewer'));
    const other = await request(app).get('/api/v1/tasks').set(bearer('admin'));
    now += 1000;
    const later = await request(app).get('/api/v1/tasks').set(bearer('viewer'));

    expect(codes).toEqual([200, 200, 429]);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.body.error).toMatchObject({ code: 'rate_limited', details: { retryAfterSeconds: 1 } });
    expect(other.status).toBe(200);
    expect(later.status).toBe(200);
  });

  it('a key revoked in the file is refused after a reload', async () => {
    const file = path.join(tempDir('auth'), 'keys.json');
    writeFileSync(file, JSON.stringify([{ name: 'a', role: 'admin', sha256: hashToken('pf_a') }]));
    const keys = KeyRegistry.fromFile(file);
    const app = tinyApp(keys);
    expect((await request(app).get('/api/v1/tasks').set('Authorization', 'Bearer pf_a')).status).toBe(200);

    writeFileSync(file, '[]');
    keys.reload();

    expect((await request(app).get('/api/v1/tasks').set('Authorization', 'Bearer pf_a')).status).toBe(401);
  });

  it.each([
    ['no keys file', null],
    ['a keys file with no keys', new KeyRegistry([])],
  ])('closed by default: with %s every request is 401, whatever it sends', async (_what, keys) => {
    for (const header of [undefined, `Bearer ${TOKENS.admin}`]) {
      const req = request(tinyApp(keys)).get('/api/v1/tasks');
      const res = await (header ? req.set('Authorization', header) : req);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
      expect(res.body.error.message).toMatch(/no API keys .*PUBFLOW_API_KEYS_FILE/);
    }
    expect((await request(tinyApp(keys)).get('/healthz')).status).toBe(200);
  });
});

describe('assertSafeListen', () => {
  const config = (host: string) => loadConfig({ PUBFLOW_API_HOST: host });

  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])('%s is loopback', (h) =>
    expect(isLoopbackHost(h)).toBe(true),
  );
  it.each(['0.0.0.0', '::', '', '10.0.0.5', 'example.com', '128.0.0.1'])('%s is not', (h) =>
    expect(isLoopbackHost(h)).toBe(false),
  );

  it('allows loopback without keys, and any address with keys', () => {
    expect(() => assertSafeListen(loadConfig({}), null)).not.toThrow();
    expect(() => assertSafeListen(config('0.0.0.0'), registry())).not.toThrow();
  });

  it('refuses a non-loopback address without keys, saying why', () => {
    expect(() => assertSafeListen(config('0.0.0.0'), null)).toThrow(
      /refusing to listen on 0\.0\.0\.0 \(PUBFLOW_API_HOST\): it is not a loopback address and PUBFLOW_API_KEYS_FILE is not set/,
    );
    expect(() => assertSafeListen(config('10.0.0.5'), new KeyRegistry([], '/etc/k.json'))).toThrow(
      /the keys file \/etc\/k.json holds no keys/,
    );
  });
});
