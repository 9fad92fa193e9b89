import type { DriverResult, PlatformDriver, PublishContext } from '../../src/platforms/types';

/**
 * A platform for workflow tests: the outside world, scripted per test. Each call is recorded; the test decides
 * how each attempt ends by pushing behaviours (or setting a default).
 */
export class ScriptedDriver implements PlatformDriver {
  readonly platform = 'scripted';
  readonly calls: PublishContext[] = [];
  readonly aborted: PublishContext[] = [];
  private script: Array<(ctx: PublishContext) => Promise<DriverResult>> = [];
  fallback: (ctx: PublishContext) => Promise<DriverResult> = async (ctx) => ({
    postId: `post-${ctx.taskId}-${ctx.attempt}`,
    url: `https://example.invalid/p/${ctx.taskId}/${ctx.attempt}`,
  });

  /** Queue the behaviour of the next call(s). */
  then(...steps: Array<(ctx: PublishContext) => Promise<DriverResult>>): this {
    this.script.push(...steps);
    return this;
  }

  async publish(ctx: PublishContext): Promise<DriverResult> {
    this.calls.push(ctx);
    ctx.signal.addEventListener('abort', () => this.aborted.push(ctx), { once: true });
    const step = this.script.shift() ?? this.fallback;
    return step(ctx);
  }

  callsFor(taskId: string): PublishContext[] {
    return this.calls.filter((c) => c.taskId === taskId);
  }
}

/** A step that never finishes until the task is cancelled, then rejects like a real aborted request. */
export const hangUntilAborted = (ctx: PublishContext): Promise<DriverResult> =>
  new Promise((_resolve, reject) => {
    const fail = () => {
      const err = new Error('aborted');
      err.name = 'AbortError';
      reject(err);
    };
    if (ctx.signal.aborted) fail();
    else ctx.signal.addEventListener('abort', fail, { once: true });
  });
