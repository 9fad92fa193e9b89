import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { badRequest } from './errors';

/**
 * Resolves a media path given by a client against the media root and checks that it is an existing file inside
 * it (symlinks resolved, so a link cannot escape the root). Returns the absolute path the workers will read.
 */
export function resolveMediaPath(mediaRoot: string, given: string, field: string): string {
  let root: string;
  try {
    root = realpathSync(mediaRoot);
  } catch {
    throw badRequest(field, `the media root ${mediaRoot} does not exist on this server (PUBFLOW_MEDIA_ROOT)`);
  }
  const candidate = path.resolve(root, given);
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch {
    throw badRequest(field, `file not found: ${given}`);
  }
  if (real !== root && !real.startsWith(root + path.sep))
    throw badRequest(field, `must be inside the media root (${root})`);
  if (!statSync(real).isFile()) throw badRequest(field, `not a regular file: ${given}`);
  return real;
}
