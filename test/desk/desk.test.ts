/**
 * The review desk in a real headless Chromium against the whole stack (real Temporal dev server, redis-server, worker
 * pair and API process app); only the platforms are simulated (a local webhook receiver, a scripted driver).
 */
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, ElementHandle, Page } from 'puppeteer-core';
import type { TaskDoc } from '../../src/shared/types';
import { waitUntil } from '../helpers/polling';
import { WebhookReceiver } from '../helpers/webhook-receiver';
import { launchBrowser, signIn, waitForText } from './browser';
import { startDeskStack, type DeskStack } from './desk-stack';

let receiver: WebhookReceiver;
let stack: DeskStack;
let browser: Browser;

// Every run saves a screenshot of each page: into PUBFLOW_DESK_SCREENSHOTS when set (`make screenshots` sets it to
// docs/desk, which docs/desk.md shows), else into the temp dir, so `make test` never rewrites tracked files.
const SHOTS = path.resolve(process.env.PUBFLOW_DESK_SCREENSHOTS || path.join(os.tmpdir(), 'pubflow-desk-screenshots'));
async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) as `${string}.png`, fullPage: true });
}

beforeAll(async () => {
  receiver = await WebhookReceiver.start();
  // The CMS answers 500 to every first attempt (an Unconfirmed review) and takes 1.5 s to accept a retry, so a page
  // showing the retried task sees it running before it turns success.
  receiver.behaviour = (r) => (r.attempt <= 1 ? { status: 500 } : { status: 200, afterMs: 1500 });
  [stack, browser] = await Promise.all([startDeskStack({ webhookUrl: receiver.url }), launchBrowser()]);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await receiver?.close();
});

async function newPage(role: 'viewer' | 'publisher' | 'operator' | 'admin'): Promise<Page> {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1360, height: 900 });
  page.on('dialog', (d) => void d.accept());
  await signIn(page, stack.url, stack.keys.tokens[role]);
  return page;
}

async function publishHook(title: string): Promise<string> {
  const res = await stack
    .api('publisher')
    .post('/api/v1/publish')
    .send({ platform: 'webhook', accountId: 'hook', video: { path: 'clip.mp4' }, title });
  expect(res.status).toBe(202);
  return (res.body as { taskId: string }).taskId;
}

const docOf = async (id: string): Promise<TaskDoc | null> => {
  const raw = await stack.redis.get(`celery:task:${id}`);
  return raw ? (JSON.parse(raw) as TaskDoc) : null;
};
const inReview = (id: string) =>
  waitUntil(`${id} to be in review`, async () => ((await docOf(id))?.review?.open ? true : undefined), {
    timeoutMs: 30_000,
  });

const textOf = (page: Page, selector: string) =>
  page.$eval(selector, (el) => (el as unknown as { textContent: string | null }).textContent ?? '');

async function replaceValue(field: ElementHandle, value: string): Promise<void> {
  await field.click({ count: 3 });
  await field.press('Backspace');
  await field.type(value);
}

test('sign-in checks the key, keeps only a session id in an HttpOnly SameSite=Strict cookie, and signs out', async () => {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.goto(`${stack.url}/`);
  expect(new URL(page.url()).pathname).toBe('/ui/login'); // / -> /ui/ -> sign-in
  await shot(page, 'login');

  await page.type('input[name="token"]', 'pf_not-a-real-key');
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  expect(await textOf(page, '[data-testid="login-error"]')).toMatch(/unknown or revoked/i);

  await signIn(page, stack.url, stack.keys.tokens.operator);
  expect(await textOf(page, '[data-testid="who"]')).toBe('test-operator');
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === 'pubflow_desk');
  expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui' });
  expect(session!.value).not.toContain(stack.keys.tokens.operator);
  expect(session!.value.length).toBeGreaterThanOrEqual(40);

  await Promise.all([page.waitForNavigation(), page.click('form[action="/ui/logout"] button')]);
  expect(new URL(page.url()).pathname).toBe('/ui/login');
  await page.goto(`${stack.url}/ui/reviews`);
  expect(new URL(page.url()).pathname).toBe('/ui/login');
  await ctx.close();
});

test('a failed webhook publish appears in Reviews; a retry with a corrected title turns success without a reload', async () => {
  const id = await publishHook('broken title');
  await inReview(id);
  const page = await newPage('operator');
  await page.goto(`${stack.url}/ui/reviews?platform=webhook`);
  const row = `tr[data-live-id="${id}"]`;
  expect(await textOf(page, `${row} .kind`)).toBe('Unconfirmed');
  expect(await textOf(page, `${row} .msg`)).toMatch(/HTTP 500/);
  await page.click(`${row} details summary`);
  // Unconfirmed: the button says plainly that the post may already exist.
  expect(await textOf(page, `${row} [data-testid="retry"]`)).toMatch(/may already exist/);
  await shot(page, 'reviews');

  await replaceValue((await page.$(`${row} input[name="title"]`))!, 'corrected title');
  await (await page.$(`${row} input[name="note"]`))!.type('checked the CMS: not there');
  await Promise.all([page.waitForNavigation(), page.click(`${row} [data-testid="retry"]`)]);
  expect(new URL(page.url()).pathname).toBe(`/ui/tasks/${encodeURIComponent(id)}`);
  const chip = 'section[data-live-id] [data-field="status"]';
  const first = await textOf(page, chip);
  expect(first).not.toBe('success'); // the CMS holds the retry for 1.5 s
  await page.evaluate(() => ((globalThis as unknown as { deskMark: number }).deskMark = 42));

  await waitForText(page, chip, '^success$');
  await page.waitForSelector('[data-testid="cancel"]', { hidden: true, timeout: 5000 });
  // Still the same document: the status changed over the event stream, not by reloading.
  expect(await page.evaluate(() => (globalThis as unknown as { deskMark?: number }).deskMark)).toBe(42);
  // The document says success once the projection has it; the run completes a moment later, and the timeline's
  // "finished" row comes from that completion event. Wait for the run, not a fixed time.
  await stack.client.workflow.getHandle(id).result();
  await page.reload();
  // The timeline, from Temporal's history: both attempts with their titles, the review and who closed it.
  const rows = await page.$$eval('[data-testid="timeline"] tbody tr', (trs) =>
    trs.map((tr) => (tr as unknown as { textContent: string | null }).textContent?.replace(/\s+/g, ' ').trim() ?? ''),
  );
  expect(rows).toEqual([
    expect.stringMatching(/attempt 1: failed \(Unconfirmed\) · "broken title" to webhook\/hook .*HTTP 500/),
    expect.stringMatching(/review opened: Unconfirmed/),
    expect.stringMatching(
      /review closed: retry \(corrected title\) test-operator \(operator\) checked the CMS: not there/,
    ),
    expect.stringMatching(/attempt 2: success · "corrected title" to webhook\/hook .*https:/),
    expect.stringMatching(/finished: success/),
  ]);
  expect(await textOf(page, '[data-testid="task-title"]')).toBe('corrected title');
  await shot(page, 'task');
  const link = await page.$eval('[data-testid="temporal-link"]', (a) => (a as unknown as { href: string }).href);
  expect(link).toBe(`http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(id)}`);
  expect(receiver.requestsFor(id).map((r) => [r.key, r.metadata.title, r.status])).toEqual([
    [`${id}:1`, 'broken title', 500],
    [`${id}:2`, 'corrected title', 200],
  ]);
  await page.browserContext().close();
});

test("bulk retry of a batch's reviews shows how many, asks to confirm, and shows progress to the end", async () => {
  const res = await stack
    .api('publisher')
    .post('/api/v1/publish/batch')
    .send({
      defaults: { platform: 'webhook', accountId: 'hook', video: { path: 'clip.mp4' } },
      items: [{ title: 'b-1' }, { title: 'b-2' }, { title: 'b-3' }],
    });
  expect(res.status).toBe(202);
  const batchId = (res.body as { taskId: string }).taskId;
  const children = await waitUntil(
    'the three items to be in review',
    async () => {
      const r = await stack.api('viewer').get('/api/v1/reviews').query({ batchId });
      const items = (r.body as { items: TaskDoc[] }).items;
      return items.length === 3 ? items.map((d) => d.task_id) : undefined;
    },
    { timeoutMs: 60_000 },
  );
  const page = await newPage('operator');
  await page.goto(`${stack.url}/ui/reviews?batchId=${encodeURIComponent(batchId)}`);
  expect(await textOf(page, '[data-testid="bulk-count"]')).toBe('3');
  const dialogs: string[] = [];
  page.on('dialog', (d) => dialogs.push(d.message()));
  await page.click('form[data-bulk] input[name="confirm"]');
  await page.click('[data-testid="bulk-retry"]');
  await waitForText(page, '[data-bulk-progress]', 'Retried 3 of 3\\. .* 3 of 3 done', 60_000);
  expect(dialogs).toEqual(['Retry all 3 open reviews matching these filters?']);
  for (const id of children) expect((await docOf(id))?.status).toBe('success');
  await shot(page, 'bulk-retry');

  await page.goto(`${stack.url}/ui/batches`);
  await waitForText(page, `tr[data-live-id="${batchId}"] [data-field="status"]`, '^success$');
  await shot(page, 'batches');
  await page.goto(`${stack.url}/ui/tasks/${encodeURIComponent(batchId)}`);
  await shot(page, 'batch');
  // Its items by status: 3 succeeded, none failed.
  await Promise.all([
    page.waitForNavigation(),
    page.click('[data-testid="children-filter"] a[href$="children=success"]'),
  ]);
  const shown = await page.$$eval('section h2 + p[data-testid="children-filter"] ~ table tr[data-live-id]', (trs) =>
    trs.map((tr) => tr.getAttribute('data-live-id')),
  );
  expect(shown.sort()).toEqual([...children].sort());
  await page.goto(`${stack.url}/ui/tasks/${encodeURIComponent(batchId)}?children=failed`);
  expect(await page.$$('p[data-testid="children-filter"] ~ table tr[data-live-id]')).toHaveLength(0);
  await page.browserContext().close();
});

test('an account that needs a login is shown and reactivated from the Accounts page', async () => {
  const res = await stack
    .api('publisher')
    .post('/api/v1/publish')
    .send({
      platform: 'scripted',
      accountId: 'scr-login',
      video: { path: 'clip.mp4' },
      title: 'needs login',
      options: { behave: 'auth-expired' },
    });
  expect(res.status).toBe(202);
  await waitUntil('scr-login to need a login', async () => {
    const r = await stack.api('viewer').get('/api/v1/accounts');
    const a = (r.body as { items: { id: string; status: string }[] }).items.find((x) => x.id === 'scr-login');
    return a?.status === 'needs_login' ? true : undefined;
  });
  const page = await newPage('operator');
  await page.goto(`${stack.url}/ui/`);
  expect(await textOf(page, 'main')).toContain('scr-login');
  await shot(page, 'overview');
  await page.goto(`${stack.url}/ui/accounts`);
  const row = 'tr[data-account="scr-login"]';
  expect(await textOf(page, `${row} [data-field="status"]`)).toBe('needs_login');
  await shot(page, 'accounts');
  await (await page.$(`${row} input[name="note"]`))!.type('logged in again');
  await Promise.all([page.waitForNavigation(), page.click(`${row} [data-testid="reactivate"]`)]);
  expect(await textOf(page, '[data-testid="flash"]')).toMatch(/scr-login reactivated/);
  expect(await textOf(page, `${row} [data-field="status"]`)).toBe('active');
  expect(await textOf(page, row)).toContain('test-operator (operator)');
  await page.browserContext().close();
});

test('a title holding <script> shows as text, and a viewer sees no actions and a forged POST is refused', async () => {
  const hostile = '<script>globalThis.deskXss=1</script><img src=x onerror="globalThis.deskXss=2">';
  const id = await publishHook(hostile);
  await inReview(id);

  const page = await newPage('viewer');
  await page.goto(`${stack.url}/ui/reviews`);
  const row = `tr[data-live-id="${id}"]`;
  expect(await textOf(page, `${row} td.title`)).toBe(hostile);
  expect(await page.$(`${row} script`)).toBeNull();
  expect(await page.$(`${row} img`)).toBeNull();
  expect(await page.evaluate(() => (globalThis as unknown as { deskXss?: number }).deskXss)).toBeUndefined();
  // No action a viewer may not take is shown.
  expect(
    await page.$$('[data-testid="retry"], [data-testid="resolve"], [data-testid="discard"], form[data-bulk]'),
  ).toEqual([]);
  await page.goto(`${stack.url}/ui/tasks/${encodeURIComponent(id)}`);
  expect(await textOf(page, '[data-testid="task-title"]')).toBe(hostile);
  expect(await page.$('[data-testid="cancel"]')).toBeNull();

  // The same POST the operator's form sends, with this session's valid CSRF token: refused by role.
  const forged = await page.evaluate(async (taskId: string) => {
    const g = globalThis as unknown as {
      document: { querySelector(s: string): { getAttribute(n: string): string | null } | null };
      fetch: (u: string, i: unknown) => Promise<{ status: number; json(): Promise<unknown> }>;
    };
    const csrf = g.document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
    const r = await g.fetch(`/ui/reviews/${encodeURIComponent(taskId)}/retry`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: `_csrf=${encodeURIComponent(csrf)}&title=forged`,
    });
    return { status: r.status, body: await r.json() };
  }, id);
  expect(forged).toEqual({
    status: 403,
    body: { error: expect.objectContaining({ code: 'forbidden', details: { required: 'operator', role: 'viewer' } }) },
  });
  await page.browserContext().close();

  // An operator without the CSRF token is refused too.
  const op = await newPage('operator');
  const noCsrf = await op.evaluate(async (taskId: string) => {
    const g = globalThis as unknown as { fetch: (u: string, i: unknown) => Promise<{ status: number }> };
    const r = await g.fetch(`/ui/reviews/${encodeURIComponent(taskId)}/discard`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: 'note=no token',
    });
    return r.status;
  }, id);
  expect(noCsrf).toBe(403);
  await op.goto(`${stack.url}/ui/tasks?status=failed`);
  await shot(op, 'tasks');
  await op.browserContext().close();
  expect(existsSync(path.join(SHOTS, 'tasks.png'))).toBe(true);
  // Neither request decided anything: the review is still open, with one attempt sent.
  expect((await docOf(id))?.review?.open).toBe(true);
  expect(receiver.requestsFor(id)).toHaveLength(1);
});

test('the Tasks filters: platform, search by title, a time range, each a bounded page newest first', async () => {
  const since = new Date(Date.now() - 1000).toISOString().slice(0, 16);
  const a = await publishHook('filter me: alpha');
  const b = await publishHook('filter me: beta');
  const other = await stack
    .api('publisher')
    .post('/api/v1/publish')
    .send({ platform: 'scripted', accountId: 'scr-1', video: { path: 'clip.mp4' }, title: 'filter me: gamma' });
  expect(other.status).toBe(202);
  await inReview(a);
  await inReview(b);
  const page = await newPage('viewer');
  await page.goto(`${stack.url}/ui/tasks`);
  await page.type('[data-testid="task-filters"] input[name="search"]', 'FILTER ME');
  await page.type('[data-testid="task-filters"] input[name="platform"]', 'webhook');
  await page.select('[data-testid="task-filters"] select[name="status"]', 'failed');
  await Promise.all([page.waitForNavigation(), page.click('[data-testid="filter"]')]);
  const ids = () =>
    page.$$eval('[data-testid="tasks"] tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-live-id')));
  expect(await ids()).toEqual([b, a]); // newest first, the scripted one left out
  expect(await textOf(page, '[data-testid="scan-pager"]')).toMatch(/looked at \d+ tasks/);
  await shot(page, 'tasks-filtered');
  // The form keeps what was asked; a time range from the future is empty.
  expect(await page.$eval('input[name="search"]', (i) => (i as unknown as { value: string }).value)).toBe('FILTER ME');
  const future = new Date(Date.now() + 3_600_000).toISOString().slice(0, 16);
  await page.goto(`${stack.url}/ui/tasks?search=filter+me&since=${future}`);
  expect(await ids()).toEqual([]);
  await page.goto(`${stack.url}/ui/tasks?search=filter+me&since=${since}&accountId=scr-1`);
  expect(await ids()).toEqual([(other.body as { taskId: string }).taskId]);
  await page.browserContext().close();
});

test('the Accounts page shows what waits on each account, linked to those tasks', async () => {
  const at = new Date(Date.now() + 3_600_000).toISOString();
  const res = await stack
    .api('publisher')
    .post('/api/v1/publish')
    .send({ platform: 'scripted', accountId: 'scr-2', video: { path: 'clip.mp4' }, title: 'later', publishAt: at });
  expect(res.status).toBe(202);
  const id = (res.body as { taskId: string }).taskId;
  const page = await newPage('viewer');
  await page.goto(`${stack.url}/ui/accounts`);
  const row = 'tr[data-account="scr-2"]';
  expect(await textOf(page, `${row} [data-testid="waits"]`)).toMatch(/1 queued or scheduled/);
  expect(await textOf(page, 'tr[data-account="hook"] [data-testid="waits"]')).toMatch(/nothing/);
  await shot(page, 'accounts-waiting');
  await Promise.all([page.waitForNavigation(), page.click(`${row} [data-testid="waits-pending"]`)]);
  expect(
    await page.$$eval('[data-testid="tasks"] tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-live-id'))),
  ).toEqual([id]);
  await page.browserContext().close();
  expect((await stack.api('publisher').post(`/api/v1/tasks/${id}/cancel`)).status).toBe(200);
});
