/**
 * The API keys file (PUBFLOW_API_KEYS_FILE): JSON, or YAML for .yaml/.yml.
 *
 *   [{ "name": "ops-anna", "role": "operator", "sha256": "<hex sha256 of the token>" }]
 *
 * Only the SHA-256 of a token is stored; the token itself is shown once, when `keys create` makes it. Writes go
 * through a temporary file and a rename, under a lock file, so a reader never sees half a file and two concurrent
 * `keys create` runs do not lose each other's key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { ROLES, type Role } from './roles';

/** A broken or unreadable keys file. The message names the file, the entry and the field; it never holds a token. */
export class KeysFileError extends Error {
  override readonly name = 'KeysFileError';
}

export const KeyEntrySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_", "@" or "-"'),
  role: z.enum(ROLES),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be the 64 hex digits of the SHA-256 of the token')
    .transform((v) => v.toLowerCase()),
  /** When `keys create` made it (informational). */
  createdAt: z.string().optional(),
});
export type KeyEntry = z.infer<typeof KeyEntrySchema>;

/** Token prefix: makes a leaked pubflow token recognisable to people and secret scanners. */
export const TOKEN_PREFIX = 'pf_';

/** 32 random bytes, base64url, prefixed: `pf_` + 43 characters. */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

const isYaml = (file: string) => /\.ya?ml$/i.test(file);

/** Parses and validates the text of a keys file; `file` only names it in messages. */
export function parseKeysFile(text: string, file: string): KeyEntry[] {
  let raw: unknown;
  try {
    raw = isYaml(file) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new KeysFileError(
      `keys file ${file}: not valid ${isYaml(file) ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
    );
  }
  if (raw === null || raw === undefined) raw = [];
  if (!Array.isArray(raw)) throw new KeysFileError(`keys file ${file}: must be a list of {name, role, sha256}`);
  const entries: KeyEntry[] = [];
  const problems: string[] = [];
  raw.forEach((item: unknown, i) => {
    const label = entryLabel(item, i);
    if (typeof item === 'object' && item !== null && 'token' in item) {
      problems.push(`${label}: token: tokens are never stored in plain text; store its sha256 (keys create does)`);
      return;
    }
    const parsed = KeyEntrySchema.safeParse(item);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field =
          issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.map(String).join('.') || '(entry)';
        problems.push(`${label}: ${field}: ${issue.message}`);
      }
      return;
    }
    entries.push(parsed.data);
  });
  const byName = new Map<string, number>();
  const byHash = new Map<string, string>();
  entries.forEach((e) => {
    if (byName.has(e.name)) problems.push(`entry "${e.name}": name: duplicate name; names must be unique`);
    byName.set(e.name, 1);
    const other = byHash.get(e.sha256);
    if (other) problems.push(`entry "${e.name}": sha256: the same token as entry "${other}"`);
    byHash.set(e.sha256, e.name);
  });
  if (problems.length) throw new KeysFileError(`keys file ${file} is invalid:\n  ${problems.join('\n  ')}`);
  return entries;
}

function entryLabel(item: unknown, i: number): string {
  const name = typeof item === 'object' && item !== null ? (item as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name ? `entry ${i} ("${name.slice(0, 64)}")` : `entry ${i}`;
}

export function loadKeysFile(file: string): KeyEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KeysFileError(`keys file ${file}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseKeysFile(text, file);
}

export function keysFileExists(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Writes `content` to `file` atomically (temp file in the same directory, fsync, rename), with `mode`. */
export function writeFileAtomic(file: string, content: string, mode = 0o600): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The text of a keys file: YAML for .yaml/.yml, else JSON. */
export function serialiseKeys(file: string, entries: KeyEntry[]): string {
  return isYaml(file) ? stringifyYaml(entries) : JSON.stringify(entries, null, 2) + '\n';
}

const LOCK_STALE_MS = 30_000;

/** Runs `fn` holding `<file>.lock` (O_EXCL). A lock older than 30 s is taken to be left by a crashed run. */
export function withKeysFileLock<T>(file: string, fn: () => T): T {
  const lock = `${file}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) rmSync(lock, { force: true });
      } catch {
        // gone meanwhile: try again
      }
      if (Date.now() > deadline) throw new KeysFileError(`keys file ${file}: locked by another process (${lock})`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Reads the file (missing = empty), lets `change` edit the entries, validates the result and writes it atomically. */
export function updateKeysFile(file: string, change: (entries: KeyEntry[]) => KeyEntry[]): KeyEntry[] {
  return withKeysFileLock(file, () => {
    const current = keysFileExists(file) ? loadKeysFile(file) : [];
    const next = change(current);
    const text = serialiseKeys(file, next);
    parseKeysFile(text, file); // never write a file the API would refuse
    writeFileAtomic(file, text);
    return next;
  });
}

/** Adds a key; returns its token (the only time it exists outside the caller's hands). */
export function addKey(file: string, key: { name: string; role: Role }): { token: string; entry: KeyEntry } {
  const token = generateToken();
  const entry: KeyEntry = {
    name: key.name,
    role: key.role,
    sha256: hashToken(token),
    createdAt: new Date().toISOString(),
  };
  updateKeysFile(file, (entries) => {
    if (entries.some((e) => e.name === key.name))
      throw new KeysFileError(`keys file ${file}: a key named "${key.name}" exists already`);
    return [...entries, entry];
  });
  return { token, entry };
}

export function removeKey(file: string, name: string): void {
  updateKeysFile(file, (entries) => {
    if (!entries.some((e) => e.name === name)) throw new KeysFileError(`keys file ${file}: no key named "${name}"`);
    return entries.filter((e) => e.name !== name);
  });
}
