/** What `watch` draws: the bar, the progress line for a task and a batch, and a line that fits the terminal. */
import { bar, fitLine, outcomeLine, progressLine, type TaskDoc } from '../../src/cli/watch';
import type { Io } from '../../src/cli/output';

const io = (over: Partial<Io> = {}): Io => ({
  out: () => undefined,
  err: () => undefined,
  outTty: false,
  errTty: false,
  color: false,
  columns: 80,
  ...over,
});

function doc(over: Partial<TaskDoc> = {}): TaskDoc {
  return {
    task_id: 'pub-1',
    task_type: 'publish',
    data: { platform: 'local', accountId: 'demo', video: { path: '/m/a.mp4' }, title: 't', priority: 5 },
    priority: 5,
    parent_task_id: null,
    status: 'running',
    created_at: '2026-12-02T10:00:00.000Z',
    started_at: null,
    completed_at: null,
    updated_at: '2026-12-02T10:00:01.000Z',
    error_message: null,
    result: null,
    retry_count: 0,
    version: 3,
    attempt: 1,
    progress: { percent: 40, stage: 'uploading' },
    review: null,
    platform: 'local',
    account_id: 'demo',
    workflow_id: 'pub-1',
    run_id: null,
    scheduled_for: null,
    error_kind: null,
    ...over,
  };
}

test('the bar fills in proportion and stays within its width', () => {
  expect(bar(0, 10, true)).toBe('░'.repeat(10));
  expect(bar(0.5, 10, true)).toBe('█'.repeat(5) + '░'.repeat(5));
  expect(bar(1.7, 4, true)).toBe('████');
  expect(bar(0.25, 4, false)).toBe('[#---]');
});

test('plain progress lines say the percent, stage and status of a task, and the counts of a batch', () => {
  expect(progressLine(doc(), io())).toBe('pub-1 40% uploading (running)');
  expect(progressLine(doc({ status: 'pending', progress: null, attempt: 2 }), io())).toBe(
    'pub-1 0% (pending, attempt 2)',
  );
  const batch = doc({
    task_id: 'batch-1',
    task_type: 'batch_publish',
    counts: { total: 4, pending: 1, running: 1, success: 1, failed: 1, cancelled: 0 },
  });
  expect(progressLine(batch, io())).toBe(
    'batch-1 50% 2/4 done: success 1, failed 1, cancelled 0; running 1, pending 1 (running)',
  );
  expect(progressLine(batch, io({ errTty: true, columns: 200 }))).toMatch(/^batch-1 █{20}░{20} 50% 2\/4 done/);
});

test('a line wider than the terminal is cut to fit, so redrawing it in place works', () => {
  const long = progressLine(doc({ task_id: `pub-${'x'.repeat(100)}` }), io({ errTty: true, columns: 80 }));
  const fitted = fitLine(long, 80);
  expect(fitted.length).toBe(79);
  expect(fitted.endsWith('…')).toBe(true);
  expect(fitLine('short', 80)).toBe('short');
});

test('the outcome line says what to do next; control characters from the platform are shown escaped', () => {
  expect(outcomeLine(doc({ status: 'success', result: { url: 'https://x.test/1' } }), false)).toBe(
    'pub-1 success: https://x.test/1',
  );
  const inReview = doc({
    status: 'failed',
    review: {
      open: true,
      reason: 'r',
      kind: 'Unconfirmed',
      message: 'HTTP 500\x1b[2J',
      attempt: 1,
      failed_at: '2026-12-02T10:00:02.000Z',
      expires_at: '2026-12-09T10:00:02.000Z',
    },
  });
  expect(outcomeLine(inReview, false)).toBe(
    'pub-1 failed (in review, Unconfirmed: HTTP 500\\x1b[2J); `pubflow retry pub-1`, `resolve` or `discard`',
  );
});
