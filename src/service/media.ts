import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { invalid } from './errors';

/**
 * Resolves a media path given by a client against the media root and checks that it is an existing file inside
 * it (symlinks resolved, so a link cannot escape the root). Returns the absolute path the workers will read.
 * Asynchronous, so that checking a 10,000-item batch does not hold the API's event loop.
 */
export async function resolveMediaPath(mediaRoot: string, given: string, field: string): Promise<string> {
  let root: string;
  try {
    root = await realpath(mediaRoot);
  } catch {
    throw invalid(field, `the media root ${mediaRoot} does not exist on this server (PUBFLOW_MEDIA_ROOT)`);
  }
  const candidate = path.resolve(root, given);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw invalid(field, `file not found: ${given}`);
  }
  if (real !== root && !real.startsWith(root + path.sep))
    throw invalid(field, `must be inside the media root (${root})`);
  if (!(await stat(real)).isFile()) throw invalid(field, `not a regular file: ${given}`);
  return real;
}
