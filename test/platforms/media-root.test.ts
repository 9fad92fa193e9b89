/**
 * A media path is checked when the task is accepted and again when the upload opens the file: a file swapped for a
 * symlink (or a folder swapped for one) in between is never followed out of the media root. Real files, real
 * links, a real local HTTP receiver; the workflow test runs on the time-skipping server with a real redis-server.
 */
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { InvalidInputError } from '../../src/service/errors';
import { resolveMediaPath } from '../../src/service/media';
import { LocalDriver } from '../../src/platforms/local';
import { checkMediaPath, MediaRejected, openMedia } from '../../src/platforms/media-root';
import type { PublishContext, PublishError } from '../../src/platforms/types';
import { WebhookDriver } from '../../src/platforms/webhook';
import { DEFAULT_POLICY } from '../../src/shared/policy';
import type { PublishRequest } from '../../src/shared/types';
import type { publishSingle } from '../../src/workflows';
import { WebhookReceiver } from '../helpers/webhook-receiver';
import { projectionHarness, withWorker, type Harness } from '../helpers/harness';
import { waitUntil } from '../helpers/polling';
import { createTimeSkippingEnv, startRedis, tempDir, type RedisServer } from '../helpers/servers';

let dir: string;
let root: string;
let outside: string;
const SECRET = 'outside the root: must never be read';

beforeAll(() => {
  dir = tempDir('media-root');
  root = path.join(dir, 'media');
  outside = path.join(dir, 'outside');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret.mp4'), SECRET);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh file inside the root, accepted the way the API accepts it; returns the path the workflow carries. */
function accepted(name: string, body = 'video bytes'): Promise<string> {
  writeFileSync(path.join(root, name), body);
  return checkMediaPath(root, name);
}

/** After acceptance, the file becomes a link to the file outside the root. */
function swapForLink(name: string): void {
  unlinkSync(path.join(root, name));
  symlinkSync(path.join(outside, 'secret.mp4'), path.join(root, name));
}

function context(request: Partial<PublishRequest>, platform = 'local'): PublishContext {
  return {
    taskId: `t-${randomUUID()}`,
    attempt: 1,
    account: { id: 'demo', platform, settings: {}, credentials: {} },
    signal: new AbortController().signal,
    progress: () => undefined,
    request: { platform, accountId: 'demo', video: { path: '' }, title: 'hi', priority: 5, ...request },
  };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

function expectMediaRejected(err: Error, shown: RegExp) {
  expect(err).toBeInstanceOf(MediaRejected);
  expect(err.name).toBe('MediaRejected');
  expect((err as PublishError).kind).toBe('ContentRejected');
  expect(err.message).toMatch(shown);
  // Neither the server's media root nor the link's target is revealed.
  expect(err.message).not.toContain(dir);
}

describe('accept time (the API side)', () => {
  async function refusal(mediaRoot: string, given: string): Promise<InvalidInputError> {
    try {
      await resolveMediaPath(mediaRoot, given, 'video.path');
    } catch (err) {
      return err as InvalidInputError;
    }
    throw new Error(`expected ${given} to be refused`);
  }

  test('a link out of the root, a missing file and a folder are 400s naming the path as sent, not the root', async () => {
    symlinkSync(path.join(outside, 'secret.mp4'), path.join(root, 'link-out.mp4'));
    for (const given of ['link-out.mp4', '../outside/secret.mp4', 'missing.mp4', 'sub']) {
      const err = await refusal(root, given);
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.issues).toEqual([{ field: 'video.path', message: expect.any(String) }]);
      expect(err.message).toContain(given);
      expect(err.message).not.toContain(dir);
      expect(JSON.stringify(err.issues)).not.toContain(dir);
    }
  });

  test('a missing media root is a 400 that does not name it', async () => {
    const err = await refusal(path.join(dir, 'no-such-root'), 'a.mp4');
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).not.toContain(dir);
  });

  test('the accepted path is the real file inside the root', async () => {
    writeFileSync(path.join(root, 'sub', 'a.mp4'), 'a');
    expect(await resolveMediaPath(root, 'sub/../sub/a.mp4', 'video.path')).toBe(
      realpathSync(path.join(root, 'sub', 'a.mp4')),
    );
  });
});

describe('open time (the drivers)', () => {
  test('the local driver refuses a video swapped for a link out of the root, and publishes nothing', async () => {
    const published = tempDir('media-root-published');
    const video = await accepted('swap-local.mp4');
    swapForLink('swap-local.mp4');
    const ctx = context({ video: { path: video } });

    const err = await rejection(new LocalDriver({ publishedRoot: published, mediaRoot: root }).publish(ctx));

    expectMediaRejected(err, /video swap-local\.mp4 resolves outside the media root/);
    expect(existsSync(path.join(published, 'demo', ctx.taskId))).toBe(false);
  });

  test('a cover swapped for a link is refused too', async () => {
    const video = await accepted('ok-video.mp4');
    const cover = await accepted('swap-cover.jpg');
    swapForLink('swap-cover.jpg');

    const err = await rejection(
      new LocalDriver({ publishedRoot: tempDir('media-root-published'), mediaRoot: root }).publish(
        context({ video: { path: video }, cover: { path: cover } }),
      ),
    );

    expectMediaRejected(err, /cover swap-cover\.jpg/);
  });

  test('a folder on the path swapped for a link out of the root is refused', async () => {
    mkdirSync(path.join(root, 'album'));
    const video = await accepted(path.join('album', 'secret.mp4'));
    renameSync(path.join(root, 'album'), path.join(dir, 'album-moved'));
    symlinkSync(outside, path.join(root, 'album'));

    const err = await rejection(openMedia(root, video, 'video'));

    expectMediaRejected(err, /video album\/secret\.mp4 resolves outside the media root/);
  });

  test('a file swapped for a FIFO is refused without hanging', async () => {
    const video = await accepted('fifo.mp4');
    unlinkSync(path.join(root, 'fifo.mp4'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(root, 'fifo.mp4')]);

    const err = await rejection(openMedia(root, video, 'video'));

    expectMediaRejected(err, /video is not a regular file: fifo\.mp4/);
  });

  test('a missing file is MediaRejected and names the relative path, not the root', async () => {
    const video = await accepted('gone.mp4');
    unlinkSync(video);

    const err = await rejection(openMedia(root, video, 'video'));

    expectMediaRejected(err, /video file not found: gone\.mp4/);
  });

  test('a file inside the root, reached through a link inside the root, is still read', async () => {
    writeFileSync(path.join(root, 'sub', 'real.mp4'), 'inside');
    symlinkSync(path.join(root, 'sub', 'real.mp4'), path.join(root, 'inner-link.mp4'));

    const opened = await openMedia(root, 'inner-link.mp4', 'video');
    try {
      expect(opened).toMatchObject({ size: 'inside'.length, name: 'inner-link.mp4', shown: 'inner-link.mp4' });
    } finally {
      await opened.handle.close();
    }
  });

  test('the webhook driver refuses a swapped video before connecting: the receiver sees no request', async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const video = await accepted('swap-hook.mp4');
      swapForLink('swap-hook.mp4');
      const ctx = context({ video: { path: video } }, 'webhook');
      ctx.account.settings = { url: receiver.url };

      const err = await rejection(new WebhookDriver({ mediaRoot: root }).publish(ctx));

      expectMediaRejected(err, /video swap-hook\.mp4 resolves outside the media root/);
      // Prove the absence with a later request that must arrive after anything the failed publish sent.
      const ok = context({ video: { path: await accepted('hook-ok.mp4') } }, 'webhook');
      ok.account.settings = { url: receiver.url };
      await new WebhookDriver({ mediaRoot: root }).publish(ok);
      expect(receiver.requests.map((r) => r.metadata.taskId)).toEqual([ok.taskId]);
    } finally {
      await receiver.close();
    }
  });
});

describe('in a workflow', () => {
  let env: TestWorkflowEnvironment;
  let redisServer: RedisServer;
  let h: Harness;

  beforeAll(async () => {
    [env, redisServer] = await Promise.all([createTimeSkippingEnv(), startRedis()]);
    h = projectionHarness(redisServer.url);
  });

  afterAll(async () => {
    await h?.close();
    await env?.teardown();
    await redisServer?.destroy();
  });

  test('a video swapped for a link before the upload lands in review as rejected content, not Unconfirmed', async () => {
    const published = tempDir('media-root-published');
    const video = await accepted('swap-wf.mp4');
    swapForLink('swap-wf.mp4');
    const driver = new LocalDriver({ publishedRoot: published, mediaRoot: root });

    await withWorker({ connection: env.nativeConnection, harness: h, drivers: [driver] }, async (taskQueue) => {
      const handle = await env.client.workflow.start<typeof publishSingle>('publishSingle', {
        taskQueue,
        workflowId: `t-${randomUUID()}`,
        args: [
          {
            request: { platform: 'local', accountId: 'demo', video: { path: video }, title: 'x', priority: 5 },
            policy: DEFAULT_POLICY,
          },
        ],
      });

      const d = await waitUntil('the review to open', async () => {
        const x = await h.tsm.getTaskState(handle.workflowId);
        return x?.review?.open ? x : undefined;
      });
      expect(d.status).toBe('failed');
      expect(d.attempt).toBe(1);
      expect(d.review).toMatchObject({ kind: 'ContentRejected', open: true });
      expect(d.review?.message).toMatch(/^media rejected: video swap-wf\.mp4 resolves outside the media root/);
      expect(JSON.stringify(d)).not.toContain(outside);
      expect(existsSync(path.join(published, 'demo', handle.workflowId))).toBe(false);
      await handle.terminate('test done');
    });
  });
});
