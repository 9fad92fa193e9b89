/**
 * The keys the API accepts, in memory. A token is looked up by its SHA-256, compared with every stored hash in
 * constant time (no early exit, so the time taken says nothing about which key, if any, came close).
 *
 * Rotation: `reload()` re-reads the file; `watch()` does so on SIGHUP and when the file changes. A file that no
 * longer validates is refused and the keys in use stay in force, so a typo during rotation locks nobody out.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '../log';
import { loadKeysFile, type KeyEntry } from './keys-file';
import type { Principal } from './roles';

/** Longer bearer tokens are refused without hashing them. */
export const MAX_TOKEN_LENGTH = 512;

interface LoadedKey {
  principal: Principal;
  digest: Buffer;
}

export class KeyRegistry {
  private keys: LoadedKey[] = [];

  constructor(
    entries: KeyEntry[],
    /** The file it was read from; reload() reads it again. */
    readonly file?: string,
  ) {
    this.set(entries);
  }

  static fromFile(file: string): KeyRegistry {
    return new KeyRegistry(loadKeysFile(file), file);
  }

  get size(): number {
    return this.keys.length;
  }

  /** Names and roles only: what may be logged or shown. */
  principals(): Principal[] {
    return this.keys.map((k) => ({ ...k.principal }));
  }

  /** The principal whose key this token is, or null. */
  lookup(token: string): Principal | null {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return null;
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let found: Principal | null = null;
    for (const key of this.keys) {
      // Every key is compared, also after a match.
      if (timingSafeEqual(key.digest, digest) && found === null) found = key.principal;
    }
    return found ? { ...found } : null;
  }

  /** Re-reads the file. On a bad file the current keys stay and the error is returned (and nothing is thrown). */
  reload(): { ok: true; size: number } | { ok: false; error: Error } {
    if (!this.file) return { ok: false, error: new Error('this registry was not read from a file') };
    try {
      this.set(loadKeysFile(this.file));
      return { ok: true, size: this.size };
    } catch (err) {
      return { ok: false, error: err as Error };
    }
  }

  /**
   * Reloads on SIGHUP and when the file changes (stat polling, which also sees an atomic rename replacing it).
   * Returns a function that stops both.
   */
  watch(log: Logger, opts: { intervalMs?: number; signal?: boolean } = {}): () => void {
    const file = this.file;
    if (!file) return () => undefined;
    const reload = (why: string) => {
      const out = this.reload();
      if (out.ok) log.info('api keys reloaded', { file, keys: out.size, why });
      else
        log.error('api keys file refused; the keys loaded before stay in force', {
          file,
          why,
          error: out.error.message,
        });
    };
    const onChange = (cur: { mtimeMs: number; ino: number }, prev: { mtimeMs: number; ino: number }) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino) reload('file changed');
    };
    watchFile(file, { interval: opts.intervalMs ?? 2000, persistent: false }, onChange);
    const onHup = () => reload('SIGHUP');
    const useSignal = opts.signal ?? true;
    if (useSignal) process.on('SIGHUP', onHup);
    return () => {
      unwatchFile(file, onChange);
      if (useSignal) process.off('SIGHUP', onHup);
    };
  }

  private set(entries: KeyEntry[]): void {
    this.keys = entries.map((e) => ({
      principal: { name: e.name, role: e.role },
      digest: Buffer.from(e.sha256, 'hex'),
    }));
  }
}
