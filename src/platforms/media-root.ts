/**
 * The one place that decides whether a media path may be read: the API checks it when a task is accepted and the
 * drivers check it again when they open the file, because the file can be swapped (for a symlink, say) between the
 * two, before a scheduled upload or a review retry. No side effects at import: both processes use it.
 *
 * Messages name the path as the client sent it (relative to the media root), never the server's absolute root.
 */
import { constants } from 'node:fs';
import { open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PublishError } from './types';

export type MediaProblem = 'root_missing' | 'not_found' | 'outside_root' | 'not_a_file' | 'unreadable';

/** Why a media path was refused at accept time; the API maps it to a 400 naming the field. */
export class MediaPathError extends Error {
  override readonly name = 'MediaPathError';
  constructor(
    readonly problem: MediaProblem,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A media file refused when the upload opens it: missing, not a regular file, or (through a link swapped in after
 * the task was accepted) outside the media root. Nothing was sent, and retrying cannot help, so it is a
 * non-retryable ContentRejected failure that lands in review like any rejected content (never Unconfirmed).
 */
export class MediaRejected extends PublishError {
  override readonly name: string = 'MediaRejected';
  constructor(message: string, cause?: unknown) {
    super('ContentRejected', `media rejected: ${message}`, { cause });
  }
}

/** Whether `real` (a realpath) is strictly inside `root` (a realpath). Lexical: both must already be resolved. */
export function isInside(root: string, real: string): boolean {
  const rel = path.relative(root, real);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** The path as the client would name it: relative to the root when it lies there lexically, else its base name. */
function shown(root: string, candidate: string): string {
  return isInside(root, candidate) ? path.relative(root, candidate) : path.basename(candidate);
}

/**
 * Accept time: resolves `given` (relative to the media root, or absolute) and checks that it is an existing regular
 * file inside the root, symlinks resolved. Returns the real absolute path the workers will open (and check again).
 */
export async function checkMediaPath(mediaRoot: string, given: string): Promise<string> {
  // Asynchronous, so that checking a 10,000-item batch does not hold the API's event loop.
  let root: string;
  try {
    root = await realpath(mediaRoot);
  } catch {
    throw new MediaPathError('root_missing', 'the media root does not exist on this server (PUBFLOW_MEDIA_ROOT)');
  }
  let real: string;
  try {
    real = await realpath(path.resolve(root, given));
  } catch {
    throw new MediaPathError('not_found', `file not found: ${given}`);
  }
  if (!isInside(root, real)) throw new MediaPathError('outside_root', `${given} is not inside the media root`);
  let isFile = false;
  try {
    isFile = (await stat(real)).isFile();
  } catch {
    throw new MediaPathError('unreadable', `cannot be read: ${given}`);
  }
  if (!isFile) throw new MediaPathError('not_a_file', `not a regular file: ${given}`);
  return real;
}

export interface OpenedMedia {
  handle: FileHandle;
  size: number;
  /** The base name of the path as requested (not of a link's target). */
  name: string;
  /** The path as the client sent it, for messages. */
  shown: string;
}

// O_NOFOLLOW: a last component swapped for a link after realpath fails with ELOOP instead of being followed.
// O_NONBLOCK: a FIFO swapped in cannot hang the open (a regular file ignores the flag).
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** Where the descriptor really points, on Linux; undefined where /proc is not available. */
async function openedPath(handle: FileHandle): Promise<string | undefined> {
  try {
    return (await readlink(`/proc/self/fd/${handle.fd}`)).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

/**
 * Open time: resolves the path with realpath, refuses anything outside the media root, opens the resolved path
 * without following a final link, and then verifies the *opened* file (where its descriptor points, and that it is
 * the regular file realpath named), so a swap of any component between the check and the open cannot escape.
 * `mediaRoot` undefined confines nothing (drivers built without a root, e.g. in unit tests).
 */
export async function openMedia(mediaRoot: string | undefined, filePath: string, field: string): Promise<OpenedMedia> {
  let root: string | undefined;
  if (mediaRoot !== undefined) {
    try {
      root = await realpath(mediaRoot);
    } catch (err) {
      throw new PublishError('Internal', 'the media root does not exist on this worker (PUBFLOW_MEDIA_ROOT)', {
        cause: err,
      });
    }
  }
  const candidate = root === undefined ? path.resolve(filePath) : path.resolve(root, filePath);
  const name = root === undefined ? filePath : shown(root, candidate);
  const outside = () => new MediaRejected(`${field} ${name} resolves outside the media root`);

  let real: string;
  try {
    real = await realpath(candidate);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new MediaRejected(
      code === 'ENOENT' ? `${field} file not found: ${name}` : `${field} cannot be read: ${name} (${code})`,
      err,
    );
  }
  if (root !== undefined && !isInside(root, real)) throw outside();

  let handle: FileHandle;
  try {
    handle = await open(real, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    // ELOOP: the file became a link after realpath; that is a swap, treated as an escape.
    if (code === 'ELOOP') throw outside();
    throw new MediaRejected(
      code === 'ENOENT' ? `${field} file not found: ${name}` : `${field} cannot be read: ${name} (${code})`,
      err,
    );
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new MediaRejected(`${field} is not a regular file: ${name}`);
    if (root !== undefined) {
      const opened = await openedPath(handle);
      if (opened !== undefined) {
        if (!isInside(root, opened)) throw outside();
      } else {
        // No /proc: the path must still resolve to the very file we hold, inside the root.
        const again = await realpath(real).catch(() => undefined);
        const now = again === undefined ? undefined : await stat(again).catch(() => undefined);
        if (!again || !now || !isInside(root, again) || now.dev !== st.dev || now.ino !== st.ino) throw outside();
      }
    }
    return { handle, size: st.size, name: path.basename(candidate), shown: name };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}
