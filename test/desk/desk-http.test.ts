/**
 * The desk over plain HTTP against the real stack: its role table is the API's (checked against the API itself, so
 * the two cannot drift), CSRF and roles guard every action, bad input is a 400 naming the field, and the session
 * cookie is the only credential.
 */
import http from 'node:http';
import request from 'supertest';
import { addKey, removeKey } from '../../src/auth/keys-file';
import { ROLES, type Role } from '../../src/auth/roles';
import { DESK_ACTIONS, type DeskAction } from '../../src/desk/actions';
import type { TaskDoc } from '../../src/shared/types';
import { waitUntil } from '../helpers/polling';
import { WebhookReceiver } from '../helpers/webhook-receiver';
import { startDeskStack, type DeskStack } from './desk-stack';

let receiver: WebhookReceiver;
let stack: DeskStack;

beforeAll(async () => {
  receiver = await WebhookReceiver.start();
  stack = await startDeskStack({ webhookUrl: receiver.url });
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await receiver?.close();
});

const docOf = async (id: string): Promise<TaskDoc | null> => {
  const raw = await stack.redis.get(`celery:task:${id}`);
  return raw ? (JSON.parse(raw) as TaskDoc) : null;
};

/** Signs in with a role's key; returns the session cookie and the page's CSRF token. */
async function session(role: Role): Promise<{ cookie: string; csrf: string }> {
  const login = await request(stack.url).post('/ui/login').type('form').send({ token: stack.keys.tokens[role] });
  expect(login.status).toBe(303);
  const cookie = String(login.headers['set-cookie']).split(';')[0]!;
  const page = await request(stack.url).get('/ui/reviews').set('Cookie', cookie);
  expect(page.status).toBe(200);
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(page.text)![1]!;
  return { cookie, csrf };
}

/** Each desk action and the API route it stands for (an unknown target: the role check comes first). */
const ROUTES: Record<DeskAction, { desk: string; api: string }> = {
  retry: { desk: '/ui/reviews/t-none/retry', api: '/api/v1/reviews/t-none/retry' },
  resolve: { desk: '/ui/reviews/t-none/resolve', api: '/api/v1/reviews/t-none/resolve' },
  discard: { desk: '/ui/reviews/t-none/discard', api: '/api/v1/reviews/t-none/discard' },
  retryAll: { desk: '/ui/reviews/retry-all', api: '/api/v1/reviews/retry-all' },
  reactivate: { desk: '/ui/accounts/scr-1/reactivate', api: '/api/v1/accounts/scr-1/reactivate' },
  cancel: { desk: '/ui/tasks/t-none/cancel', api: '/api/v1/tasks/t-none/cancel' },
};

test.each(Object.keys(DESK_ACTIONS) as DeskAction[])(
  'desk action %s needs exactly the role of its API route, and the desk refuses the role below it',
  async (action) => {
    const required = DESK_ACTIONS[action];
    const below = ROLES[ROLES.indexOf(required) - 1]!;
    const { desk, api } = ROUTES[action];
    // The API's own answer names the role it needs.
    const apiBelow = await stack.api(below).post(api).send({});
    expect(apiBelow.status).toBe(403);
    expect(apiBelow.body.error.details).toEqual({ required, role: below });
    const apiAt = await stack.api(required).post(api).send({});
    expect(apiAt.status).not.toBe(403);

    const s = await session(below);
    const res = await request(stack.url)
      .post(desk)
      .set({ Cookie: s.cookie, Accept: 'application/json', 'X-CSRF-Token': s.csrf })
      .send({});
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'forbidden', details: { required, role: below } });
  },
);

test("an action without the CSRF token, or with another session's, is 403; a page without a session redirects to sign-in", async () => {
  const a = await session('operator');
  const b = await session('operator');
  expect(a.csrf).not.toBe(b.csrf);
  const none = await request(stack.url)
    .post('/ui/accounts/scr-1/reactivate')
    .set({ Cookie: a.cookie, Accept: 'application/json' })
    .type('form')
    .send({ note: 'x' });
  expect(none.status).toBe(403);
  expect(none.body.error.code).toBe('csrf');
  const other = await request(stack.url)
    .post('/ui/accounts/scr-1/reactivate')
    .set({ Cookie: a.cookie, Accept: 'application/json' })
    .type('form')
    .send({ _csrf: b.csrf });
  expect(other.status).toBe(403);
  // The right token gets through to the service: scr-1 does not need a login (409), rather than 403.
  const ok = await request(stack.url)
    .post('/ui/accounts/scr-1/reactivate')
    .set({ Cookie: a.cookie, Accept: 'application/json' })
    .type('form')
    .send({ _csrf: a.csrf });
  expect(ok.status).toBe(409);
  expect(ok.body.error.code).toBe('not_needing_login');

  const anon = await request(stack.url).get('/ui/reviews');
  expect(anon.status).toBe(303);
  expect(anon.headers.location).toBe('/ui/login');
  const anonPost = await request(stack.url).post('/ui/reviews/retry-all').type('form').send({ confirm: 'yes' });
  expect(anonPost.status).toBe(401);
  // A bearer token is no desk credential: only the session cookie is.
  const bearer = await request(stack.url).get('/ui/reviews').set(stack.keys.header('admin'));
  expect(bearer.status).toBe(303);
});

test('a POST from another origin is refused, sign-in included; the same origin passes', async () => {
  const login = await request(stack.url)
    .post('/ui/login')
    .set('Origin', 'http://evil.example')
    .type('form')
    .send({ token: stack.keys.tokens.viewer });
  expect(login.status).toBe(403);
  expect(login.headers['set-cookie']).toBeUndefined();
  const s = await session('operator');
  const cross = await request(stack.url)
    .post('/ui/accounts/scr-1/reactivate')
    .set({ Cookie: s.cookie, Origin: 'null', Accept: 'application/json' })
    .type('form')
    .send({ _csrf: s.csrf });
  expect(cross.status).toBe(403);
  const same = await request(stack.url)
    .post('/ui/accounts/scr-1/reactivate')
    .set({ Cookie: s.cookie, Origin: stack.url, Accept: 'application/json' })
    .type('form')
    .send({ _csrf: s.csrf });
  expect(same.status).toBe(409); // through to the service: scr-1 needs no login
});

test('bad input is a 400 naming the field; an unknown task is a 404 page', async () => {
  const s = await session('operator');
  const bad = await request(stack.url)
    .post('/ui/reviews/t-none/resolve')
    .set({ Cookie: s.cookie, Accept: 'application/json' })
    .type('form')
    .send({ _csrf: s.csrf, url: 'javascript:alert(1)' });
  expect(bad.status).toBe(400);
  expect(bad.body.error.details).toEqual([expect.objectContaining({ field: 'body.url' })]);
  const q = await request(stack.url).get('/ui/tasks?limit=0').set('Cookie', s.cookie);
  expect(q.status).toBe(400);
  expect(q.text).toContain('query.limit');
  const missing = await request(stack.url).get('/ui/tasks/no-such-task').set('Cookie', s.cookie);
  expect(missing.status).toBe(404);
  expect(missing.text).toContain('task no-such-task not found');
  const bulkUnconfirmed = await request(stack.url)
    .post('/ui/reviews/retry-all')
    .set({ Cookie: s.cookie })
    .type('form')
    .send({ _csrf: s.csrf });
  expect(bulkUnconfirmed.status).toBe(400);
  expect(bulkUnconfirmed.text).toContain('confirm');
});

test('pages carry a strict Content-Security-Policy and serve every asset themselves', async () => {
  const s = await session('viewer');
  const page = await request(stack.url).get('/ui/').set('Cookie', s.cookie);
  expect(page.status).toBe(200);
  expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  expect(page.headers['content-security-policy']).toContain("default-src 'none'");
  const srcs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  expect(srcs.filter((u) => /^(https?:)?\/\//.test(u))).toEqual([]);
  for (const asset of ['/ui/assets/desk.js', '/ui/assets/desk.css']) {
    const r = await request(stack.url).get(asset).set('Cookie', s.cookie);
    expect(r.status).toBe(200);
  }
});

test('the event stream sends a watched task and the queue counts', async () => {
  const s = await session('viewer');
  const pub = await stack
    .api('publisher')
    .post('/api/v1/publish')
    .send({ platform: 'scripted', accountId: 'scr-1', video: { path: 'clip.mp4' }, title: 'live one' });
  const id = (pub.body as { taskId: string }).taskId;
  // Read the stream until the task has reached success and the counts have come.
  const text = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const req = http.get(`${stack.url}/ui/events?ids=${encodeURIComponent(id)}&stats=1`, {
      headers: { Cookie: s.cookie },
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no success event within 30 s; got: ${buf}`));
    }, 30_000);
    req.on('response', (res) => {
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      res.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        if (/"status":"success"/.test(buf) && buf.includes('event: stats')) {
          clearTimeout(timer);
          req.destroy();
          resolve(buf);
        }
      });
    });
    req.on('error', (err) => {
      if (!buf.includes('"status":"success"')) reject(err);
    });
  });
  expect(text).toContain('event: task');
  expect(text).toContain(`"id":"${id}"`);
  expect(text).toContain('"title":"live one"');
});

test('the Reviews forms resolve with a URL, discard with a note and retry with only what changed; each is audited', async () => {
  receiver.behaviour = (r) => (r.attempt <= 1 ? { status: 500 } : { status: 200 });
  const publishHook = async (title: string) => {
    const res = await stack
      .api('publisher')
      .post('/api/v1/publish')
      .send({ platform: 'webhook', accountId: 'hook', video: { path: 'clip.mp4' }, title, tags: ['a', 'b'] });
    return (res.body as { taskId: string }).taskId;
  };
  const [toResolve, toDiscard, toRetry] = await Promise.all([
    publishHook('r-1'),
    publishHook('d-1'),
    publishHook('t-1'),
  ]);
  for (const id of [toResolve, toDiscard, toRetry])
    await waitUntil(`${id} in review`, async () => ((await docOf(id))?.review?.open ? true : undefined));
  const s = await session('operator');
  const post = (path: string, form: Record<string, string>) =>
    request(stack.url)
      .post(path)
      .set('Cookie', s.cookie)
      .type('form')
      .send({ _csrf: s.csrf, ...form });

  const resolved = await post(`/ui/reviews/${encodeURIComponent(toResolve)}/resolve`, {
    url: 'https://cms.example/p/1',
    note: 'it was there',
  });
  expect(resolved.status).toBe(303);
  expect(resolved.headers.location).toBe('/ui/reviews');
  const discarded = await post(`/ui/reviews/${encodeURIComponent(toDiscard)}/discard`, { note: 'duplicate' });
  expect(discarded.status).toBe(303);
  // The retry form sends every field back as shown; nothing changed but the video, so only the video is patched.
  const retried = await post(`/ui/reviews/${encodeURIComponent(toRetry)}/retry`, {
    title: 't-1',
    description: '',
    tags: 'a, b',
    accountId: 'hook',
    video: 'fixed.mp4',
    note: 'new cut',
  });
  expect(retried.status).toBe(303);
  expect(retried.headers.location).toBe(`/ui/tasks/${encodeURIComponent(toRetry)}`);
  const flash = await request(stack.url)
    .get(retried.headers.location as string)
    .set('Cookie', s.cookie);
  expect(flash.text).toContain(`Retry sent for ${toRetry}.`);

  const r = await waitUntil('resolved', async () => {
    const d = await docOf(toResolve);
    return d?.status === 'success' ? d : undefined;
  });
  expect(r.result?.url).toBe('https://cms.example/p/1');
  expect(r.decisions?.at(-1)).toMatchObject({ action: 'resolve', by: 'test-operator', note: 'it was there' });
  const d = await waitUntil('discarded', async () => {
    const x = await docOf(toDiscard);
    return x?.review?.open === false ? x : undefined;
  });
  expect(d.decisions?.at(-1)).toMatchObject({ action: 'discard', by: 'test-operator', note: 'duplicate' });
  const t = await waitUntil('retried', async () => {
    const x = await docOf(toRetry);
    return x?.status === 'success' ? x : undefined;
  });
  expect(t.data).toMatchObject({ title: 't-1', tags: ['a', 'b'] });
  expect(t.data).not.toHaveProperty('description'); // the empty, unchanged field was not sent as a patch
  expect(String((t.data.video as { path: string }).path)).toMatch(/fixed\.mp4$/);
  expect(receiver.requestsFor(toRetry).map((x) => x.metadata.title)).toEqual(['t-1', 't-1']);
  expect(receiver.requestsFor(toResolve)).toHaveLength(1); // resolving publishes nothing

  const search = await request(stack.url)
    .get(`/ui/tasks/search?id=${encodeURIComponent(toRetry)}`)
    .set('Cookie', s.cookie);
  expect(search.status).toBe(303);
  expect(search.headers.location).toBe(`/ui/tasks/${encodeURIComponent(toRetry)}`);
});

test('the overview charts the last hour: every finished task is counted once, as success or failed', async () => {
  // Runs after the tests above have finished their tasks; nothing is moving now.
  const [success, failed] = await Promise.all([
    stack.redis.zcard('celery:index:status:success'),
    stack.redis.zcard('celery:index:status:failed'),
  ]);
  expect(success).toBeGreaterThanOrEqual(3);
  const s = await session('viewer');
  const page = await request(stack.url).get('/ui/').set('Cookie', s.cookie);
  expect(page.status).toBe(200);
  expect(/<figcaption[^]*?<\/figcaption>/.exec(page.text)?.[0]).toContain(
    `Last hour: <strong>${success}</strong> success, <strong>${failed}</strong> failed`,
  );
  expect(page.text).toMatch(/<svg\s+viewBox="0 0 360 60"/);
});

test('revoking a key ends its desk sessions at once', async () => {
  const { token } = addKey(stack.keys.file, { name: 'desk-temp', role: 'operator' });
  expect(stack.registry.reload()).toMatchObject({ ok: true });
  const login = await request(stack.url).post('/ui/login').type('form').send({ token });
  expect(login.status).toBe(303);
  const cookie = String(login.headers['set-cookie']).split(';')[0]!;
  expect((await request(stack.url).get('/ui/accounts').set('Cookie', cookie)).status).toBe(200);

  removeKey(stack.keys.file, 'desk-temp');
  expect(stack.registry.reload()).toMatchObject({ ok: true });
  const after = await request(stack.url).get('/ui/accounts').set('Cookie', cookie);
  expect(after.status).toBe(303);
  expect(after.headers.location).toBe('/ui/login');
});

// Last in this file: it uses up this address's sign-in attempts.
test('sign-in attempts from one address are limited: 429 with Retry-After, and a good key waits its turn too', async () => {
  let status = 0;
  let tries = 0;
  while (status !== 429 && tries < 100) {
    tries++;
    status = (
      await request(stack.url)
        .post('/ui/login')
        .type('form')
        .send({ token: `pf_guess-${tries}` })
    ).status;
    if (status !== 429) expect(status).toBe(401);
  }
  expect(status).toBe(429);
  expect(tries).toBeLessThanOrEqual(31);
  const good = await request(stack.url).post('/ui/login').type('form').send({ token: stack.keys.tokens.viewer });
  expect(good.status).toBe(429);
  expect(Number(good.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(good.headers['set-cookie']).toBeUndefined();
});
