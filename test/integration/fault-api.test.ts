/**
 * Fault injection, API (issue 6 §1): `node lib/api.js` killed with SIGKILL while clients submit publishes with
 * Idempotency-Keys, then started again; the clients retry the same keys. Real processes: dev server,
 * redis-server (AOF), `node lib/worker.js`, `node lib/api.js`; the platform is a local webhook endpoint.
 */
import { idempotentId } from '../../src/service/publish';
import { converge, sleep } from '../helpers/polling';
import {
  expectProjectionMatchesTruth,
  expectRequestsWithinAttempts,
  expectWholeProjectionMatchesTemporal,
  isSettled,
  printFigures,
  useFaultStack,
  storedDocs,
  tally,
  type FaultStack,
  type PubflowProcess,
} from './fault-helpers';

let stack: FaultStack;

useFaultStack({ name: 'api', accounts: 6 }, (s) => (stack = s));

interface Submission {
  key: string;
  /** HTTP status of every answer, in order. */
  answers: number[];
  taskIds: Set<string>;
  /** Tries that got no answer (connection refused or reset). */
  networkErrors: number;
}

test('API killed mid-traffic and restarted: clients that retry with the same Idempotency-Key get one task each', async () => {
  // Arrange: one worker, the API, and 4 clients submitting 16 publishes with their own Idempotency-Keys.
  const { taskQueue } = stack;
  const [worker, firstApi] = await Promise.all([
    stack.startWorker('api-w1', { PUBFLOW_WORKER_CONCURRENCY: '3' }),
    stack.startApi('api-1'),
  ]);
  let api: PubflowProcess = firstApi;
  const { endpoint, redis, client } = stack;
  endpoint.behaviour = () => ({ status: 200, afterMs: 100 });
  const base = `http://127.0.0.1:${stack.apiPort}`;
  const total = 16;
  const tag = Date.now().toString(36);
  const subs: Submission[] = Array.from({ length: total }, (_, i) => ({
    key: `fault-api-${tag}-${i}`,
    answers: [],
    taskIds: new Set(),
    networkErrors: 0,
  }));
  const publishBody = (i: number) =>
    JSON.stringify({
      platform: 'webhook',
      accountId: stack.accountIds[i % stack.accountIds.length],
      video: { path: stack.media[i % stack.media.length] },
      title: `api item ${i}`,
    });
  let inFlight = 0;

  /** A careful client: retries the same key until it has an answer it can trust (200 or 202). */
  const submit = async (i: number): Promise<void> => {
    const sub = subs[i]!;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      inFlight++;
      try {
        const res = await fetch(`${base}/api/v1/publish`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'Idempotency-Key': sub.key,
            ...stack.keys.header('publisher'),
          },
          body: publishBody(i),
          signal: AbortSignal.timeout(10_000),
        });
        sub.answers.push(res.status);
        const body = (await res.json()) as { taskId?: string };
        if (res.status === 200 || res.status === 202) {
          sub.taskIds.add(body.taskId!);
          return;
        }
        if (res.status < 500) throw new Error(`unexpected ${res.status}: ${JSON.stringify(body)}`);
      } catch (err) {
        if (err instanceof Error && err.message.startsWith('unexpected')) throw err;
        sub.networkErrors++;
      } finally {
        inFlight--;
      }
      await sleep(100);
    }
    throw new Error(`${sub.key}: no answer within 60 s`);
  };
  let next = 0;
  const lane = async () => {
    while (next < total) await submit(next++);
  };

  // Act: kill -9 the API once a few publishes are in, while others are on the wire; start it again.
  const lanes = Promise.all(Array.from({ length: 4 }, lane));
  lanes.catch(() => undefined); // awaited below; a client's failure must not surface as an unhandled rejection first
  await stack.waitUntil('5 publishes accepted', () => subs.filter((s) => s.taskIds.size > 0).length >= 5, {
    timeoutMs: 30_000,
    intervalMs: 2,
  });
  const inFlightAtKill = inFlight;
  const acceptedBeforeKill = subs.filter((s) => s.taskIds.size > 0).length;
  const killedAt = Date.now();
  api.signal('SIGKILL');
  await api.exited;
  await sleep(500); // clients hit a closed port meanwhile
  api = await stack.startApi('api-2');
  const apiDownMs = Date.now() - killedAt;
  await lanes;
  // A client that lost track of what it sent submits every key once more.
  const resubmitted = await Promise.all(
    subs.map(async (s, i) => {
      const res = await fetch(`${base}/api/v1/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'Idempotency-Key': s.key, ...stack.keys.header('publisher') },
        body: publishBody(i),
      });
      return { status: res.status, taskId: ((await res.json()) as { taskId: string }).taskId };
    }),
  );

  // Assert: one task per key, everywhere.
  const ids = subs.map((s) => idempotentId('pub', s.key));
  subs.forEach((s, i) => {
    expect({ key: s.key, taskIds: [...s.taskIds] }).toEqual({ key: s.key, taskIds: [ids[i]] });
    expect(s.answers.filter((a) => a === 202).length).toBeLessThanOrEqual(1);
    expect(resubmitted[i]).toEqual({ status: 200, taskId: ids[i] });
  });
  const query = `WorkflowType = 'publishSingle' AND TaskQueue = '${taskQueue}'`;
  await converge(async () => expect((await client.workflow.count(query)).count).toBe(total), {
    timeoutMs: 30_000,
  });
  const listed: string[] = [];
  for await (const e of client.workflow.list({ query })) listed.push(e.workflowId);
  expect(listed.sort()).toEqual([...ids].sort());
  await stack.waitUntil(
    'every task to publish',
    async () => (await storedDocs(redis, ids)).every((d) => d !== null && isSettled(d)),
    { timeoutMs: 60_000 },
  );
  const truth = await converge(() => expectProjectionMatchesTruth(stack, { ids }));
  for (const id of ids) expect(truth.get(id)).toMatchObject({ status: 'success', attempt: 1 });
  const counted = expectRequestsWithinAttempts(endpoint, truth);
  for (const id of ids) expect(endpoint.requestsFor(id)).toHaveLength(1);

  const answers = subs.flatMap((s) => s.answers);
  await converge(() => expectWholeProjectionMatchesTemporal(stack));
  printFigures('API restarted (kill -9)', {
    tasksSubmitted: total,
    acceptedBeforeKill,
    httpRequestsInFlightAtKill: inFlightAtKill,
    apiDownMs,
    clientTries: answers.length + subs.reduce((n, s) => n + s.networkErrors, 0),
    networkErrors: subs.reduce((n, s) => n + s.networkErrors, 0),
    answered202: answers.filter((a) => a === 202).length,
    answered200: answers.filter((a) => a === 200).length,
    answered5xx: answers.filter((a) => a >= 500).length,
    resubmittedAll200: resubmitted.every((r) => r.status === 200),
    workflows: listed.length,
    ended: tally(truth.values()),
    webhookRequests: counted.requests,
    attemptsAllowed: counted.attemptsAllowed,
    duplicateKeys: endpoint.duplicateKeys().length,
  });
  const exits = await Promise.all([api.stop(), worker.stop()]);
  expect(exits.map((e) => e.code)).toEqual([0, 0]);
}, 150_000);
