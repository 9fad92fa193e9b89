/**
 * Event webhooks without servers: which events a document version stands for (and that their ids stay the same
 * across the versions that repeat them), the bodies and signatures sent, and the events file's validation.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { deriveEvents } from '../../src/events/derive';
import { deliveryHeaders, eventBody, slackText } from '../../src/events/format';
import { EventsConfigError, loadSubscriptions } from '../../src/events/subscriptions';
import { initialBatchDoc, initialTaskDoc } from '../../src/shared/task-doc';
import type { ReviewRecord, TaskDoc } from '../../src/shared/types';
import { tempDir } from '../helpers/servers';

const T0 = '2026-12-03T05:00:00.000Z';
const at = (min: number) => new Date(Date.parse(T0) + min * 60_000).toISOString();

function single(patch: Partial<TaskDoc> = {}): TaskDoc {
  const doc = initialTaskDoc({
    taskId: 'pub-1',
    request: { platform: 'webhook', accountId: 'hook', video: { path: 'v.mp4' }, title: 'hello <b>', priority: 5 },
    parentTaskId: null,
    createdAt: T0,
    runId: 'run-1',
  });
  return { ...doc, ...patch };
}

const review = (patch: Partial<ReviewRecord> = {}): ReviewRecord => ({
  open: true,
  reason: 'The publish may have happened: check the account before retrying.',
  kind: 'Unconfirmed',
  message: 'answered 500',
  attempt: 1,
  failed_at: at(1),
  expires_at: at(60 * 24 * 7),
  ...patch,
});

const ids = (doc: TaskDoc) => deriveEvents(doc).map((e) => e.id);

describe('deriveEvents', () => {
  test('pending, running and retry versions stand for no event', () => {
    expect(ids(single())).toEqual([]);
    expect(ids(single({ status: 'running', attempt: 1, version: 3 }))).toEqual([]);
    expect(ids(single({ status: 'retry', attempt: 1, error_kind: 'NotSent', version: 4 }))).toEqual([]);
  });

  test('a failure opens a review: review.opened for the attempt, the same id on every later version', () => {
    const failed = single({ status: 'failed', attempt: 1, error_kind: 'Unconfirmed', review: review(), version: 4 });
    const [opened, ...rest] = deriveEvents(failed);
    expect(rest).toEqual([]);
    expect(opened).toEqual({
      id: 'pub-1:review.opened:1',
      type: 'review.opened',
      occurred_at: at(1),
      data: expect.objectContaining({
        taskId: 'pub-1',
        status: 'failed',
        platform: 'webhook',
        accountId: 'hook',
        errorKind: 'Unconfirmed',
        attempt: 1,
        title: 'hello <b>',
        review: expect.objectContaining({ kind: 'Unconfirmed', attempt: 1 }),
      }),
    });
    // A cancel request recorded while the review is open is a newer version of the same review.
    expect(ids({ ...failed, version: 5, updated_at: at(3) })).toEqual(['pub-1:review.opened:1']);
  });

  test('AuthExpired also says the account needs a login', () => {
    const doc = single({
      status: 'failed',
      attempt: 2,
      error_kind: 'AuthExpired',
      review: review({ kind: 'AuthExpired', attempt: 2 }),
    });
    expect(ids(doc)).toEqual(['pub-1:review.opened:2', 'pub-1:account.needs_login:2']);
  });

  test('a retry decision, then success: review.decided once per attempt, task.succeeded for the attempt', () => {
    const closed = review({ open: false, decision: 'retry', decided_at: at(5), note: 'fixed' });
    const pending = single({ status: 'pending', attempt: 1, review: closed, retry_count: 1, updated_at: at(5) });
    expect(deriveEvents(pending)).toEqual([
      expect.objectContaining({
        id: 'pub-1:review.decided:1',
        occurred_at: at(5),
        data: expect.objectContaining({ review: expect.objectContaining({ decision: 'retry', note: 'fixed' }) }),
      }),
    ]);
    expect(ids({ ...pending, status: 'running', attempt: 2 })).toEqual(['pub-1:review.decided:1']);
    const done = {
      ...pending,
      status: 'success' as const,
      attempt: 2,
      completed_at: at(6),
      result: { url: 'https://x.test/1' },
    };
    const events = deriveEvents(done);
    expect(events.map((e) => e.id)).toEqual(['pub-1:task.succeeded:2', 'pub-1:review.decided:1']);
    expect(events[0]).toMatchObject({ occurred_at: at(6), data: { result: { url: 'https://x.test/1' } } });
  });

  test('discard and expiry end the task failed: review.decided and task.failed; a cancel is neither', () => {
    for (const decision of ['discard', 'expired'] as const) {
      const doc = single({
        status: 'failed',
        attempt: 1,
        review: review({ open: false, decision, decided_at: at(9) }),
      });
      expect(ids(doc)).toEqual(['pub-1:review.decided:1', 'pub-1:task.failed:1']);
    }
    const cancelled = single({
      status: 'cancelled',
      attempt: 1,
      review: review({ open: false, decided_at: at(9), note: 'cancelled' }),
    });
    expect(ids(cancelled)).toEqual([]);
    const resolved = single({
      status: 'success',
      attempt: 1,
      review: review({ open: false, decision: 'resolve', decided_at: at(9) }),
    });
    expect(ids(resolved)).toEqual(['pub-1:task.succeeded:1', 'pub-1:review.decided:1']);
  });

  test('a batch completes once per settled outcome; running batches and children stand for nothing', () => {
    const batch = initialBatchDoc({
      taskId: 'batch-1',
      total: 3,
      concurrency: 2,
      priority: 5,
      createdAt: T0,
      runId: 'r',
    });
    expect(ids({ ...batch, status: 'running' })).toEqual([]);
    const failed = {
      ...batch,
      status: 'failed' as const,
      completed_at: at(4),
      counts: { total: 3, pending: 0, running: 0, success: 2, failed: 1, cancelled: 0 },
    };
    expect(deriveEvents(failed)).toEqual([
      expect.objectContaining({
        id: 'batch-1:batch.completed:failed-2-1-0',
        occurred_at: at(4),
        data: expect.objectContaining({ counts: failed.counts }),
      }),
    ]);
    const succeeded = { ...failed, status: 'success' as const, counts: { ...failed.counts, success: 3, failed: 0 } };
    expect(ids(succeeded)).toEqual(['batch-1:batch.completed:success-3-0-0']);
    expect(ids({ ...batch, status: 'cancelled', counts: { ...failed.counts, cancelled: 1 } })).toEqual([
      'batch-1:batch.completed:cancelled',
    ]);
  });
});

describe('bodies and signatures', () => {
  const [event] = deriveEvents(single({ status: 'failed', attempt: 1, error_kind: 'Unconfirmed', review: review() }));

  test('the JSON body is the event; the signature is the HMAC-SHA256 of exactly those bytes', () => {
    const body = eventBody(event!, 'json');
    expect(JSON.parse(body)).toEqual(event);
    const headers = deliveryHeaders(event!, body, 'shh');
    expect(headers).toMatchObject({
      'Pubflow-Event': 'review.opened',
      'Pubflow-Delivery': 'pub-1:review.opened:1',
      'Pubflow-Signature': `sha256=${createHmac('sha256', 'shh').update(body).digest('hex')}`,
    });
    expect(deliveryHeaders(event!, body, 'other')['Pubflow-Signature']).not.toBe(headers['Pubflow-Signature']);
  });

  test('slack gets {text}, with the title escaped for mrkdwn', () => {
    const body = JSON.parse(eventBody(event!, 'slack')) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['text']);
    expect(body.text).toBe(slackText(event!));
    expect(body.text).toContain('pub-1 (webhook/hook) "hello &lt;b&gt;"');
    expect(body.text).toContain('Unconfirmed');
  });
});

describe('the events file', () => {
  const dir = tempDir('events-file');
  const write = (name: string, content: unknown) => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  const errorOf = (file: string) => {
    try {
      loadSubscriptions(file);
    } catch (err) {
      expect(err).toBeInstanceOf(EventsConfigError);
      return (err as Error).message;
    }
    throw new Error('loaded');
  };
  const ok = { url: 'http://127.0.0.1:9/hook', secret: 's3cret-value', events: ['review.opened'] };

  test('a valid file: ids given or derived, a secret from a file next to it', () => {
    write('secret.txt', 'from-a-file\n');
    const reg = loadSubscriptions(
      write('ok.json', [
        ok,
        {
          id: 'chat',
          ...ok,
          format: 'slack',
          secret: { file: 'secret.txt' },
          events: ['task.failed', 'review.opened'],
        },
      ]),
    );
    const [a, b] = reg.list();
    expect(a).toMatchObject({ url: ok.url, format: 'json', id: expect.stringMatching(/^[0-9a-f]{12}$/) });
    expect(b).toMatchObject({ id: 'chat', format: 'slack' });
    expect(reg.wanting('task.failed').map((s) => s.id)).toEqual(['chat']);
    expect(reg.secret('chat')).toBe('from-a-file');
  });

  test.each([
    [
      'an unknown event',
      [{ ...ok, events: ['review.opened', 'task.exploded'] }],
      'subscription at index 0, field "events.1": must be one of task.succeeded',
    ],
    ['no events', [{ ...ok, events: [] }], 'field "events": must name at least one event'],
    [
      'a URL that is not http',
      [ok, { ...ok, url: 'ftp://x' }],
      'subscription at index 1, field "url": must be an http:// or https:// URL',
    ],
    ['no secret', [{ url: ok.url, events: ok.events }], 'field "secret": is required'],
    [
      'a malformed reference',
      [{ ...ok, secret: { env: 'A', file: 'b' } }],
      'field "secret": a reference must be exactly',
    ],
    [
      'a secret variable that is not set',
      [{ ...ok, secret: { env: 'PUBFLOW_TEST_UNSET_SECRET_VAR' } }],
      'field "secret": event subscription',
    ],
    ['an unknown format', [{ ...ok, format: 'teams' }], 'field "format": must be "json" or "slack"'],
    ['an unknown field', [{ ...ok, evnets: [] }], 'subscription at index 0, field "(subscription)"'],
    ['the same subscription twice', [ok, ok], 'subscription at index 1, field "id": duplicate id'],
    ['not a list', { url: ok.url }, 'must be a list of subscriptions'],
  ])('%s is refused naming the field', (_name, content, message) => {
    const msg = errorOf(write(`bad-${Math.random()}.json`, content));
    expect(msg).toContain('PUBFLOW_EVENTS_FILE');
    expect(msg).toContain(message);
    expect(msg).not.toContain('s3cret-value');
  });

  test('an unreadable or broken file says so', () => {
    expect(errorOf(path.join(dir, 'missing.json'))).toContain('cannot read events file');
    expect(errorOf(write('broken.json', '[{'))).toContain('is not valid JSON');
  });
});

describe('the worker process', () => {
  test('a bad events file stops `node lib/worker.js` at start-up with a message naming the file and the field', () => {
    const file = path.join(tempDir('events-worker'), 'events.json');
    writeFileSync(file, JSON.stringify([{ url: 'http://127.0.0.1:9/x', secret: 's', events: ['review.openned'] }]));
    const root = path.resolve(__dirname, '../..');
    if (!existsSync(path.join(root, 'lib/worker.js'))) throw new Error('lib/worker.js is missing: run npm run build');
    const run = spawnSync(process.execPath, [path.join(root, 'lib/worker.js')], {
      cwd: root,
      env: {
        ...process.env,
        PUBFLOW_EVENTS_FILE: file,
        // Nothing listens there: the worker must stop before it connects to anything.
        TEMPORAL_ADDRESS: '127.0.0.1:9',
        REDIS_URL: 'redis://127.0.0.1:9',
        PUBFLOW_WORKER_METRICS_PORT: '0',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(1);
    const fatal = run.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: string | number; error?: string })
      .find((l) => l.error?.includes('EventsConfigError'));
    expect(fatal?.error).toContain(`invalid events file ${file} (PUBFLOW_EVENTS_FILE)`);
    expect(fatal?.error).toContain('subscription at index 0, field "events.0": must be one of');
  }, 90_000);
});

describe('configuration', () => {
  test('PUBFLOW_EVENTS_* reach the config; without a file there are no events; a bad duration names its variable', () => {
    expect(loadConfig({}).events).toEqual({
      file: undefined,
      retry: { initialIntervalMs: 10_000, maximumIntervalMs: 3_600_000, giveUpAfterMs: 86_400_000 },
    });
    expect(
      loadConfig({
        PUBFLOW_EVENTS_FILE: 'events.json',
        PUBFLOW_EVENTS_RETRY_INITIAL: '2s',
        PUBFLOW_EVENTS_GIVE_UP_AFTER: '2h',
      }).events,
    ).toEqual({
      file: 'events.json',
      retry: { initialIntervalMs: 2000, maximumIntervalMs: 3_600_000, giveUpAfterMs: 7_200_000 },
    });
    expect(() => loadConfig({ PUBFLOW_EVENTS_GIVE_UP_AFTER: 'soon' })).toThrow(
      /PUBFLOW_EVENTS_GIVE_UP_AFTER: not a duration/,
    );
  });
});
