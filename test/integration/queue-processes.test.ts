/**
 * Queue semantics across worker PROCESSES (issue "Queue semantics" §3-4): three `node lib/worker.js` processes poll
 * the same task queues of a dev server, and the platform is a local webhook endpoint that holds each upload for a
 * while, so any overlap would be seen. One upload at a time per account, and the platform-wide cap, must hold across
 * the processes, not just within one.
 */
import {
  childIds,
  isSettled,
  publishRequest,
  startBatch,
  useFaultStack,
  storedDocs,
  type FaultStack,
} from './fault-helpers';
import type { ReceivedRequest } from '../helpers/webhook-receiver';

let stack: FaultStack;
const HOLD_MS = 300;

useFaultStack({ name: 'queue', accounts: 4 }, async (s) => {
  stack = s;
  // Two upload slots per process: six in all, more than any limit below.
  const over = { PUBFLOW_WORKER_CONCURRENCY: '2' };
  await Promise.all(['q-w1', 'q-w2', 'q-w3'].map((name) => s.startWorker(name, over)));
  s.endpoint.behaviour = () => ({ status: 200, afterMs: HOLD_MS });
});

/** The most requests the endpoint had open at once, over those that `match`. */
function maxOverlap(requests: ReceivedRequest[], match: (r: ReceivedRequest) => boolean = () => true): number {
  const edges = requests
    .filter(match)
    .flatMap((r) => [
      { at: r.arrivedAt, d: 1 },
      { at: r.answeredAt ?? r.abortedAt ?? Number.MAX_SAFE_INTEGER, d: -1 },
    ])
    // An answer and the next request at the same millisecond: the answer first.
    .sort((a, b) => a.at - b.at || a.d - b.d);
  let open = 0;
  let max = 0;
  for (const e of edges) max = Math.max(max, (open += e.d));
  return max;
}

async function runBatch(n: number, accounts: number, policyEnv?: Record<string, string>) {
  const first = stack.endpoint.requests.length;
  const items = Array.from({ length: n }, (_, i) =>
    publishRequest(stack, i, { accountId: stack.accountIds[i % accounts]! }),
  );
  const batch = await startBatch(stack, { taskQueue: stack.taskQueue, items, concurrency: n, policyEnv });
  const out = await batch.result();
  expect(out.counts).toMatchObject({ total: n, success: n });
  const ids = childIds(batch.workflowId, n);
  await stack.waitUntil('every child document settled in Redis', async () =>
    (await storedDocs(stack.redis, ids)).every((d) => d !== null && isSettled(d)),
  );
  return stack.endpoint.requests.slice(first);
}

test('three worker processes, three accounts: never two uploads at once on an account, the accounts in parallel', async () => {
  const requests = await runBatch(18, 3);

  expect(requests).toHaveLength(18);
  expect(stack.endpoint.duplicateKeys()).toEqual([]);
  for (const account of stack.accountIds.slice(0, 3)) {
    expect({ account, uploads: requests.filter((r) => r.accountId === account).length }).toEqual({
      account,
      uploads: 6,
    });
    expect({ account, maxAtOnce: maxOverlap(requests, (r) => r.accountId === account) }).toEqual({
      account,
      maxAtOnce: 1,
    });
  }
  // The accounts did run side by side (3 at once is usual; 2 already shows it).
  expect(maxOverlap(requests)).toBeGreaterThanOrEqual(2);
  expect(maxOverlap(requests)).toBeLessThanOrEqual(3);
});

test('the platform cap (PUBFLOW_PLATFORM_LIMITS maxConcurrent 2) holds across the processes, with four accounts ready', async () => {
  const requests = await runBatch(16, 4, {
    PUBFLOW_PLATFORM_LIMITS: JSON.stringify({ webhook: { maxConcurrent: 2 } }),
  });

  expect(requests).toHaveLength(16);
  expect(maxOverlap(requests)).toBe(2);
  for (const account of stack.accountIds)
    expect({ account, maxAtOnce: maxOverlap(requests, (r) => r.accountId === account) }).toEqual({
      account,
      maxAtOnce: 1,
    });
});
