import { checkMediaPath, MediaPathError } from '../platforms/media-root';
import { invalid } from './errors';

/**
 * Resolves a media path given by a client against the media root and checks that it is an existing file inside
 * it (symlinks resolved, so a link cannot escape the root). Returns the absolute path the workers will read; the
 * drivers check it again when they open it (src/platforms/media-root.ts). Messages name the path as the client
 * sent it, never the server's media root.
 */
export async function resolveMediaPath(mediaRoot: string, given: string, field: string): Promise<string> {
  try {
    return await checkMediaPath(mediaRoot, given);
  } catch (err) {
    if (err instanceof MediaPathError) throw invalid(field, err.message);
    throw err;
  }
}
