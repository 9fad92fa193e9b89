/**
 * The `pubflow` command against a live stack (issue #12 §4): the real built binary, run as a child process, talks to
 * `node lib/api.js` over HTTP; `node lib/worker.js`, a Temporal dev server and redis-server do the work; the platform
 * is a local webhook endpoint whose answers the test chooses by title. Each command runs with the least role it
 * needs: viewer for reads, publisher for batch and publish, operator for retry.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { typeIndex } from '../../src/projection/keys';
import { ApiClient } from '../../src/cli/client';
import type { Io } from '../../src/cli/output';
import { watch } from '../../src/cli/watch';
import { useFaultStack, type FaultStack } from '../integration/fault-helpers';
import { requireBuiltCli, runCli, shown, startCli, type CliRun } from './run-cli';

let stack: FaultStack;
type CliRole = 'viewer' | 'publisher' | 'operator';

requireBuiltCli();
useFaultStack({ name: 'cli', accounts: 2 }, async (s) => {
  stack = s;
  // The endpoint answers by title: "broken ..." is a 500 (an Unconfirmed failure, which lands in review).
  s.endpoint.behaviour = (req) =>
    req.title?.startsWith('broken')
      ? { status: 500, body: { error: 'cms exploded' } }
      : req.title?.startsWith('flaky') && req.attempt === 1
        ? { status: 500, body: { error: 'cms hiccup' } }
        : req.title?.startsWith('held')
          ? 'hold'
          : { status: 200 };
  // The stack's API reads its keys file (one real key per role, s.keys); each command uses the least role it needs.
  await Promise.all([s.startWorker('cli-worker'), s.startApi('cli-api')]);
});

const cliOptions = (role: CliRole, timeoutMs?: number) => ({
  env: { PUBFLOW_URL: `http://127.0.0.1:${stack.apiPort}`, PUBFLOW_TOKEN: stack.keys.tokens[role] },
  cwd: stack.dir,
  timeoutMs,
});
const cli = (role: CliRole, args: string[], timeoutMs?: number): Promise<CliRun> =>
  runCli(args, cliOptions(role, timeoutMs));

/** The exit code with everything the command said, so a failed expectation shows why. */
const outcome = (r: CliRun) => ({ code: r.code, output: shown(r) });

function csv(name: string, rows: string[][]): string {
  const file = path.join(stack.dir, name);
  const header = 'accountId,platform,video,title,description,tags,publishAt,priority';
  writeFileSync(file, [header, ...rows.map((r) => r.join(','))].join('\n') + '\n');
  return file;
}

const batchDocs = () => stack.redis.zcard(typeIndex('batch_publish'));

test('a CSV batch with a bad row is rejected naming the row and column, and nothing starts', async () => {
  // Arrange: three rows; the second has an empty title and a priority that is not a number.
  const file = csv('bad.csv', [
    ['hook-0', 'webhook', 'clip-0.mp4', 'fine one', '', 'a;b', '', ''],
    ['hook-1', 'webhook', 'clip-1.mp4', '', '', '', '', 'soon'],
    ['hook-0', 'webhook', 'clip-2.mp4', 'fine two', '', '', '', '2'],
  ]);
  const requestsBefore = stack.endpoint.requests.length;

  const r = await cli('publisher', ['batch', file]);

  expect(outcome(r)).toMatchObject({ code: 2 });
  expect(r.stderr).toContain('nothing was sent');
  expect(r.stderr).toMatch(/row 2 \(line 3\), column title: is required/);
  expect(r.stderr).toMatch(/row 2 \(line 3\), column priority: must be a whole number/);
  expect(r.stderr).not.toMatch(/row [13] /);
  expect(r.stdout).toBe('');
  // Nothing reached the API's batch route: no batch document, no upload.
  expect(await batchDocs()).toBe(0);
  expect(stack.endpoint.requests.length).toBe(requestsBefore);
});

test('a row the API refuses (a video missing from the media root) is named by row and column, and nothing starts', async () => {
  // Arrange: every row is well-formed, so only the API can tell that row 2's file does not exist.
  const file = csv('missing-video.csv', [
    ['hook-0', 'webhook', 'clip-0.mp4', 'fine', '', '', '', ''],
    ['hook-1', 'webhook', 'no-such-clip.mp4', 'gone', '', '', '', ''],
  ]);

  const r = await cli('publisher', ['batch', file]);

  expect(outcome(r)).toMatchObject({ code: 2 });
  expect(r.stderr).toContain('the API refused the batch; nothing was started');
  expect(r.stderr).toMatch(/row 2 \(line 3\), column video: /);
  expect(await batchDocs()).toBe(0);
});

test('a good CSV batch is started and watched to the end: progress lines, then exit 0 with every item published', async () => {
  // Arrange
  const file = csv('good.csv', [
    ['hook-0', 'webhook', 'clip-0.mp4', 'good one', 'first', 'cli;e2e', '', ''],
    ['hook-1', 'webhook', 'clip-1.mp4', '"good, two"', '', '', '', '1'],
    ['hook-0', 'webhook', 'clip-2.mp4', 'good three', '', '', '', ''],
  ]);

  // Act: start it as a publisher, watch it as a viewer.
  const started = await cli('publisher', ['batch', file]);
  expect(outcome(started)).toMatchObject({ code: 0 });
  const batchId = started.stdout.trim();
  expect(batchId).toMatch(/^batch-/);
  expect(started.stderr).toContain(`started batch ${batchId} with 3 items`);
  const watched = await cli('viewer', ['watch', batchId, '--interval', '300ms'], 120_000);

  // Assert: the outcome's exit code and line, and progress lines along the way (stderr is not a terminal).
  expect(outcome(watched)).toMatchObject({ code: 0 });
  expect(watched.stdout).toBe(`${batchId} success: all 3 published\n`);
  const lines = watched.stderr.trim().split('\n');
  expect(lines.at(-1)).toMatch(new RegExp(`^${batchId} 100% 3/3 done: success 3, failed 0, cancelled 0`));
  expect(lines.every((l) => l.startsWith(`${batchId} `))).toBe(true);
  // Every item was uploaded exactly once, with the row's own fields.
  const titles = stack.endpoint.requests.filter((q) => q.taskId.startsWith(batchId)).map((q) => q.title);
  expect(titles.sort()).toEqual(['good one', 'good three', 'good, two']);

  const listed = await cli('viewer', ['tasks', '--batch', batchId, '--json']);
  expect(outcome(listed)).toMatchObject({ code: 0 });
  const page = JSON.parse(listed.stdout) as { total: number; items: Array<{ status: string }> };
  expect(page.total).toBe(3);
  expect(page.items.map((d) => d.status)).toEqual(['success', 'success', 'success']);
});

test('on a terminal, watch redraws one bar in place and ends it with a line break', async () => {
  // Arrange: a batch started from the command line, watched in-process with stderr taken for a terminal.
  const file = csv('tty.csv', [
    ['hook-0', 'webhook', 'clip-0.mp4', 'tty one', '', '', '', ''],
    ['hook-1', 'webhook', 'clip-1.mp4', 'tty two', '', '', '', ''],
  ]);
  const started = await cli('publisher', ['batch', file]);
  expect(outcome(started)).toMatchObject({ code: 0 });
  const batchId = started.stdout.trim();
  let out = '';
  let err = '';
  const io: Io = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    outTty: false,
    errTty: true,
    color: false,
    columns: 200,
  };
  const client = new ApiClient({
    url: `http://127.0.0.1:${stack.apiPort}`,
    token: stack.keys.tokens.viewer,
    tokenSource: 'PUBFLOW_TOKEN',
  });

  const code = await watch(client, io, batchId, { intervalMs: 200, giveUpMs: 10_000, json: false });

  // Assert: frames start with a carriage return and clear the rest of the line; one line break, at the end.
  expect(code).toBe(0);
  expect(out).toBe(`${batchId} success: all 2 published\n`);
  expect(err.endsWith('\n')).toBe(true);
  expect(err.split('\n')).toHaveLength(2);
  const frames = err.trimEnd().split('\r').filter(Boolean);
  expect(frames.length).toBeGreaterThanOrEqual(1);
  for (const f of frames) expect(f).toMatch(new RegExp(`^${batchId} [█░]{10,40} \\d+% \\d/2 done: .*\x1b\\[K$`));
  expect(frames.at(-1)).toMatch(new RegExp(`^${batchId} █{40} 100% 2/2 done: success 2`));
});

test('a batch with a failing item ends watch with exit 1 and points at its reviews', async () => {
  const file = csv('half.csv', [
    ['hook-0', 'webhook', 'clip-0.mp4', 'fine item', '', '', '', ''],
    ['hook-1', 'webhook', 'clip-1.mp4', 'broken item', '', '', '', ''],
  ]);

  const started = await cli('publisher', ['batch', file]);
  expect(outcome(started)).toMatchObject({ code: 0 });
  const batchId = started.stdout.trim();
  const watched = await cli('viewer', ['watch', batchId, '--interval', '300ms'], 120_000);

  expect(outcome(watched)).toMatchObject({ code: 1 });
  expect(watched.stdout).toBe(
    `${batchId} failed: 1 of 2 published, 1 failed, 0 cancelled; see \`pubflow reviews --batch ${batchId}\`\n`,
  );
  const reviews = await cli('viewer', ['reviews', '--batch', batchId]);
  expect(outcome(reviews)).toMatchObject({ code: 0 });
  expect(reviews.stdout).toMatch(/^ID\s+ACCOUNT\s+KIND\s+ATTEMPT\s+FAILED\s+MESSAGE\n/);
  expect(reviews.stdout).toContain(`${batchId}-1  hook-1   Unconfirmed`);
});

test('a publish that lands in review is retried from the command line with a corrected title and publishes once more', async () => {
  // Arrange: a single publish the endpoint refuses with a 500.
  const pub = await cli('publisher', [
    'publish',
    '--platform',
    'webhook',
    '--account',
    'hook-0',
    '--video',
    'clip-3.mp4',
    '--title',
    'broken title',
  ]);
  expect(outcome(pub)).toMatchObject({ code: 0 });
  const id = pub.stdout.trim();
  const failed = await cli('viewer', ['watch', id, '--interval', '300ms'], 120_000);
  expect(outcome(failed)).toMatchObject({ code: 1 });
  expect(failed.stdout).toContain(`${id} failed (in review, Unconfirmed:`);
  const open = await cli('viewer', ['reviews', '--account', 'hook-0', '--json']);
  expect((JSON.parse(open.stdout) as { items: Array<{ task_id: string }> }).items.map((d) => d.task_id)).toContain(id);

  // A viewer's (or publisher's) key may not decide a review: the API's 403, exit 3, and nothing is sent.
  for (const role of ['viewer', 'publisher'] as const) {
    const refused = await cli(role, ['retry', id, '--title', 'not mine to fix']);
    expect(outcome(refused)).toMatchObject({ code: 3 });
    expect(refused.stderr).toMatch(/operator/);
    expect(refused.stderr).not.toContain(stack.keys.tokens[role]);
  }
  expect(stack.endpoint.requestsFor(id)).toHaveLength(1);

  // Act: retry as an operator, with a corrected title and a note.
  const retry = await cli('operator', ['retry', id, '--title', 'corrected title', '--note', 'checked the CMS']);

  // Assert: attempt 2 succeeds; the endpoint saw exactly one request per attempt.
  expect(outcome(retry)).toMatchObject({ code: 0 });
  expect(retry.stdout).toBe(`${id} retrying: attempt 2 (attempt 1 was in review)\n`);
  const done = await cli('viewer', ['watch', id, '--interval', '300ms', '--json'], 120_000);
  expect(outcome(done)).toMatchObject({ code: 0 });
  expect(JSON.parse(done.stdout)).toMatchObject({ task_id: id, status: 'success', attempt: 2, retry_count: 1 });
  expect(stack.endpoint.requestsFor(id).map((q) => [q.key, q.title, q.status])).toEqual([
    [`${id}:1`, 'broken title', 500],
    [`${id}:2`, 'corrected title', 200],
  ]);
  // The audit trail names the operator's key and the note.
  expect(JSON.parse(done.stdout).decisions).toEqual([
    expect.objectContaining({ action: 'retry', by: 'test-operator', role: 'operator', note: 'checked the CMS' }),
  ]);
  const status = await cli('viewer', ['status', id]);
  expect(status.stdout).toMatch(/^status\s+success$/m);
  expect(status.stdout).toMatch(/^review\s+closed: retry/m);
  // The review is closed: retrying again is refused as input (409), not an API failure, and sends nothing.
  const again = await cli('operator', ['retry', id]);
  expect(outcome(again)).toMatchObject({ code: 2 });
  expect(stack.endpoint.requestsFor(id)).toHaveLength(2);
});

test('stats, accounts and an unknown id: tables for people, JSON for scripts, 404 is exit 2', async () => {
  const stats = await cli('viewer', ['stats', '--json']);
  expect(outcome(stats)).toMatchObject({ code: 0 });
  const s = JSON.parse(stats.stdout) as Record<string, number>;
  expect(s.total).toBe(s.pending! + s.running! + s.success! + s.failed! + s.retry! + s.cancelled!);
  expect(s.success).toBeGreaterThanOrEqual(1);

  const accounts = await cli('viewer', ['accounts']);
  expect(outcome(accounts)).toMatchObject({ code: 0 });
  expect(accounts.stdout).toMatch(/^ID\s+PLATFORM\s+NAME\s+STATUS\s+SINCE\n/);
  expect(accounts.stdout).toMatch(/^hook-0\s+webhook\s+Fault endpoint hook-0\s+active/m);
  expect(accounts.stdout).not.toContain('fault-suite-token'); // credentials never shown

  const missing = await cli('viewer', ['status', 'pub-does-not-exist']);
  expect(outcome(missing)).toMatchObject({ code: 2 });
  expect(missing.stderr).toMatch(/not found/);
});

test('reschedule, cancel, discard, resolve, retry-all and reactivate from the command line, each with the least role', async () => {
  const publish = async (title: string, extra: string[] = []) => {
    const r = await cli('publisher', [
      'publish',
      '--platform',
      'webhook',
      '--account',
      'hook-1',
      '--video',
      'clip-1.mp4',
      '--title',
      title,
      ...extra,
    ]);
    expect(outcome(r)).toMatchObject({ code: 0 });
    return r.stdout.trim();
  };
  const doc = async (id: string) =>
    JSON.parse((await cli('viewer', ['status', id, '--json'])).stdout) as {
      status: string;
      scheduled_for: string | null;
      result: { url?: string } | null;
      review: { open: boolean; decision?: string; note?: string } | null;
    };

  // A scheduled publish: moved later, then cancelled before it ever uploads; a second cancel is a 409 (exit 2).
  const later = await publish('scheduled for later', ['--publish-at', '+1h']);
  const before = await doc(later);
  expect(before.status).toBe('pending');
  const moved = await cli('publisher', ['reschedule', later, '--at', '+2h']);
  expect(outcome(moved)).toMatchObject({ code: 0 });
  expect(moved.stdout).toMatch(new RegExp(`^${later} scheduled for \\S+\\n$`));
  expect(Date.parse((await doc(later)).scheduled_for!) - Date.parse(before.scheduled_for!)).toBeGreaterThan(
    50 * 60_000,
  );
  const cancelled = await cli('publisher', ['cancel', later]);
  expect(outcome(cancelled)).toMatchObject({ code: 0 });
  expect(cancelled.stdout).toBe(`${later} cancelled\n`);
  expect(outcome(await cli('viewer', ['watch', later]))).toMatchObject({ code: 1 });
  expect(outcome(await cli('publisher', ['cancel', later]))).toMatchObject({ code: 2 });
  expect(stack.endpoint.requestsFor(later)).toHaveLength(0);

  // Two failures: one discarded (stays failed), one resolved by hand (becomes success); neither is uploaded again.
  const [toDiscard, toResolve] = [await publish('broken, discard me'), await publish('broken, resolve me')];
  for (const id of [toDiscard, toResolve])
    expect(outcome(await cli('viewer', ['watch', id, '--interval', '300ms'], 120_000))).toMatchObject({ code: 1 });
  const discarded = await cli('operator', ['discard', toDiscard, '--note', 'duplicate post']);
  expect(outcome(discarded)).toMatchObject({ code: 0 });
  expect(discarded.stdout).toBe(`${toDiscard} discarded (attempt 1)\n`);
  const resolved = await cli('operator', ['resolve', toResolve, '--url', 'https://cms.test/by-hand']);
  expect(outcome(resolved)).toMatchObject({ code: 0 });
  expect(await doc(toDiscard)).toMatchObject({
    status: 'failed',
    review: { open: false, decision: 'discard', note: 'duplicate post' },
  });
  const done = await cli('viewer', ['watch', toResolve, '--interval', '300ms'], 120_000);
  expect(outcome(done)).toMatchObject({ code: 0 });
  expect(done.stdout).toBe(`${toResolve} success: https://cms.test/by-hand\n`);
  expect(stack.endpoint.requestsFor(toDiscard)).toHaveLength(1);
  expect(stack.endpoint.requestsFor(toResolve)).toHaveLength(1);

  // A batch whose two items fail once: retry-all with the batch filter retries both, and the batch then succeeds.
  const file = csv('flaky.csv', [
    ['hook-0', 'webhook', 'clip-0.mp4', 'flaky one', '', '', '', ''],
    ['hook-1', 'webhook', 'clip-1.mp4', 'flaky two', '', '', '', ''],
  ]);
  const batchId = (await cli('publisher', ['batch', file])).stdout.trim();
  expect(outcome(await cli('viewer', ['watch', batchId, '--interval', '300ms'], 120_000))).toMatchObject({ code: 1 });
  const all = await cli('operator', ['retry-all', '--batch', batchId, '--note', 'the CMS is back']);
  expect(outcome(all)).toMatchObject({ code: 0 });
  expect(all.stdout).toBe('retried 2 of 2 matching reviews\n');
  // At once: the batch's document follows its children's reports (written at most once a second), so for a moment
  // it still says "failed"; watch must not take that for the outcome (before it waited for a failure to hold, this
  // watch ended at once with exit 1).
  const watched = await cli('viewer', ['watch', batchId, '--interval', '300ms'], 120_000);
  expect(outcome(watched)).toMatchObject({ code: 0 });
  expect(
    stack.endpoint.requests
      .filter((q) => q.taskId.startsWith(batchId))
      .map((q) => q.key)
      .sort(),
  ).toEqual([`${batchId}-0:1`, `${batchId}-0:2`, `${batchId}-1:1`, `${batchId}-1:2`]);

  // An account that does not need a login: reactivate is refused (409), exit 2, with the API's message.
  const react = await cli('operator', ['reactivate', 'hook-0']);
  expect(outcome(react)).toMatchObject({ code: 2 });
  expect(react.stderr).toMatch(/^pubflow: .*hook-0/);
});

test('watch right after retry-all waits for the batch to move on, and follows it to success', async () => {
  // Arrange: a batch whose two items fail once, in review, its watch ended with exit 1.
  const file = csv('retry-watch.csv', [
    ['hook-0', 'webhook', 'clip-0.mp4', 'flaky watch one', '', '', '', ''],
    ['hook-1', 'webhook', 'clip-1.mp4', 'flaky watch two', '', '', '', ''],
  ]);
  const batchId = (await cli('publisher', ['batch', file])).stdout.trim();
  const client = (role: CliRole) =>
    new ApiClient({
      url: `http://127.0.0.1:${stack.apiPort}`,
      token: stack.keys.tokens[role],
      tokenSource: 'PUBFLOW_TOKEN',
    });
  let out = '';
  const io: Io = {
    out: (t) => void (out += t),
    err: () => undefined,
    outTty: false,
    errTty: false,
    color: false,
    columns: 200,
  };
  const opts = { intervalMs: 200, giveUpMs: 10_000, json: false };
  expect(await watch(client('viewer'), io, batchId, opts)).toBe(1);

  // Act: retry-all (the request the CLI command sends), then watch at once, in-process, as `retry-all && watch` does.
  // For half a second Redis takes no write (CLIENT PAUSE … WRITE; reads go on), so nothing the retry changes can reach
  // the mirror before the test has read it: the moment this test is about (the mirror still says "failed" while the
  // retry is under way) is certain. Without the pause the batch's document had sometimes moved on first (two of four
  // fresh-clone runs). Once the pause ends the writes land; watch's 2 s settle must see the batch move on.
  await stack.redis.call('CLIENT', 'PAUSE', '500', 'WRITE');
  const retrying = client('operator').post<{ retried: number }>('/reviews/retry-all', { batchId });
  const first = await client('viewer').get<{ status: string }>(`/tasks/${encodeURIComponent(batchId)}`);
  out = '';
  const code = await watch(client('viewer'), io, batchId, opts);
  const retried = await retrying;

  // Assert: the mirror still said "failed" when watch started (so this is the moment that ended it with exit 1
  // before), and watch waited for the outcome.
  expect(retried.body.retried).toBe(2);
  expect(first.status).toBe('failed');
  expect({ code, out }).toEqual({ code: 0, out: `${batchId} success: all 2 published\n` });
});

test('tasks with the scan filters (account, search, since) and a timeline from the command line', async () => {
  const publish = async (account: string, title: string) => {
    const r = await cli('publisher', [
      'publish',
      '--platform',
      'webhook',
      '--account',
      account,
      '--video',
      'clip-0.mp4',
      '--title',
      title,
    ]);
    expect(outcome(r)).toMatchObject({ code: 0 });
    return r.stdout.trim();
  };
  const broken = await publish('hook-0', 'broken cli-filter');
  const fine = await publish('hook-1', 'fine CLI-filter');
  expect(outcome(await cli('viewer', ['watch', fine, '--interval', '300ms'], 60_000))).toMatchObject({ code: 0 });
  expect(outcome(await cli('viewer', ['watch', broken, '--interval', '300ms'], 60_000))).toMatchObject({ code: 1 });

  const byAccount = await cli('viewer', ['tasks', '--account', 'hook-0', '--search', 'cli-filter', '--json']);
  expect(outcome(byAccount)).toMatchObject({ code: 0 });
  const page = JSON.parse(byAccount.stdout) as { items: { task_id: string }[]; total: null; next: null };
  expect(page.items.map((d) => d.task_id)).toEqual([broken]);
  expect(page).toMatchObject({ total: null, next: null });

  const table = await cli('viewer', ['tasks', '--since', '1h', '--search', 'cli-filter']);
  expect(outcome(table)).toMatchObject({ code: 0 });
  expect(table.stdout).toContain(fine);
  expect(table.stdout).toContain(broken);
  expect(table.stderr).toMatch(/^2 found, \d+ tasks looked at; that is all$/m);
  const bad = await cli('viewer', ['tasks', '--since', 'last tuesday']);
  expect(outcome(bad)).toMatchObject({ code: 2 });
  expect(bad.stderr).toMatch(/query\.since/);

  const timeline = await cli('viewer', ['timeline', broken, '--json']);
  expect(outcome(timeline)).toMatchObject({ code: 0 });
  const t = JSON.parse(timeline.stdout) as { entries: { type: string; outcome?: string; error_kind?: string }[] };
  expect(t.entries.map((e) => e.type)).toEqual(['attempt', 'review_opened']);
  expect(t.entries[0]).toMatchObject({ outcome: 'failed', error_kind: 'Unconfirmed' });
  const human = await cli('viewer', ['timeline', broken]);
  expect(human.stdout).toMatch(/attempt 1 failed Unconfirmed: broken cli-filter/);
});

// Last: it stops and restarts the file's API process.
test('watch rides out an API restart: it says it is trying again, then follows the task to its end', async () => {
  // Arrange: a publish the endpoint holds, so it is still running while the API goes away.
  const pub = await cli('publisher', [
    'publish',
    '--platform',
    'webhook',
    '--account',
    'hook-1',
    '--video',
    'clip-0.mp4',
    '--title',
    'held across a restart',
  ]);
  expect(outcome(pub)).toMatchObject({ code: 0 });
  const id = pub.stdout.trim();
  await stack.waitUntil(`the upload of ${id} at the endpoint`, () => stack.endpoint.requestsFor(id).length === 1);
  const watching = startCli(['watch', id, '--interval', '200ms'], cliOptions('viewer', 120_000));
  await stack.waitUntil('watch to show the task running', () => watching.stderr().includes(`${id} 0% `));

  // Act: stop the API; watch notices; start it again and let the upload finish.
  const api = stack.processes.find((p) => p.name === 'cli-api' && p.alive);
  expect(api).toBeDefined();
  await api!.stop();
  await stack.waitUntil('watch to say it is trying again', () =>
    watching.stderr().includes('trying again for up to 30 s'),
  );
  await stack.startApi('cli-api-2');
  expect(stack.endpoint.release((r) => r.taskId === id)).toBe(1);
  const r = await watching.done;

  // Assert
  expect(outcome(r)).toMatchObject({ code: 0 });
  expect(r.stdout).toMatch(new RegExp(`^${id} success: https?://\\S+\\n$`));
  expect(r.stderr).toContain(`cannot reach the pubflow API at http://127.0.0.1:${stack.apiPort}`);
  expect(stack.endpoint.requestsFor(id)).toHaveLength(1);
});
