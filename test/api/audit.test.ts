/**
 * The audit trail (issue "Access control" §2): every human action records who (the key's name), when and the note.
 * It travels in the update's (or signal's) arguments, so Temporal's history holds it, and the task document shows a
 * `decisions` list that `GET /api/v1/tasks/:id` returns. Each action here is taken with the least role it needs.
 */
import type { temporal } from '@temporalio/proto';
import { docWhere, publish, publishBody, type ApiStack, useApiStack } from './fixtures';
import type { DecisionRecord, TaskDoc } from '../../src/shared/types';

let stack: ApiStack;
useApiStack((s) => (stack = s));

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** The task as GET /api/v1/tasks/:id answers it, to a viewer. */
async function read(id: string): Promise<TaskDoc> {
  const res = await stack.api('viewer').get(`/api/v1/tasks/${id}`);
  expect(res.status).toBe(200);
  return res.body as TaskDoc;
}

/** Every payload the run's history holds in update, signal and terminate events, decoded from JSON. */
async function historyInputs(id: string): Promise<{ updates: unknown[]; signals: unknown[]; terminations: string[] }> {
  const history = await stack.client.workflow.getHandle(id).fetchHistory();
  const decode = (p: temporal.api.common.v1.IPayloads | null | undefined) =>
    (p?.payloads ?? []).map((x) => JSON.parse(Buffer.from(x.data ?? []).toString('utf8')) as unknown);
  const out = { updates: [] as unknown[], signals: [] as unknown[], terminations: [] as string[] };
  for (const e of history.events ?? []) {
    const accepted = e.workflowExecutionUpdateAcceptedEventAttributes;
    if (accepted) out.updates.push(...decode(accepted.acceptedRequest?.input?.args));
    const signalled = e.workflowExecutionSignaledEventAttributes;
    if (signalled) out.signals.push({ name: signalled.signalName, args: decode(signalled.input) });
    const terminated = e.workflowExecutionTerminatedEventAttributes;
    if (terminated) out.terminations.push(terminated.reason ?? '');
  }
  return out;
}

const entry = (over: Partial<DecisionRecord>) => ({ at: expect.stringMatching(ISO), note: null, ...over });

test('a review retry: the document and the update in the history both say who, when and the note', async () => {
  const id = await publish(stack, publishBody({ options: { behave: 'reject-first' } }));
  await docWhere(stack.redis, id, (d) => d.review?.open === true);
  const res = await stack
    .api('operator')
    .post(`/api/v1/reviews/${id}/retry`)
    .send({ patch: { title: 'shorter' }, note: 'title was too long' });
  expect(res.status).toBe(200);
  await docWhere(stack.redis, id, (d) => d.status === 'success');

  const expected = entry({
    action: 'retry',
    by: 'test-operator',
    role: 'operator',
    note: 'title was too long',
    attempt: 1,
  });
  expect((await read(id)).decisions).toEqual([expected]);
  const { updates } = await historyInputs(id);
  expect(updates).toEqual([
    expect.objectContaining({
      action: 'retry',
      audit: {
        by: { name: 'test-operator', role: 'operator' },
        at: expect.stringMatching(ISO),
        note: 'title was too long',
      },
    }),
  ]);
});

test('resolve and discard are recorded with their person and note', async () => {
  const resolved = await publish(stack, publishBody({ options: { behave: 'unconfirmed' } }));
  const discarded = await publish(stack, publishBody({ options: { behave: 'unconfirmed' } }));
  await docWhere(stack.redis, resolved, (d) => d.review?.open === true);
  await docWhere(stack.redis, discarded, (d) => d.review?.open === true);
  expect(
    (
      await stack
        .api('operator')
        .post(`/api/v1/reviews/${resolved}/resolve`)
        .send({ url: 'https://example.com/p/1', note: 'it was live' })
    ).status,
  ).toBe(200);
  expect((await stack.api('operator').post(`/api/v1/reviews/${discarded}/discard`).send({})).status).toBe(200);
  await docWhere(stack.redis, resolved, (d) => d.status === 'success');
  await docWhere(stack.redis, discarded, (d) => d.review?.open === false);

  expect((await read(resolved)).decisions).toEqual([
    entry({ action: 'resolve', by: 'test-operator', role: 'operator', note: 'it was live', attempt: 1 }),
  ]);
  expect((await read(discarded)).decisions).toEqual([
    entry({ action: 'discard', by: 'test-operator', role: 'operator', attempt: 1 }),
  ]);
});

test('reschedule and cancel (publisher): both in the decisions, the cancel as a signal ahead of the cancel request', async () => {
  const publishAt = new Date(Date.now() + 86_400_000).toISOString();
  const id = await publish(stack, publishBody({ publishAt }));
  await docWhere(stack.redis, id, (d) => d.scheduled_for !== null);
  const later = new Date(Date.now() + 2 * 86_400_000).toISOString();
  const moved = await stack
    .api('publisher')
    .post(`/api/v1/tasks/${id}/reschedule`)
    .send({ publishAt: later, note: 'launch moved' });
  expect(moved.status).toBe(200);
  const cancelled = await stack.api('publisher').post(`/api/v1/tasks/${id}/cancel`).send({ note: 'campaign off' });
  expect(cancelled.status).toBe(200);

  const doc = await docWhere(stack.redis, id, (d) => d.status === 'cancelled' && (d.decisions?.length ?? 0) === 2);
  expect(doc.decisions).toEqual([
    entry({ action: 'reschedule', by: 'test-publisher', role: 'publisher', note: 'launch moved', publishAt: later }),
    entry({ action: 'cancel', by: 'test-publisher', role: 'publisher', note: 'campaign off' }),
  ]);
  const { signals } = await historyInputs(id);
  expect(signals).toContainEqual({
    name: 'cancelRequested',
    args: [{ by: { name: 'test-publisher', role: 'publisher' }, at: expect.stringMatching(ISO), note: 'campaign off' }],
  });
});

test("a forced delete names the admin and the note in the run's terminate reason (the document is gone)", async () => {
  const id = await publish(stack, publishBody({ accountId: 'scr-2', options: { behave: 'hang' } }));
  await docWhere(stack.redis, id, (d) => d.status === 'running');
  const res = await stack
    .api('admin')
    .delete(`/api/v1/tasks/${id}`)
    .query({ force: 'true', note: 'duplicate of another post' });
  expect(res.status).toBe(200);
  expect((await stack.api('viewer').get(`/api/v1/tasks/${id}`)).status).toBe(404);
  const { terminations } = await historyInputs(id);
  expect(terminations).toEqual(['deleted with force=true by test-admin (admin): duplicate of another post']);
});

test('a note longer than 2000 characters is a 400 naming the field, and nothing is recorded', async () => {
  const id = await publish(stack, publishBody({ options: { behave: 'reject-first' } }));
  await docWhere(stack.redis, id, (d) => d.review?.open === true);
  const res = await stack
    .api('publisher')
    .post(`/api/v1/tasks/${id}/cancel`)
    .send({ note: 'n'.repeat(2001) });
  expect([res.status, res.body.error.details?.[0]?.field]).toEqual([400, 'body.note']);
  expect((await read(id)).decisions).toBeUndefined();
  expect((await stack.api('operator').post(`/api/v1/reviews/${id}/discard`).send({})).status).toBe(200);
});
