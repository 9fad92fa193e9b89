/**
 * Where the CLI finds the API and its token: `PUBFLOW_URL` (default http://127.0.0.1:3000) and `PUBFLOW_TOKEN`
 * (default: the token `make up` writes to data/admin.token, when that file exists).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { inputError } from './errors';

export const DEFAULT_URL = 'http://127.0.0.1:3000';

export interface CliConfig {
  /** The API's base URL, without a trailing slash. */
  url: string;
  token: string | undefined;
  /** Where the token came from, for messages: `PUBFLOW_TOKEN`, a file path, or a sentence saying there is none. */
  tokenSource: string;
}

/** The package root (lib/cli/ -> ../..): `make up` writes data/ there. */
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** data/admin.token: under PUBFLOW_DATA_DIR if set, else ./data, else the package's own data/. */
export function adminTokenCandidates(env: NodeJS.ProcessEnv, cwd = process.cwd()): string[] {
  if (env.PUBFLOW_DATA_DIR) return [path.resolve(cwd, env.PUBFLOW_DATA_DIR, 'admin.token')];
  const here = path.resolve(cwd, 'data', 'admin.token');
  const pkg = path.join(PACKAGE_ROOT, 'data', 'admin.token');
  return here === pkg ? [here] : [here, pkg];
}

/** Shown relative to the working directory when inside it. */
export function shownPath(p: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const raw = env.PUBFLOW_URL?.trim() || DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw inputError(`PUBFLOW_URL: "${raw}" is not a URL (e.g. ${DEFAULT_URL})`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw inputError(`PUBFLOW_URL: must be an http or https URL, not "${raw}"`);
  const url = raw.replace(/\/+$/, '');

  const fromEnv = env.PUBFLOW_TOKEN?.trim();
  if (fromEnv) return { url, token: fromEnv, tokenSource: 'PUBFLOW_TOKEN' };
  for (const file of adminTokenCandidates(env)) {
    if (!existsSync(file)) continue;
    let token: string;
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw inputError(`cannot read the token file ${shownPath(file)}: ${(err as NodeJS.ErrnoException).code}`);
    }
    if (token) return { url, token, tokenSource: shownPath(file) };
  }
  return {
    url,
    token: undefined,
    tokenSource: `no token (PUBFLOW_TOKEN is not set and there is no ${shownPath(adminTokenCandidates(env)[0]!)})`,
  };
}
