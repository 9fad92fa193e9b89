/**
 * The account registry: which accounts exist, on which platform, with which settings and credentials.
 *
 * Accounts come from PUBFLOW_ACCOUNTS_FILE (JSON, or YAML for .yaml/.yml), validated once at start-up.
 * Credentials stay as references ({ env } / { file }) until `resolve()`, which only activities call,
 * so secrets never reach workflow inputs, histories, the projection, API responses or logs.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { RateLimits } from '../shared/policy';
import type { AccountConfig, ResolvedAccount } from './types';

/** What the API may show about an account: no credentials, and settings without secret-looking keys. */
export interface PublicAccount {
  id: string;
  platform: string;
  displayName: string;
  settings: Record<string, unknown>;
}

/** A broken accounts file, or an account whose credentials cannot be resolved. Never carries a secret value. */
export class AccountError extends Error {
  override readonly name = 'AccountError';
}

export const DEMO_ACCOUNT: AccountConfig = Object.freeze({
  id: 'demo',
  platform: 'local',
  displayName: 'Demo (local folder)',
  settings: {},
});

const SECRET_KEY = /token|secret|password|cookie|key|auth/i;

type Issue = { path: (string | number)[]; message: string };

/**
 * Leaves may be literals or { env } / { file } references; inner objects and arrays nest (e.g. headers.Authorization).
 * Also checks the event subscriptions' `secret` (src/events/subscriptions.ts).
 */
export function checkCredentials(value: unknown, at: (string | number)[], issues: Issue[]): void {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkCredentials(v, [...at, i], issues));
    return;
  }
  if (typeof value === 'object' && value !== null) {
    const ref = credentialRef(value);
    if (ref === 'invalid') {
      issues.push({ path: at, message: 'a reference must be exactly { "env": "VAR" } or { "file": "path" }' });
      return;
    }
    if (ref) return;
    for (const [k, v] of Object.entries(value)) checkCredentials(v, [...at, k], issues);
    return;
  }
  issues.push({ path: at, message: 'must be a string, { "env": "VAR" }, { "file": "path" } or an object of those' });
}

/** `{ env }` / `{ file }` with a non-empty string, 'invalid' for a malformed reference, undefined for a plain map. */
function credentialRef(value: object): { env: string } | { file: string } | 'invalid' | undefined {
  const keys = Object.keys(value);
  const rec = value as Record<string, unknown>;
  if (!keys.includes('env') && !keys.includes('file')) return undefined;
  if (keys.length !== 1) return 'invalid';
  const [k] = keys as ['env' | 'file'];
  const v = rec[k];
  if (typeof v !== 'string' || v.trim() === '') return 'invalid';
  return k === 'env' ? { env: v } : { file: v };
}

/** `settings.rateLimits` of an account, and (with `maxConcurrent`) the per-platform defaults of PUBFLOW_PLATFORM_LIMITS. */
export const RateLimitsSchema = z.strictObject({
  minIntervalSeconds: z.number().min(0).optional(),
  maxPerWindow: z
    .strictObject({
      count: z.number().int().min(1),
      windowSeconds: z.number().positive(),
    })
    .optional(),
});
export const PlatformLimitsSchema = RateLimitsSchema.extend({ maxConcurrent: z.number().int().min(1).optional() });

const AccountSchema = z
  .strictObject({
    id: z.string().trim().min(1, 'must be a non-empty string'),
    platform: z.string().trim().min(1, 'must be a non-empty string'),
    displayName: z.string().trim().min(1).optional(),
    // Platform-specific keys are the driver's business; the shared ones are checked here so a typo fails at start-up.
    settings: z
      .looseObject({
        timeoutMs: z.number().int().positive().optional(),
        url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
        rateLimits: RateLimitsSchema.optional(),
      })
      .default({}),
    credentials: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((acc, ctx) => {
    if (!acc.credentials) return;
    const issues: Issue[] = [];
    checkCredentials(acc.credentials, ['credentials'], issues);
    for (const i of issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
  });

const AccountsFileSchema = z.array(AccountSchema).superRefine((accounts, ctx) => {
  const seen = new Map<string, number>();
  accounts.forEach((acc, index) => {
    const first = seen.get(acc.id);
    if (first !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: [index, 'id'],
        message: `duplicate id "${acc.id}" (first at index ${first})`,
      });
    else seen.set(acc.id, index);
  });
});

function describeIssue(issue: { path: PropertyKey[]; message: string }): string {
  const [index, ...field] = issue.path;
  if (typeof index !== 'number') return issue.message;
  const fieldName = field.length > 0 ? field.map(String).join('.') : '(account)';
  return `account at index ${index}, field "${fieldName}": ${issue.message}`;
}

function parseFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AccountError(`cannot read accounts file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const ext = path.extname(file).toLowerCase();
  try {
    return ext === '.yaml' || ext === '.yml' ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    const format = ext === '.yaml' || ext === '.yml' ? 'YAML' : 'JSON';
    throw new AccountError(`accounts file ${file} is not valid ${format}: ${(err as Error).message}`);
  }
}

/**
 * Load and validate the accounts file. Without a file, the registry holds only the built-in `demo` account.
 * Throws an AccountError naming the file, the account's index and the field.
 */
export function loadAccounts(file?: string): AccountRegistry {
  if (!file) return new AccountRegistry([DEMO_ACCOUNT], process.cwd());
  const absolute = path.resolve(file);
  const raw = parseFile(absolute);
  const parsed = AccountsFileSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${describeIssue(i)}`);
    throw new AccountError(`invalid accounts file ${absolute}:\n${lines.join('\n')}`);
  }
  const accounts: AccountConfig[] = parsed.data.map((a) => ({
    id: a.id,
    platform: a.platform,
    displayName: a.displayName ?? a.id,
    settings: a.settings,
    ...(a.credentials ? { credentials: a.credentials } : {}),
  }));
  return new AccountRegistry(accounts, path.dirname(absolute));
}

export class AccountRegistry {
  private readonly accounts: ReadonlyMap<string, AccountConfig>;

  /** `baseDir` anchors relative `{ file }` credential paths (the accounts file's directory). */
  constructor(
    accounts: readonly AccountConfig[],
    private readonly baseDir: string,
  ) {
    const map = new Map<string, AccountConfig>();
    for (const acc of accounts) {
      if (map.has(acc.id)) throw new AccountError(`duplicate account id "${acc.id}"`);
      map.set(acc.id, structuredClone(acc));
    }
    this.accounts = map;
  }

  list(): PublicAccount[] {
    return [...this.accounts.values()].map((a) => ({
      id: a.id,
      platform: a.platform,
      displayName: a.displayName ?? a.id,
      settings: publicSettings(a.settings) as Record<string, unknown>,
    }));
  }

  /** The configuration as written (credential references unresolved). A copy: callers cannot change the registry. */
  get(id: string): AccountConfig | undefined {
    const acc = this.accounts.get(id);
    return acc ? structuredClone(acc) : undefined;
  }

  has(id: string): boolean {
    return this.accounts.has(id);
  }

  /** The account's own rate limits (`settings.rateLimits`, validated at load), if it sets any. */
  rateLimits(id: string): RateLimits | undefined {
    const limits = this.accounts.get(id)?.settings.rateLimits;
    return limits ? (structuredClone(limits) as RateLimits) : undefined;
  }

  /**
   * The account with every credential reference replaced by its value, read now (so a rotated secret is
   * picked up without a restart). Call only inside activities; never log the result.
   */
  resolve(id: string): ResolvedAccount {
    const acc = this.accounts.get(id);
    if (!acc) throw new AccountError(`unknown account "${id}"`);
    const credentials = acc.credentials ? this.resolveValue(acc.id, acc.credentials, []) : {};
    return { ...structuredClone(acc), credentials: credentials as Record<string, unknown> };
  }

  private resolveValue(accountId: string, value: unknown, at: string[]): unknown {
    return resolveCredentials(value, this.baseDir, (path) => `account "${accountId}", credential "${path}"`, at);
  }
}

/**
 * A credential value with every { env } / { file } reference replaced by its value, read now. `where` names the
 * place in messages (never the value); `{ file }` paths are relative to `baseDir`. Throws AccountError.
 */
export function resolveCredentials(
  value: unknown,
  baseDir: string,
  where: (path: string) => string,
  at: string[] = [],
): unknown {
  if (Array.isArray(value)) return value.map((v, i) => resolveCredentials(v, baseDir, where, [...at, String(i)]));
  if (typeof value !== 'object' || value === null) return value;
  const ref = credentialRef(value);
  const place = where(at.join('.'));
  if (ref === 'invalid') throw new AccountError(`${place}: malformed reference`);
  if (ref && 'env' in ref) {
    const v = process.env[ref.env];
    if (v === undefined || v === '') throw new AccountError(`${place}: environment variable ${ref.env} is not set`);
    return v;
  }
  if (ref && 'file' in ref) {
    const file = path.resolve(baseDir, ref.file);
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      // The code (ENOENT, EACCES) and the path only: never the content.
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new AccountError(`${place}: cannot read file ${file} (${code})`);
    }
  }
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, resolveCredentials(v, baseDir, where, [...at, k])]),
  );
}

/** Settings minus anything that looks secret: keys like token/secret/password/cookie/key/auth, URL userinfo. */
function publicSettings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(publicSettings);
  if (typeof value === 'string') return publicUrl(value);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => !SECRET_KEY.test(k))
      .map(([k, v]) => [k, publicSettings(v)]),
  );
}

function publicUrl(value: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  let changed = false;
  if (url.username || url.password) {
    url.username = '';
    url.password = '';
    changed = true;
  }
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_KEY.test(name)) {
      url.searchParams.set(name, 'redacted');
      changed = true;
    }
  }
  return changed ? url.toString() : value;
}
