/**
 * The local driver: "publishes" by copying the files into `<publishedRoot>/<accountId>/<taskId>/`.
 * Used by the demo account and by tests; it behaves like a real driver (streams, reports progress, honours cancel).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { openMedia } from './media-root';
import {
  abortError,
  errorCode,
  notSent,
  PublishError,
  type DriverResult,
  type PlatformDriver,
  type PublishContext,
} from './types';

export interface LocalDriverOptions {
  /** Root folder of the published copies (PUBFLOW_PUBLISHED_DIR). */
  publishedRoot: string;
  /**
   * PUBFLOW_MEDIA_ROOT: files are opened only inside it, checked again at open time (see media-root.ts).
   * Without it nothing is confined; every process that runs uploads must set it.
   */
  mediaRoot?: string;
}

interface Source {
  field: 'video' | 'cover';
  handle: FileHandle;
  size: number;
  name: string;
}

/**
 * The copy is written to a hidden staging folder and renamed into place at the end, so the task's folder holds either
 * a complete publish or nothing. A retry replaces the folder of an earlier attempt.
 *
 * On cancel the staging folder is removed and the driver rejects with an Error whose name is 'AbortError' (like the
 * webhook driver), not with a PublishError, so the caller can tell a cancel from a failure.
 */
export class LocalDriver implements PlatformDriver {
  readonly platform = 'local';
  private readonly publishedRoot: string;
  private readonly mediaRoot: string | undefined;

  constructor(options: LocalDriverOptions) {
    this.publishedRoot = path.resolve(options.publishedRoot);
    this.mediaRoot = options.mediaRoot;
  }

  async publish(ctx: PublishContext): Promise<DriverResult> {
    const { taskId, attempt, request, account, signal } = ctx;
    if (signal.aborted) throw abortError(signal);
    const accountDir = path.join(this.publishedRoot, folderName('account id', account.id));
    const dir = path.join(accountDir, folderName('task id', taskId));

    const sources: Source[] = [];
    let staging: string | undefined;
    try {
      sources.push(await openSource(this.mediaRoot, 'video', request.video.path, ['metadata.json']));
      if (request.cover) {
        const taken = ['metadata.json', sources[0]!.name];
        sources.push(await openSource(this.mediaRoot, 'cover', request.cover.path, taken));
      }
      if (signal.aborted) throw abortError(signal);

      try {
        await mkdir(accountDir, { recursive: true });
        staging = await mkdtemp(path.join(accountDir, `.${taskId}.partial-`));
      } catch (err) {
        throw notSent(`cannot create a folder under ${accountDir} (${errorCode(err)})`, err);
      }

      const total = sources.reduce((n, s) => n + s.size, 0);
      let copied = 0;
      let lastPercent = -1;
      const report = () => {
        const percent = total === 0 ? 100 : Math.floor((copied / total) * 100);
        if (percent === lastPercent) return;
        lastPercent = percent;
        ctx.progress({ percent, stage: 'uploading' });
      };
      report();
      for (const s of sources) {
        await copy(s, path.join(staging, s.name), signal, (n) => {
          copied += n;
          report();
        });
      }

      const metadata = {
        taskId,
        attempt,
        platform: this.platform,
        accountId: account.id,
        title: request.title,
        description: request.description ?? null,
        tags: request.tags ?? [],
        options: request.options ?? {},
        files: Object.fromEntries(sources.map((s) => [s.field, s.name])),
        published_at: new Date().toISOString(),
      };
      try {
        await writeFile(path.join(staging, 'metadata.json'), `${JSON.stringify(metadata, null, 2)}\n`, { signal });
      } catch (err) {
        throw signal.aborted ? abortError(signal) : notSent(`cannot write metadata.json (${errorCode(err)})`, err);
      }
      if (signal.aborted) throw abortError(signal);

      try {
        await rm(dir, { recursive: true, force: true });
        await rename(staging, dir);
      } catch (err) {
        throw notSent(`cannot move the copy into ${dir} (${errorCode(err)})`, err);
      }
      staging = undefined;
      return { postId: `${taskId}:${attempt}`, url: pathToFileURL(dir).href };
    } finally {
      await Promise.all(sources.map((s) => s.handle.close().catch(() => undefined)));
      if (staging) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

async function copy(source: Source, dest: string, signal: AbortSignal, onBytes: (n: number) => void): Promise<void> {
  let read = 0;
  try {
    if (source.size === 0) {
      await writeFile(dest, '', { flag: 'wx', signal });
      return;
    }
    await pipeline(
      // Pinned to the size measured up front (`end` is inclusive): a file that grows meanwhile is copied as it was.
      source.handle.createReadStream({ start: 0, end: source.size - 1, autoClose: false }),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          read += chunk.length;
          onBytes(chunk.length);
          yield chunk;
        }
      },
      createWriteStream(dest, { flags: 'wx' }),
      { signal },
    );
  } catch (err) {
    if (signal.aborted) throw abortError(signal);
    throw notSent(`copying the ${source.field} failed (${errorCode(err)})`, err);
  }
  if (read !== source.size) throw notSent(`the ${source.field} file changed during the copy`);
}

/**
 * Opens now, so a missing file is reported before anything is written; the copy reads through the same handle.
 * openMedia confines the open to the media root at this moment, whatever was checked when the task was accepted.
 */
async function openSource(
  mediaRoot: string | undefined,
  field: Source['field'],
  filePath: string,
  taken: string[],
): Promise<Source> {
  const { handle, size, name } = await openMedia(mediaRoot, filePath, field);
  return { field, handle, size, name: taken.includes(name) ? `${field}-${name}` : name };
}

/** An id becomes one folder name: no separators, no `.`/`..`, so it can never escape the published root. */
function folderName(what: string, value: string): string {
  if (!value || value === '.' || value === '..' || /[/\\\0]/.test(value))
    throw new PublishError('Internal', `${what} "${value}" cannot be used as a folder name`);
  return value;
}
