import { converge, StopWaiting, waitUntil } from './polling';

/** The error a wait fails with (it must fail). */
const failure = (waiting: Promise<unknown>) =>
  waiting.then(
    () => {
      throw new Error('expected the wait to fail');
    },
    (e: unknown) => e as Error,
  );

describe('waitUntil', () => {
  test('returns the first truthy value the check gives', async () => {
    let n = 0;
    const got = await waitUntil('n to reach 3', () => (++n >= 3 ? { n } : false), { intervalMs: 1 });
    expect(got).toEqual({ n: 3 });
  });

  test('a timeout names what it waited for, the time, and the last value', async () => {
    let n = 0;
    const err = await failure(waitUntil('the answer', () => (n++, null), { timeoutMs: 100, intervalMs: 10 }));
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe('the answer: not reached in 100 ms (last value: null)');
    expect(n).toBeGreaterThan(1);
  });

  test('a check that throws is tried again, and its last error is in the message', async () => {
    let n = 0;
    const check = () => {
      throw new Error(`refused ${++n}`);
    };
    const err = await failure(waitUntil('a server', check, { timeoutMs: 100, intervalMs: 10 }));
    expect(err.message).toBe(`a server: not reached in 100 ms (last error: Error: refused ${n})`);
    expect(n).toBeGreaterThan(1);
  });

  test('StopWaiting ends the wait at the first check, with that error', async () => {
    let n = 0;
    const check = () => {
      n++;
      throw new StopWaiting('exited with code 1');
    };
    const err = await failure(waitUntil('a process that exited', check, { timeoutMs: 5000, intervalMs: 10 }));
    expect(err).toBeInstanceOf(StopWaiting);
    expect(err.message).toBe('exited with code 1');
    expect(n).toBe(1);
  });
});

describe('converge', () => {
  test('retries until the assertions pass and returns what the function returns', async () => {
    let n = 0;
    const got = await converge(
      async () => {
        n++;
        expect(n).toBeGreaterThanOrEqual(3);
        return 0; // a falsy value is still a success: done means "did not throw"
      },
      { intervalMs: 1 },
    );
    expect(got).toBe(0);
    expect(n).toBe(3);
  });

  test('on timeout it rethrows the last assertion error itself', async () => {
    let n = 0;
    const assertions = async () => {
      n++;
      expect({ n }).toEqual({ n: -1 });
    };
    const err = await failure(converge(assertions, { timeoutMs: 100, intervalMs: 10 }));
    expect(err.message).toContain('toEqual');
    expect(err.message).toContain(`"n": ${n}`);
    expect(n).toBeGreaterThan(1);
  });
});
