/**
 * The event subscriptions: PUBFLOW_EVENTS_FILE (JSON, or YAML for .yaml/.yml), validated once at start-up.
 *
 *   [{ "id"?, "url", "secret": <credential>, "events": ["review.opened", ...], "format"?: "json" | "slack" }]
 *
 * `secret` is a credential as in the accounts file (a string, { "env": "VAR" } or { "file": "path" }, relative to
 * the events file), resolved when a delivery is signed (a rotated secret is used without a restart) and once at
 * start-up, so a missing variable or file stops the worker at once. It never reaches a workflow input or a log.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AccountError, checkCredentials, resolveCredentials } from '../platforms/accounts';
import { EVENT_TYPES, type EventType } from './types';

/** A broken events file; never carries a secret's value. */
export class EventsConfigError extends Error {
  override readonly name = 'EventsConfigError';
}

export interface Subscription {
  /** Given, or derived from the URL and format: part of each delivery's workflow id, so keep it stable. */
  id: string;
  url: string;
  events: ReadonlySet<EventType>;
  format: 'json' | 'slack';
}

const SubscriptionSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 letters, digits, ".", "_" or "-"')
      .optional(),
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    secret: z.custom<unknown>((v) => v !== undefined && v !== null && v !== '', {
      error: 'is required (a string, {"env": "VAR"} or {"file": "path"})',
    }),
    events: z
      .array(z.enum(EVENT_TYPES, { error: `must be one of ${EVENT_TYPES.join(', ')}` }))
      .min(1, 'must name at least one event'),
    format: z.enum(['json', 'slack'], { error: 'must be "json" or "slack"' }).optional(),
  })
  .superRefine((s, ctx) => {
    if (typeof s.secret === 'object' && s.secret !== null && !('env' in s.secret) && !('file' in s.secret)) {
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message: 'must be a string, {"env": "VAR"} or {"file": "path"}',
      });
      return;
    }
    const issues: Array<{ path: (string | number)[]; message: string }> = [];
    checkCredentials(s.secret, ['secret'], issues);
    for (const i of issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
  });

const derivedId = (url: string, format: string) =>
  createHash('sha256').update(`${url}\n${format}`).digest('hex').slice(0, 12);

function describeIssue(issue: { path: PropertyKey[]; message: string }): string {
  const [index, ...field] = issue.path;
  if (typeof index !== 'number') return issue.message;
  const fieldName = field.length > 0 ? field.map(String).join('.') : '(subscription)';
  return `subscription at index ${index}, field "${fieldName}": ${issue.message}`;
}

export class SubscriptionRegistry {
  private readonly byId: ReadonlyMap<string, Subscription>;
  private readonly secrets: ReadonlyMap<string, unknown>;

  constructor(
    subscriptions: ReadonlyArray<Subscription & { secret: unknown }>,
    private readonly baseDir: string,
  ) {
    this.byId = new Map(subscriptions.map((s) => [s.id, s]));
    this.secrets = new Map(subscriptions.map((s) => [s.id, s.secret]));
  }

  list(): Subscription[] {
    return [...this.byId.values()];
  }

  get(id: string): Subscription | undefined {
    return this.byId.get(id);
  }

  /** The subscriptions that want this type of event. */
  wanting(type: EventType): Subscription[] {
    return this.list().filter((s) => s.events.has(type));
  }

  /** The signing secret, read now. Call only inside activities; never log it. */
  secret(id: string): string {
    const value = resolveCredentials(this.secrets.get(id), this.baseDir, () => `event subscription "${id}", secret`);
    if (typeof value !== 'string' || value === '')
      throw new EventsConfigError(`event subscription "${id}", secret: must resolve to a non-empty string`);
    return value;
  }
}

/** Load and validate the events file; throws an EventsConfigError naming the file, the index and the field. */
export function loadSubscriptions(file: string): SubscriptionRegistry {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new EventsConfigError(
      `cannot read events file ${absolute} (PUBFLOW_EVENTS_FILE): ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  const yaml = /\.ya?ml$/i.test(absolute);
  let raw: unknown;
  try {
    raw = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new EventsConfigError(
      `events file ${absolute} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
    );
  }
  const parsed = z.array(SubscriptionSchema, { error: 'must be a list of subscriptions' }).safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${describeIssue(i)}`);
    throw new EventsConfigError(`invalid events file ${absolute} (PUBFLOW_EVENTS_FILE):\n${lines.join('\n')}`);
  }
  const subs = parsed.data.map((s) => {
    const format = s.format ?? 'json';
    return { id: s.id ?? derivedId(s.url, format), url: s.url, events: new Set(s.events), format, secret: s.secret };
  });
  const problems: string[] = [];
  const seen = new Map<string, number>();
  subs.forEach((s, i) => {
    const first = seen.get(s.id);
    if (first !== undefined)
      problems.push(
        `  subscription at index ${i}, field "id": duplicate id "${s.id}" (first at index ${first}; give each its own "id")`,
      );
    else seen.set(s.id, i);
  });
  const registry = new SubscriptionRegistry(subs, path.dirname(absolute));
  // Resolved once now so that an unset variable or a missing file stops the worker at start-up, not at the first event.
  subs.forEach((s, i) => {
    try {
      registry.secret(s.id);
    } catch (err) {
      if (!(err instanceof AccountError || err instanceof EventsConfigError)) throw err;
      problems.push(`  subscription at index ${i}, field "secret": ${err.message}`);
    }
  });
  if (problems.length > 0)
    throw new EventsConfigError(`invalid events file ${absolute} (PUBFLOW_EVENTS_FILE):\n${problems.join('\n')}`);
  return registry;
}
