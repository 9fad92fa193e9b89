/**
 * The one way tests wait for a state reached by background work (real time). `waitUntil` waits for a check to return
 * a truthy value; `converge` waits for assertions to pass. Both poll through `poll`, so they differ only in what
 * counts as done and in what a timeout reports.
 */

/** Thrown by a check to stop waiting at once (a process that was to become ready has exited): no point polling on. */
export class StopWaiting extends Error {
  override name = 'StopWaiting';
}

export interface PollOptions {
  /** How long to wait, in ms. */
  timeoutMs?: number;
  /** Pause between checks, in ms. */
  intervalMs?: number;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Attempt<T> = { done: true; value: T } | { done: false; last: { value: unknown } | { error: unknown } };

/** Try `attempt` until it is done or the deadline has passed (it runs at least once, and never starts past the deadline); returns its last try. */
async function poll<T>(attempt: () => Promise<Attempt<T>>, timeoutMs: number, intervalMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await attempt();
    if (got.done || Date.now() >= deadline) return got;
    await sleep(intervalMs);
    if (Date.now() >= deadline) return got;
  }
}

/**
 * Poll until `check` returns a truthy value, and return it. A check that throws is tried again (the error is kept
 * for the message), except for `StopWaiting`. On timeout the error names `what`, the time waited, and the last value
 * or error the check gave.
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 20_000, intervalMs = 50 }: PollOptions = {},
): Promise<T> {
  const got = await poll<T>(
    async () => {
      try {
        const value = await check();
        return value ? { done: true, value } : { done: false, last: { value } };
      } catch (error) {
        if (error instanceof StopWaiting) throw error;
        return { done: false, last: { error } };
      }
    },
    timeoutMs,
    intervalMs,
  );
  if (got.done) return got.value;
  const last = 'error' in got.last ? `last error: ${String(got.last.error)}` : `last value: ${show(got.last.value)}`;
  throw new Error(`${what}: not reached in ${timeoutMs} ms (${last})`);
}

/**
 * Run assertions until they pass, and return what `fn` returns. Unlike `waitUntil`, done means "did not throw" (any
 * value, falsy too), and a timeout rethrows the assertion's own error, so jest shows its diff of what was there.
 */
export async function converge<T>(
  fn: () => Promise<T>,
  { timeoutMs = 45_000, intervalMs = 250 }: PollOptions = {},
): Promise<T> {
  const got = await poll<T>(
    async () => {
      try {
        return { done: true, value: await fn() };
      } catch (error) {
        return { done: false, last: { error } };
      }
    },
    timeoutMs,
    intervalMs,
  );
  if (got.done) return got.value;
  throw (got.last as { error: unknown }).error;
}

function show(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(value);
  }
}
