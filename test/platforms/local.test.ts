import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalDriver } from '../../src/platforms/local';
import { PublishError, type PublishContext } from '../../src/platforms/types';
import type { Progress, PublishRequest } from '../../src/shared/types';

let dir: string;
let media: string;
let video: Buffer;
let cover: Buffer;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pubflow-local-'));
  media = path.join(dir, 'media');
  mkdirSync(media);
  video = randomBytes(3 * 1024 * 1024 + 17);
  cover = randomBytes(10_000);
  writeFileSync(path.join(media, 'clip.mp4'), video);
  writeFileSync(path.join(media, 'cover.jpg'), cover);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function newRoot(): string {
  return mkdtempSync(path.join(dir, 'published-'));
}

function context(overrides: Partial<Omit<PublishContext, 'request'>> & { request?: Partial<PublishRequest> } = {}) {
  const progress: Progress[] = [];
  const { request, ...rest } = overrides;
  const ctx: PublishContext = {
    taskId: 'task-1',
    attempt: 1,
    account: { id: 'demo', platform: 'local', settings: {}, credentials: {} },
    signal: new AbortController().signal,
    progress: (p) => progress.push(p),
    ...rest,
    request: {
      platform: 'local',
      accountId: 'demo',
      video: { path: path.join(media, 'clip.mp4') },
      title: 'Hello',
      priority: 5,
      ...request,
    },
  };
  return { ctx, progress };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('LocalDriver', () => {
  test('copies the video, the cover and metadata.json into <root>/<account>/<task>/', async () => {
    const root = newRoot();
    const { ctx, progress } = context({
      taskId: 'task-42',
      attempt: 3,
      request: {
        cover: { path: path.join(media, 'cover.jpg') },
        description: 'a description',
        tags: ['a', 'b'],
        options: { visibility: 'private' },
      },
    });

    const before = Date.now();
    const result = await new LocalDriver({ publishedRoot: root }).publish(ctx);

    const target = path.join(root, 'demo', 'task-42');
    expect(result).toEqual({ postId: 'task-42:3', url: pathToFileURL(target).href });
    expect(result.url).toBe(`file://${target}`);
    expect(readdirSync(target).sort()).toEqual(['clip.mp4', 'cover.jpg', 'metadata.json']);
    expect(readFileSync(path.join(target, 'clip.mp4')).equals(video)).toBe(true);
    expect(readFileSync(path.join(target, 'cover.jpg')).equals(cover)).toBe(true);
    const metadata = JSON.parse(readFileSync(path.join(target, 'metadata.json'), 'utf8'));
    expect(metadata).toEqual({
      taskId: 'task-42',
      attempt: 3,
      platform: 'local',
      accountId: 'demo',
      title: 'Hello',
      description: 'a description',
      tags: ['a', 'b'],
      options: { visibility: 'private' },
      files: { video: 'clip.mp4', cover: 'cover.jpg' },
      published_at: expect.any(String),
    });
    expect(Date.parse(metadata.published_at)).toBeGreaterThanOrEqual(before - 1000);
    // No staging folder is left next to the published one.
    expect(readdirSync(path.join(root, 'demo'))).toEqual(['task-42']);
    // Progress is by bytes: it rises from 0 to 100 through intermediate values.
    const percents = progress.map((p) => p.percent);
    expect(progress.every((p) => p.stage === 'uploading')).toBe(true);
    expect(percents[0]).toBe(0);
    expect(percents.at(-1)).toBe(100);
    expect(percents.some((p) => p > 0 && p < 100)).toBe(true);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);
  });

  test('a later attempt replaces the earlier copy', async () => {
    const root = newRoot();
    const driver = new LocalDriver({ publishedRoot: root });
    await driver.publish(context({ request: { cover: { path: path.join(media, 'cover.jpg') } } }).ctx);

    const result = await driver.publish(context({ attempt: 2 }).ctx);

    const target = path.join(root, 'demo', 'task-1');
    expect(result.postId).toBe('task-1:2');
    expect(readdirSync(target).sort()).toEqual(['clip.mp4', 'metadata.json']);
    const metadata = JSON.parse(readFileSync(path.join(target, 'metadata.json'), 'utf8'));
    expect(metadata).toMatchObject({ attempt: 2, description: null, tags: [], options: {} });
  });

  test('a missing video is ContentRejected and creates nothing', async () => {
    const root = newRoot();

    const err = await rejection(
      new LocalDriver({ publishedRoot: root }).publish(
        context({ request: { video: { path: path.join(media, 'nope.mp4') } } }).ctx,
      ),
    );

    expect(err).toBeInstanceOf(PublishError);
    expect((err as PublishError).kind).toBe('ContentRejected');
    expect(err.message).toContain('nope.mp4');
    expect(readdirSync(root)).toEqual([]);
  });

  test('a missing cover is ContentRejected too', async () => {
    const err = await rejection(
      new LocalDriver({ publishedRoot: newRoot() }).publish(
        context({ request: { cover: { path: path.join(media, 'nope.jpg') } } }).ctx,
      ),
    );

    expect((err as PublishError).kind).toBe('ContentRejected');
  });

  test('a task id that would leave the folder is refused', async () => {
    const root = newRoot();

    const err = await rejection(new LocalDriver({ publishedRoot: root }).publish(context({ taskId: '../escape' }).ctx));

    expect((err as PublishError).kind).toBe('Internal');
    expect(existsSync(path.join(root, 'escape'))).toBe(false);
  });

  test('an abort mid-copy stops, removes the partial files and rejects with AbortError', async () => {
    const root = newRoot();
    const controller = new AbortController();
    const { ctx, progress } = context({ signal: controller.signal });
    ctx.progress = (p) => {
      progress.push(p);
      if (p.percent > 0) controller.abort();
    };

    const err = await rejection(new LocalDriver({ publishedRoot: root }).publish(ctx));

    expect(err.name).toBe('AbortError');
    expect(err).not.toBeInstanceOf(PublishError);
    // It stopped early rather than finishing the copy.
    expect(Math.max(...progress.map((p) => p.percent))).toBeLessThan(100);
    expect(readdirSync(path.join(root, 'demo'))).toEqual([]);
  });

  test('an already-aborted signal rejects with AbortError before touching the disk', async () => {
    const root = newRoot();
    const controller = new AbortController();
    controller.abort();

    const err = await rejection(
      new LocalDriver({ publishedRoot: root }).publish(context({ signal: controller.signal }).ctx),
    );

    expect(err.name).toBe('AbortError');
    expect(readdirSync(root)).toEqual([]);
  });
});
