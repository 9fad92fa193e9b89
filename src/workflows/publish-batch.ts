/**
 * publishBatch: one campaign, many publishes. Fans out one `publishSingle` child per item through a sliding
 * window, keeps the batch document's counts true from the children's own status reports, and stays inside
 * Temporal's limits at any size with continue-as-new.
 *
 * The parent never awaits a child's result: children are abandoned across continue-as-new, so their results
 * would land in a closed run. Each child signals `childStatusSignal` after every projected version instead, and
 * the batch keeps the highest version per item. The batch stays open until every child is terminally settled,
 * so a review decided days later still moves the counts (and the batch's status) on.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  allHandlersFinished,
  CancellationScope,
  ChildWorkflowCancellationType,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  cancelRequestedSignal,
  childStatusSignal,
  taskStateQuery,
  type ChildStatusReport,
} from '../shared/definitions';
import { DEFAULT_POLICY, type PublishPolicy } from '../shared/policy';
import { DEFAULT_PRIORITY, priorityKey } from '../shared/priority';
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes';
import { DOC_MEMO_KEY, initialBatchDoc, initialTaskDoc } from '../shared/task-doc';
import {
  decisionRecord,
  withDecision,
  type BatchCounts,
  type PublishRequest,
  type TaskDoc,
  type TaskStatus,
} from '../shared/types';
import {
  TASK_PROTOCOL,
  WORKFLOW_TYPES,
  type BatchState,
  type PublishBatchInput,
  type PublishBatchOutput,
} from '../shared/workflow-contracts';
import { projectionBackoffMs, tryWriteDoc, writeDoc } from './projector';
import type { publishSingle } from './publish-single';

/**
 * Per-item codes. Settled (frees a window slot): SUCCESS, IN_REVIEW, FAILED, CANCELLED.
 * Terminal (the child's workflow has closed): SUCCESS, FAILED (review closed), CANCELLED.
 */
const CODE = {
  NOT_STARTED: 0,
  PENDING: 1, // started; no report yet, pending, or waiting for an automatic retry
  RUNNING: 2,
  SUCCESS: 3,
  IN_REVIEW: 4, // failed with an open review: settled-failed until a person decides
  FAILED: 5, // failed, review closed (discarded or expired)
  CANCELLED: 6,
} as const;
type Code = (typeof CODE)[keyof typeof CODE];
const CODE_COUNT = 7;
const TERMINAL = (c: number) => c === CODE.SUCCESS || c === CODE.FAILED || c === CODE.CANCELLED;

/** Keeps a run's pending children far below Temporal's 2,000 (the API caps concurrency at 1,000). */
const MAX_STARTS_PER_RUN = 1000;
/**
 * Protocol 4: half as many, so a run's history stays shorter (at most 3,097 events against 4,204 in a 2,000-item
 * bench run: the reports of the previous run's children land in it too). Its continue-as-new is refused
 * (UNHANDLED_COMMAND) whenever reports arrive meanwhile, and the worker then replays the whole run while the children
 * keep reporting: over 5 s at 4,200 events on 2 cores, long enough for 100 buffered events (FORCE_CLOSE_COMMAND) or
 * the 10 s workflow-task timeout (docs/benchmarks.md, 2026-12-07).
 */
const MAX_STARTS_PER_RUN_4 = 500;
/** Belt and braces for servers that never suggest continue-as-new (the hard limit is 51,200 events). */
const MAX_HISTORY_EVENTS = 10_000;
/** From this protocol the batch writes its document by regular activity (tryWriteDoc with byActivity in projector.ts). */
export const REMOTE_BATCH_WRITES_PROTOCOL = 6;
/** At most one batch-document write per second of workflow time; the last state is always written. */
const PROJECTION_INTERVAL_MS = 1000;
/** How long a cancelled batch waits for its children to confirm their own cancellation. */
const CANCEL_CONFIRM_MS = 60_000;
/** External cancel requests sent together, so a huge batch never builds one enormous workflow task. */
const CANCEL_CHUNK = 500;

function codeOf(r: ChildStatusReport): Code {
  switch (r.status) {
    case 'running':
      return CODE.RUNNING;
    case 'success':
      return CODE.SUCCESS;
    case 'failed':
      return r.inReview ? CODE.IN_REVIEW : CODE.FAILED;
    case 'cancelled':
      return CODE.CANCELLED;
    default: // pending, retry
      return CODE.PENDING;
  }
}

/** '0'..'6' per item; built in slices, as spreading 100,000 arguments would overflow the stack. */
function encodeCodes(codes: Uint8Array): string {
  let out = '';
  for (let k = 0; k < codes.length; k += 8192) {
    out += String.fromCharCode(...Array.from(codes.subarray(k, k + 8192), (c) => c + 48));
  }
  return out;
}

export function policyFor(policies: Record<string, PublishPolicy>, r: PublishRequest): PublishPolicy {
  return policies[`${r.platform}/${r.accountId}`] ?? policies[r.platform] ?? DEFAULT_POLICY;
}

export async function publishBatch(input: PublishBatchInput): Promise<PublishBatchOutput> {
  const info = workflowInfo();
  const batchId = info.workflowId;
  const now = () => new Date().toISOString();
  const prior = input.state;
  const total = prior?.total ?? input.items.length;
  const offset = prior?.offset ?? 0;
  const concurrency = Math.max(1, Math.floor(input.concurrency));
  const batchPriority = input.priority ?? DEFAULT_PRIORITY;

  // Per-item state, and how many items hold each code (so nothing below ever scans all items but cancel).
  const codes = new Uint8Array(total);
  const byCode = new Array<number>(CODE_COUNT).fill(0);
  const versions = new Map<number, number>();
  if (prior) {
    for (let i = 0; i < total; i++) codes[i] = prior.codes.charCodeAt(i) - 48;
    for (const [k, v] of Object.entries(prior.versions)) versions.set(Number(k), v);
  }
  for (let i = 0; i < total; i++) byCode[codes[i]!]!++;
  const n = (c: Code) => byCode[c]!;

  let next = offset; // the next item to start
  let startsInFlight = 0;
  let startedThisRun = 0;
  let eventsThisRun = 0;
  let cancelled = false;
  let completedAt = prior?.completedAt ?? null;
  let lastError = prior?.lastError ?? null;
  const createdAt = prior?.createdAt ?? input.createdAt ?? info.startTime.toISOString();
  const startedAt = prior?.startedAt ?? info.runStartTime.toISOString();

  const counts = (): BatchCounts => ({
    total,
    pending: n(CODE.NOT_STARTED) + n(CODE.PENDING),
    running: n(CODE.RUNNING),
    success: n(CODE.SUCCESS),
    failed: n(CODE.IN_REVIEW) + n(CODE.FAILED),
    cancelled: n(CODE.CANCELLED),
  });
  const inFlight = () => n(CODE.PENDING) + n(CODE.RUNNING) + startsInFlight;
  const allSettled = () => n(CODE.NOT_STARTED) + n(CODE.PENDING) + n(CODE.RUNNING) === 0 && startsInFlight === 0;
  const allTerminal = () => allSettled() && n(CODE.IN_REVIEW) === 0;

  /** Issue 4 §3: running while any child is unsettled; success only if every child succeeded. */
  const status = (): TaskStatus => {
    if (cancelled) return 'cancelled';
    if (!allSettled()) return 'running';
    return n(CODE.SUCCESS) === total ? 'success' : 'failed';
  };

  const doc: TaskDoc = {
    ...initialBatchDoc({
      taskId: batchId,
      total,
      concurrency,
      spacing: input.spacing,
      priority: batchPriority,
      createdAt,
      runId: info.runId,
    }),
    version: prior?.docVersion ?? 1,
    started_at: startedAt,
    ...(prior?.decisions?.length ? { decisions: prior.decisions } : {}),
  };
  /** The document as of now; the version is the last one assigned (bumped only when a write is made). */
  const currentDoc = (): TaskDoc => {
    const s = status();
    const c = counts();
    const settled = c.success + c.failed + c.cancelled;
    const unsuccessful = c.failed + c.cancelled;
    return {
      ...doc,
      status: s,
      counts: c,
      completed_at: s === 'running' ? null : completedAt,
      progress: {
        percent: total === 0 ? 100 : Math.floor((settled * 100) / total),
        stage: cancelled
          ? 'cancelled'
          : next < total
            ? 'dispatching'
            : s === 'running'
              ? 'waiting'
              : n(CODE.IN_REVIEW) > 0
                ? 'in_review'
                : 'done',
      },
      error_message:
        s === 'failed' ? `${unsuccessful} of ${total} children did not succeed` : s === 'running' ? lastError : null,
    };
  };

  // The projection: a background loop, so a slow or absent Redis never holds up dispatch.
  let changes = 0;
  let written = 0;
  let lastWriteAt = 0;
  let projectedStatus: TaskStatus | undefined;
  let writeFailures = 0;
  const changed = () => {
    changes++;
    const s = status();
    if (s !== 'running') completedAt ??= now();
    else completedAt = null;
  };
  const projectionLoop = async () => {
    for (;;) {
      await condition(() => changes > written);
      // A plain timer, never cancelled (a flush just waits it out, at most one interval). Cancelling a short timer
      // races its firing; the time-skipping test server then strands the run (temporalio/sdk-java#3088).
      const due = lastWriteAt + PROJECTION_INTERVAL_MS;
      if (due > Date.now()) {
        // The timer alone is not enough: during a burst of child starts the dev server fired this 1 s timer 132 s
        // late, and the document stood still while hundreds of children finished. Any workflow task that runs
        // past the deadline (a child's report, a start) writes as well; the timer covers a batch gone quiet.
        let fired = false;
        void sleep(due - Date.now()).then(() => (fired = true));
        await condition(() => fired || Date.now() >= due);
      }
      const upTo = changes;
      doc.version++;
      const snapshot = { ...currentDoc(), updated_at: now() };
      if (snapshot.status !== projectedStatus) {
        upsertSearchAttributes([{ key: SEARCH_ATTRIBUTE_KEYS.status, value: snapshot.status }]);
        projectedStatus = snapshot.status;
      }
      if ((input.protocol ?? 1) >= 2) {
        // As a task's projector (projector.ts): bounded tries, then a durable wait, so a Redis outage holds no
        // workflow task open and the children's reports and starts go on. The next write takes the newest counts.
        const ok = await tryWriteDoc(snapshot, {
          byActivity: (input.protocol ?? 1) >= REMOTE_BATCH_WRITES_PROTOCOL,
        });
        if (!ok) {
          await sleep(projectionBackoffMs(writeFailures++));
          continue;
        }
        writeFailures = 0;
      } else {
        await writeDoc(snapshot);
      }
      written = upTo;
      lastWriteAt = Date.now();
    }
  };
  const flush = () => condition(() => written >= changes);

  const setCode = (i: number, c: Code) => {
    const old = codes[i]!;
    if (old === c) return;
    byCode[old]!--;
    byCode[c]!++;
    codes[i] = c;
    if (TERMINAL(c)) versions.delete(i);
    changed();
  };

  setHandler(taskStateQuery, () => currentDoc());
  // Who cancelled the batch (a cancel request carries no arguments; the API sends this just before it).
  setHandler(cancelRequestedSignal, (audit) => {
    doc.decisions = withDecision(doc.decisions, decisionRecord('cancel', audit, new Date().toISOString()));
    changed();
  });
  setHandler(childStatusSignal, (r) => {
    eventsThisRun++;
    const i = r.index;
    if (!Number.isInteger(i) || i < 0 || i >= total) return;
    // A terminal child's workflow has closed: nothing it sent earlier may move it back.
    if (TERMINAL(codes[i]!)) return;
    if (r.version <= (versions.get(i) ?? 0)) return; // duplicate or out of order
    versions.set(i, r.version);
    setCode(i, codeOf(r));
  });

  const startOne = (i: number) => {
    const request = input.items[i - offset]!;
    startsInFlight++;
    startedThisRun++;
    eventsThisRun++;
    // Non-cancellable: a start in flight always completes, so on cancel the batch knows every child that exists
    // and cancels it explicitly (children of earlier runs are beyond the reach of this run's scope anyway).
    void CancellationScope.nonCancellable(() =>
      startChild<typeof publishSingle>(WORKFLOW_TYPES.publishSingle, {
        workflowId: `${batchId}-${i}`,
        args: [
          {
            request,
            policy: policyFor(input.policies, request),
            parentTaskId: batchId,
            index: i,
            createdAt,
            protocol: TASK_PROTOCOL,
          },
        ],
        // The child's first memo, as the API gives a single's (see DOC_MEMO_KEY).
        memo: {
          [DOC_MEMO_KEY]: initialTaskDoc({
            taskId: `${batchId}-${i}`,
            request,
            parentTaskId: batchId,
            createdAt,
            runId: null,
          }),
        },
        // The batch continues as new while children run; ABANDON lets them outlive each run of the parent.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        cancellationType: ChildWorkflowCancellationType.ABANDON,
        // One item, one child, ever: a duplicate start is refused rather than publishing twice.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        priority: { priorityKey: priorityKey(request.priority) },
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTE_KEYS.status, value: 'pending' },
          { key: SEARCH_ATTRIBUTE_KEYS.type, value: 'publish' },
          { key: SEARCH_ATTRIBUTE_KEYS.platform, value: request.platform },
          { key: SEARCH_ATTRIBUTE_KEYS.account, value: request.accountId },
          { key: SEARCH_ATTRIBUTE_KEYS.parent, value: batchId },
        ],
      }),
    )
      .then(
        () => {
          if (codes[i] === CODE.NOT_STARTED) setCode(i, CODE.PENDING);
        },
        (err: unknown) => {
          if (err instanceof WorkflowExecutionAlreadyStartedError) {
            // Started before (this id is ours alone): it reports to us like any other child.
            if (codes[i] === CODE.NOT_STARTED) setCode(i, CODE.PENDING);
            return;
          }
          lastError = `item ${i} could not be started: ${err instanceof Error ? err.message : String(err)}`;
          if (codes[i] === CODE.NOT_STARTED) setCode(i, CODE.FAILED);
        },
      )
      .finally(() => {
        startsInFlight--;
      });
  };

  /** Deterministic: workflow Math.random is seeded per run, and each item's jitter is drawn once. */
  let due: { index: number; at: number } | undefined;
  const notBefore = (i: number): number => {
    const s = input.spacing;
    if (!s || (s.intervalSeconds <= 0 && s.jitterSeconds <= 0)) return 0;
    if (due?.index !== i)
      due = {
        index: i,
        at: Date.parse(startedAt) + i * s.intervalSeconds * 1000 + Math.random() * s.jitterSeconds * 1000,
      };
    return due.at;
  };

  const continueAsNewDue = () => {
    const wi = workflowInfo();
    return (
      wi.continueAsNewSuggested ||
      wi.historyLength >= MAX_HISTORY_EVENTS ||
      startedThisRun >= ((input.protocol ?? 1) >= 4 ? MAX_STARTS_PER_RUN_4 : MAX_STARTS_PER_RUN) ||
      (input.continueAsNewAfter !== undefined && eventsThisRun >= input.continueAsNewAfter)
    );
  };
  const canStart = () => next < total && inFlight() < concurrency && !continueAsNewDue();

  doc.run_id = info.runId;
  changed(); // running (or a new run id after continue-as-new)
  void CancellationScope.nonCancellable(projectionLoop);

  try {
    for (;;) {
      while (canStart()) {
        const at = notBefore(next);
        if (at > Date.now()) await sleep(at - Date.now());
        if (canStart()) startOne(next++);
      }
      if (allTerminal()) break;
      if (continueAsNewDue()) {
        await condition(() => startsInFlight === 0);
        await condition(allHandlersFinished);
        const state: BatchState = {
          total,
          offset: next,
          codes: encodeCodes(codes),
          versions: Object.fromEntries(versions),
          docVersion: doc.version,
          createdAt,
          startedAt,
          completedAt,
          lastError,
          runs: (prior?.runs ?? 1) + 1,
          ...(doc.decisions?.length ? { decisions: doc.decisions } : {}),
        };
        await continueAsNew<typeof publishBatch>({ ...input, items: input.items.slice(next - offset), state });
      }
      await condition(() => canStart() || allTerminal() || continueAsNewDue());
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await CancellationScope.nonCancellable(async () => {
      cancelled = true;
      await condition(() => startsInFlight === 0);
      // Items not started yet never start: they count as cancelled at once.
      for (let i = next; i < total; i++) if (codes[i] === CODE.NOT_STARTED) setCode(i, CODE.CANCELLED);
      const open: number[] = [];
      for (let i = 0; i < total; i++) if (!TERMINAL(codes[i]!)) open.push(i);
      for (let k = 0; k < open.length; k += CANCEL_CHUNK) {
        await Promise.all(
          open.slice(k, k + CANCEL_CHUNK).map(
            (i) =>
              getExternalWorkflowHandle(`${batchId}-${i}`)
                .cancel()
                .catch(() => undefined), // it closed meanwhile; its own report says how
          ),
        );
      }
      // Children confirm through their own reports; whoever has not within the grace period is counted cancelled
      // (its own document still tells the truth).
      // A flag set by a timer that is never cancelled, rather than condition(fn, timeout): see the projection loop.
      let graceOver = false;
      void sleep(CANCEL_CONFIRM_MS).then(() => (graceOver = true));
      await condition(() => graceOver || open.every((i) => TERMINAL(codes[i]!)));
      for (const i of open) if (!TERMINAL(codes[i]!)) setCode(i, CODE.CANCELLED);
      changed();
      await flush();
    });
    throw err;
  }

  changed();
  await flush();
  await condition(allHandlersFinished);
  return { taskId: batchId, status: status(), counts: counts() };
}
