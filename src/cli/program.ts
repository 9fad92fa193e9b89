/**
 * The `pubflow` command: every subcommand is one or two HTTP API calls (ApiClient), except `keys`, which edits the
 * local keys file through src/tools/keys.ts. Reads print a table, or JSON with --json; data goes to stdout and
 * messages to stderr; the exit codes are in errors.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import ms from 'ms';
import type { z } from 'zod';
import type {
  AccountList,
  BatchAccepted,
  PublishAccepted,
  QueueStatsSchema,
  ReactivateOutcome,
  RescheduleOutcome,
  RetryAllOutcome,
  ReviewOutcomeSchema,
  TaskPage,
  TaskListPage,
  TimelineSchema,
} from '../api/schemas';
import { ROLES } from '../auth/roles';
import { TASK_STATUSES, TASK_TYPES } from '../shared/types';
import { run as runKeys } from '../tools/keys';
import { checkBatch, explainServerIssues, loadBatchFile } from './batch-file';
import { ApiClient } from './client';
import { loadCliConfig } from './config';
import { ApiResponseError, CliError, EXIT, inputError, type ExitCode } from './errors';
import { json, paint, processIo, safe, shortTime, statusStyle, table, truncate, type Io } from './output';
import { DEFAULT_SETTLE_MS, watch, type TaskDoc } from './watch';

type Infer<T extends z.ZodType> = z.infer<T>;

// ---------------------------------------------------------------- option parsers

const intIn = (name: string, min: number, max: number) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
  return Number(v);
};
const seconds = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be seconds >= 0`);
  return n;
};
const duration = (v: string) => {
  const n = ms(v as ms.StringValue);
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('must be a duration such as 1s, 500ms or 2m');
  return n;
};
const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** ISO 8601 with an offset is sent as written; `+10m` / `in 2h` is that long from now. */
export function publishTime(v: string): string {
  const rel = /^(?:\+|in\s+)(.+)$/i.exec(v.trim());
  if (rel) {
    const n = ms(rel[1]!.trim() as ms.StringValue);
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
      throw new InvalidArgumentError(`"${v}" is not a duration (e.g. +10m, in 2h)`);
    return new Date(Date.now() + n).toISOString();
  }
  return v;
}

/** `--since` / `--until`: ISO 8601 with an offset as written; `2h` / `-2h` / `2h ago` is that long before now. */
export function pastTime(v: string): string {
  const rel = /^-?\s*(.+?)(?:\s+ago)?$/i.exec(v.trim());
  const n = rel && !/^\d{4}-/.test(v.trim()) ? ms(rel[1]!.trim() as ms.StringValue) : undefined;
  if (typeof n === 'number' && Number.isFinite(n) && n >= 0) return new Date(Date.now() - n).toISOString();
  return v;
}

// ---------------------------------------------------------------- program

interface Context {
  io: Io;
  env: NodeJS.ProcessEnv;
  client(): ApiClient;
}

const idPath = (prefix: string, id: string, suffix = '') => `${prefix}/${encodeURIComponent(id)}${suffix}`;

export function buildProgram(ctx: Context, setExit: (code: ExitCode) => void): Command {
  const { io } = ctx;
  const program = new Command('pubflow');
  program
    .description(
      'Command line for the pubflow HTTP API.\n' +
        'PUBFLOW_URL: the API (default http://127.0.0.1:3000); PUBFLOW_TOKEN: an API key (default: data/admin.token).\n' +
        'Exit codes: 0 ok, 1 the task or batch failed or was cancelled, 2 usage or input error, 3 API, auth or network error.',
    )
    .version(packageVersion(), '-V, --version')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .showHelpAfterError('(pubflow --help for usage)')
    .allowExcessArguments(false);

  /** Runs an action; its result is the exit code. */
  const act =
    <A extends unknown[]>(fn: (...args: A) => Promise<ExitCode | void>) =>
    async (...args: A) =>
      setExit((await fn(...args)) ?? EXIT.ok);

  const jsonOpt = () => new Option('--json', 'print JSON (for scripts)');

  // ------------------------------------------------------------ publishing

  program
    .command('publish')
    .description('submit one publish; prints its task id')
    .requiredOption('--platform <name>', 'platform (local, webhook, ...)')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--video <path>', 'video file, inside the media root')
    .requiredOption('--title <text>', 'title')
    .option('--description <text>', 'description')
    .option('--tags <a,b,c>', 'tags, comma-separated', list)
    .option('--cover <path>', 'cover image, inside the media root')
    .option('--publish-at <time>', 'earliest upload time: ISO 8601 with an offset, or +10m / in 2h', publishTime)
    .option('--priority <0-9>', '0 most urgent (default 5)', intIn('--priority', 0, 9))
    .option('--idempotency-key <key>', 'send it again with the same key and no second task is made')
    .option('--watch', 'then watch it to the end (exit code of the outcome)')
    .addOption(jsonOpt())
    .action(
      act(async (o: Record<string, unknown>) => {
        const body = {
          platform: o.platform,
          accountId: o.account,
          video: { path: o.video },
          title: o.title,
          description: o.description,
          tags: o.tags,
          cover: o.cover === undefined ? undefined : { path: o.cover },
          publishAt: o.publishAt,
          priority: o.priority,
        };
        const headers = o.idempotencyKey ? { 'idempotency-key': String(o.idempotencyKey) } : undefined;
        const res = await ctx.client().post<Infer<typeof PublishAccepted>>('/publish', body, { headers });
        const { taskId } = res.body;
        if (o.json && !o.watch) io.out(json(res.body));
        else io.out(taskId + '\n');
        io.err(
          res.status === 200
            ? `already submitted with this Idempotency-Key: ${taskId} (${res.body.status})\n`
            : `submitted ${taskId}; follow it with: pubflow watch ${taskId}\n`,
        );
        if (o.watch) return watchTask(ctx, taskId, { interval: 1000, json: !!o.json });
      }),
    );

  program
    .command('batch <file>')
    .description(
      'submit a batch from a CSV, JSON or YAML file; every row is checked first and nothing starts if one is bad.\n' +
        'CSV columns: accountId, platform, video, title, description, tags (a;b), publishAt, priority',
    )
    .addOption(
      new Option('--format <format>', 'file format (default: from the extension)').choices(['csv', 'json', 'yaml']),
    )
    .option('--concurrency <n>', 'uploads of this batch at once (default 50)', intIn('--concurrency', 1, 1000))
    .option('--interval <seconds>', 'seconds between the starts of two items', seconds('--interval'))
    .option('--jitter <seconds>', 'random extra seconds per start', seconds('--jitter'))
    .option('--idempotency-key <key>', 'send it again with the same key and no second batch is made')
    .option('--dry-run', 'check the file only; send nothing')
    .option('--watch', 'then watch it to the end (exit code of the outcome)')
    .addOption(jsonOpt())
    .action(
      act(async (file: string, o: Record<string, unknown>) => {
        const src = loadBatchFile(file, {
          format: o.format as string | undefined,
          concurrency: o.concurrency as number | undefined,
          intervalSeconds: o.interval as number | undefined,
          jitterSeconds: o.jitter as number | undefined,
        });
        const problems = checkBatch(src);
        const n = src.body.items.length;
        if (problems.length)
          throw inputError(
            `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was sent`,
            problems,
          );
        if (o.dryRun) {
          io.err(`${file}: ${n} item${n === 1 ? '' : 's'}, all valid (nothing sent)\n`);
          return;
        }
        const headers = o.idempotencyKey ? { 'idempotency-key': String(o.idempotencyKey) } : undefined;
        let res;
        try {
          res = await ctx.client().post<Infer<typeof BatchAccepted>>('/publish/batch', src.body, { headers });
        } catch (err) {
          if (err instanceof ApiResponseError && err.status === 400 && err.issues.length)
            throw inputError(
              `${file}: the API refused the batch; nothing was started`,
              explainServerIssues(src, err.issues),
            );
          throw err;
        }
        const { taskId, total } = res.body;
        if (o.json && !o.watch) io.out(json(res.body));
        else io.out(taskId + '\n');
        io.err(
          res.status === 200
            ? `already submitted with this Idempotency-Key: ${taskId}\n`
            : `started batch ${taskId} with ${total} item${total === 1 ? '' : 's'}; follow it with: pubflow watch ${taskId}\n`,
        );
        if (o.watch) return watchTask(ctx, taskId, { interval: 1000, json: !!o.json });
      }),
    );

  // ------------------------------------------------------------ reading tasks

  program
    .command('status <id>')
    .description('one task or batch, as GET /tasks/:id shows it')
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: { json?: boolean }) => {
        const doc = await ctx.client().get<TaskDoc>(idPath('/tasks', id));
        io.out(o.json ? json(doc) : describeTask(doc, io.color && io.outTty));
      }),
    );

  program
    .command('watch <id>')
    .description('follow a task or batch to its end with a live progress bar; exit 0 on success, 1 otherwise')
    .option('--interval <duration>', 'how often to ask (default 1s)', duration, 1000)
    .option(
      '--settle <duration>',
      'a "failed" is the outcome once it has held this long (default 2s): right after retry or retry-all it is not',
      duration,
      DEFAULT_SETTLE_MS,
    )
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: { interval: number; settle: number; json?: boolean }) =>
        watchTask(ctx, id, { interval: o.interval, settle: o.settle, json: !!o.json }),
      ),
    );

  program
    .command('tasks')
    .description(
      'list tasks, newest first; --platform, --account, --since, --until and --search scan at most 2,000 tasks ' +
        'per page (--cursor goes on)',
    )
    .addOption(new Option('--status <status>', 'only this status').choices(TASK_STATUSES))
    .addOption(new Option('--type <type>', 'only this type').choices(TASK_TYPES))
    .option('--batch <batchId>', "only this batch's items (the API's ?parent=)")
    .option('--platform <name>', 'only this platform')
    .option('--account <id>', 'only this account')
    .option('--since <time>', 'from this time: ISO 8601 with an offset, or 2h (ago)', pastTime)
    .option('--until <time>', 'up to this time: ISO 8601 with an offset, or 30m (ago)', pastTime)
    .addOption(
      new Option('--time <which>', 'which time --since/--until and the order use (default created)').choices([
        'created',
        'updated',
      ]),
    )
    .option('--search <text>', 'a task id, or part of a task id or title')
    .option('--cursor <next>', 'go on where the previous page stopped (its "next")')
    .option('--limit <n>', 'at most this many (default 50)', intIn('--limit', 1, 1000))
    .option('--offset <n>', 'skip this many (not with the scan filters)', intIn('--offset', 0, Number.MAX_SAFE_INTEGER))
    .addOption(jsonOpt())
    .action(
      act(async (o: Record<string, string | number | boolean | undefined>) => {
        const page = await ctx.client().get<Infer<typeof TaskListPage>>('/tasks', {
          status: o.status as string,
          type: o.type as string,
          parent: o.batch as string,
          platform: o.platform as string,
          accountId: o.account as string,
          since: o.since as string,
          until: o.until as string,
          time: o.time as string,
          search: o.search as string,
          cursor: o.cursor as string,
          limit: o.limit as number,
          offset: o.offset as number,
        });
        if (o.json) return void io.out(json(page));
        const color = io.color && io.outTty;
        io.out(
          table(
            ['ID', 'TYPE', 'STATUS', 'ACCOUNT', 'WHAT', 'UPDATED'],
            page.items.map((d) => [
              safe(d.task_id),
              d.task_type === 'batch_publish' ? 'batch' : 'publish',
              paint(color, statusStyle(d.status), d.status),
              safe(d.account_id ?? ''),
              truncate(what(d), 60),
              shortTime(d.updated_at),
            ]),
          ),
        );
        if (page.total !== null) io.err(`${page.items.length} of ${page.total}\n`);
        else
          io.err(
            `${page.items.length} found, ${page.scanned ?? 0} tasks looked at` +
              (page.next ? `; more: --cursor ${page.next}\n` : '; that is all\n'),
          );
      }),
    );

  program
    .command('timeline <id>')
    .description("a task's attempts (error kind, message, evidence), reviews and decisions, from Temporal's history")
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: { json?: boolean }) => {
        const t = await ctx.client().get<Infer<typeof TimelineSchema>>(idPath('/tasks', id, '/timeline'));
        if (o.json) return void io.out(json(t));
        io.out(
          table(
            ['WHEN', 'WHAT', 'WHO', 'DETAIL'],
            t.entries.map((e) => [
              shortTime(e.at),
              safe(
                e.type === 'attempt'
                  ? `attempt ${e.attempt ?? '?'} ${e.outcome ?? ''}${e.error_kind ? ` ${e.error_kind}` : ''}: ${e.title ?? ''}`
                  : e.type === 'review_closed'
                    ? `review closed: ${e.action ?? ''}${e.patched?.length ? ` (${e.patched.join(', ')})` : ''}`
                    : e.type === 'review_opened'
                      ? `review opened: ${e.error_kind ?? ''}`
                      : e.type === 'auto_retry'
                        ? `automatic retry in ${e.delay_seconds ?? 0}s`
                        : e.type === 'finished'
                          ? `finished: ${e.status ?? ''}`
                          : (e.action ?? ''),
              ),
              safe(e.by ? `${e.by} (${e.role ?? ''})` : ''),
              truncate(safe([e.message, e.evidence, e.url, e.note].filter(Boolean).join(' · ')), 80),
            ]),
          ),
        );
        if (!t.fromHistory) io.err("Temporal no longer has this run: only the document's decisions are shown\n");
      }),
    );

  program
    .command('stats')
    .description('how many tasks are in each status')
    .addOption(jsonOpt())
    .action(
      act(async (o: { json?: boolean }) => {
        const s = await ctx.client().get<Infer<typeof QueueStatsSchema>>('/tasks/stats');
        if (o.json) return void io.out(json(s));
        io.out(
          table(
            ['STATUS', 'TASKS'],
            Object.entries(s).map(([k, v]) => [k, String(v)]),
          ),
        );
      }),
    );

  // ------------------------------------------------------------ acting on tasks

  program
    .command('cancel <id>')
    .description('cancel a pending, running or in-review task (or a whole batch)')
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: { json?: boolean }) => {
        const res = await ctx.client().post<{ taskId: string; status: string }>(idPath('/tasks', id, '/cancel'));
        io.out(o.json ? json(res.body) : `${safe(res.body.taskId)} ${res.body.status}\n`);
      }),
    );

  program
    .command('reschedule <id>')
    .description('move the publish time of a task still waiting for it')
    .requiredOption('--at <time>', 'ISO 8601 with an offset (2026-12-01T09:00:00+08:00), or +10m / in 2h', publishTime)
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: { at: string; json?: boolean }) => {
        const res = await ctx
          .client()
          .post<Infer<typeof RescheduleOutcome>>(idPath('/tasks', id, '/reschedule'), { publishAt: o.at });
        io.out(o.json ? json(res.body) : `${safe(res.body.taskId)} scheduled for ${res.body.scheduled_for}\n`);
      }),
    );

  // ------------------------------------------------------------ reviews

  const reviewFilters = (c: Command) =>
    c
      .option('--platform <name>', 'only this platform')
      .option('--account <id>', 'only this account')
      .option('--kind <kind>', 'only this error kind (Unconfirmed, AuthExpired, ...)')
      .option('--batch <batchId>', 'only items of this batch');

  reviewFilters(
    program.command('reviews').description('open reviews (failed tasks waiting for a person), newest first'),
  )
    .option('--limit <n>', 'at most this many (default 50)', intIn('--limit', 1, 1000))
    .option('--offset <n>', 'skip this many', intIn('--offset', 0, Number.MAX_SAFE_INTEGER))
    .addOption(jsonOpt())
    .action(
      act(async (o: Record<string, string | number | boolean | undefined>) => {
        const page = await ctx.client().get<Infer<typeof TaskPage>>('/reviews', {
          platform: o.platform as string,
          accountId: o.account as string,
          kind: o.kind as string,
          batchId: o.batch as string,
          limit: o.limit as number,
          offset: o.offset as number,
        });
        if (o.json) return void io.out(json(page));
        io.out(
          table(
            ['ID', 'ACCOUNT', 'KIND', 'ATTEMPT', 'FAILED', 'MESSAGE'],
            page.items.map((d) => [
              safe(d.task_id),
              safe(d.account_id ?? ''),
              d.review?.kind ?? d.error_kind ?? '',
              String(d.review?.attempt ?? d.attempt),
              shortTime(d.review?.failed_at),
              truncate(safe(d.review?.message ?? d.error_message ?? ''), 80),
            ]),
          ),
        );
        io.err(`${page.items.length} of ${page.total}\n`);
      }),
    );

  program
    .command('retry <id>')
    .description('run the upload of a task in review again, as its next attempt (optionally with corrected fields)')
    .option('--title <text>', 'corrected title')
    .option('--description <text>', 'corrected description')
    .option('--tags <a,b,c>', 'corrected tags, comma-separated', list)
    .option('--account <id>', 'publish to this account instead')
    .option('--video <path>', 'another video file')
    .option('--note <text>', 'why (kept with the review)')
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: Record<string, unknown>) => {
        const patch = {
          title: o.title,
          description: o.description,
          tags: o.tags,
          accountId: o.account,
          video: o.video === undefined ? undefined : { path: o.video },
        };
        const hasPatch = Object.values(patch).some((v) => v !== undefined);
        const res = await ctx.client().post<Infer<typeof ReviewOutcomeSchema>>(idPath('/reviews', id, '/retry'), {
          patch: hasPatch ? patch : undefined,
          note: o.note,
        });
        io.out(
          o.json
            ? json(res.body)
            : `${safe(res.body.taskId)} retrying: attempt ${res.body.attempt + 1} (attempt ${res.body.attempt} was in review)\n`,
        );
      }),
    );

  program
    .command('resolve <id>')
    .description('mark a task in review as published by hand; it becomes success')
    .requiredOption('--url <url>', 'where it was published (http or https)')
    .option('--note <text>', 'why (kept with the review)')
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: { url: string; note?: string; json?: boolean }) => {
        const res = await ctx
          .client()
          .post<Infer<typeof ReviewOutcomeSchema>>(idPath('/reviews', id, '/resolve'), { url: o.url, note: o.note });
        io.out(o.json ? json(res.body) : `${safe(res.body.taskId)} resolved (attempt ${res.body.attempt})\n`);
      }),
    );

  program
    .command('discard <id>')
    .description('close the review of a task; it stays failed')
    .option('--note <text>', 'why (kept with the review)')
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: { note?: string; json?: boolean }) => {
        const res = await ctx
          .client()
          .post<Infer<typeof ReviewOutcomeSchema>>(idPath('/reviews', id, '/discard'), { note: o.note });
        io.out(o.json ? json(res.body) : `${safe(res.body.taskId)} discarded (attempt ${res.body.attempt})\n`);
      }),
    );

  reviewFilters(
    program
      .command('retry-all')
      .description('retry every open review that matches the filters (--all for every open review)'),
  )
    .option('--all', 'no filter: retry every open review')
    .option('--note <text>', 'why (kept with each review)')
    .addOption(jsonOpt())
    .action(
      act(async (o: Record<string, string | boolean | undefined>) => {
        const filter = {
          platform: o.platform as string | undefined,
          accountId: o.account as string | undefined,
          kind: o.kind as string | undefined,
          batchId: o.batch as string | undefined,
        };
        const filtered = Object.values(filter).some((v) => v !== undefined);
        if (!filtered && !o.all)
          throw inputError('retry-all: give a filter (--batch, --platform, --account, --kind) or --all');
        if (filtered && o.all) throw inputError('retry-all: --all cannot be combined with a filter');
        const res = await ctx
          .client()
          .post<Infer<typeof RetryAllOutcome>>('/reviews/retry-all', { ...filter, note: o.note });
        const r = res.body;
        if (o.json) io.out(json(r));
        else {
          io.out(`retried ${r.retried} of ${r.matched} matching review${r.matched === 1 ? '' : 's'}\n`);
          for (const f of r.failed) io.err(`  ${safe(f.taskId)}: ${f.code}: ${safe(f.message)}\n`);
        }
        return r.failed.length ? EXIT.outcome : EXIT.ok;
      }),
    );

  // ------------------------------------------------------------ accounts

  program
    .command('accounts')
    .description('accounts (without credentials) and whether they need a new login')
    .addOption(jsonOpt())
    .action(
      act(async (o: { json?: boolean }) => {
        const { items } = await ctx.client().get<Infer<typeof AccountList>>('/accounts');
        if (o.json) return void io.out(json({ items }));
        const color = io.color && io.outTty;
        io.out(
          table(
            ['ID', 'PLATFORM', 'NAME', 'STATUS', 'SINCE'],
            items.map((a) => [
              safe(a.id),
              safe(a.platform),
              safe(a.displayName),
              paint(color, a.status === 'active' ? 'green' : a.status === 'needs_login' ? 'red' : 'dim', a.status),
              shortTime(a.needsLogin?.since),
            ]),
          ),
        );
      }),
    );

  program
    .command('reactivate <id>')
    .description("after a new login: run the account's held queue again")
    .addOption(jsonOpt())
    .action(
      act(async (id: string, o: { json?: boolean }) => {
        const res = await ctx.client().post<Infer<typeof ReactivateOutcome>>(idPath('/accounts', id, '/reactivate'));
        const r = res.body;
        io.out(
          o.json
            ? json(r)
            : `${safe(r.accountId)} ${r.status}; ${r.waiting} task${r.waiting === 1 ? '' : 's'} waiting\n`,
        );
      }),
    );

  // ------------------------------------------------------------ keys (local file)

  const keys = program
    .command('keys')
    .description('API keys in the local keys file (--file, else PUBFLOW_API_KEYS_FILE, else data/api-keys.json)');
  const fileOpt = () => new Option('--file <file>', 'the keys file');
  keys
    .command('create')
    .description('make a key; prints its token once, on stdout')
    .requiredOption('--name <name>', 'who or what uses it')
    .addOption(new Option('--role <role>', 'what it may do').choices(ROLES).makeOptionMandatory())
    .addOption(fileOpt())
    .action(
      act(async (o: { name: string; role: string; file?: string }) =>
        keysCommand(['create', '--name', o.name, '--role', o.role, ...(o.file ? ['--file', o.file] : [])]),
      ),
    );
  keys
    .command('list')
    .description('names and roles (never tokens)')
    .addOption(fileOpt())
    .addOption(jsonOpt())
    .action(
      act(async (o: { file?: string; json?: boolean }) =>
        keysCommand(['list', ...(o.file ? ['--file', o.file] : []), ...(o.json ? ['--json'] : [])]),
      ),
    );
  keys
    .command('revoke')
    .description('remove a key; the API stops accepting it')
    .requiredOption('--name <name>', 'the key to remove')
    .addOption(fileOpt())
    .action(
      act(async (o: { name: string; file?: string }) =>
        keysCommand(['revoke', '--name', o.name, ...(o.file ? ['--file', o.file] : [])]),
      ),
    );

  // ------------------------------------------------------------ setup (talks to Temporal, not the API)

  program
    .command('setup')
    .description(
      'create or check the Temporal namespace (retention) and search attributes; prints what it changed. ' +
        'Connects like the worker: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*, TEMPORAL_API_KEY, TEMPORAL_PROFILE',
    )
    .option('--namespace <name>', 'namespace (default TEMPORAL_NAMESPACE, else default)')
    .option('--retention <duration>', 'workflow retention, at least 1d (default PUBFLOW_RETENTION, else 7d)')
    .option('--check', 'change nothing; exit 1 if something would change')
    .addOption(jsonOpt())
    .action(
      act(async (o: { namespace?: string; retention?: string; check?: boolean; json?: boolean }) => {
        const { runSetup } = await import('../setup/run');
        return (await runSetup(o, io, ctx.env)) as ExitCode;
      }),
    );

  return program;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** src/tools/keys.ts does the work (and prints); its errors are input errors (a bad name, a broken file). */
function keysCommand(args: string[]): ExitCode {
  try {
    return runKeys(args) === 0 ? EXIT.ok : EXIT.input;
  } catch (err) {
    throw inputError(`keys: ${(err as Error).message}`);
  }
}

async function watchTask(
  ctx: Context,
  id: string,
  o: { interval: number; json: boolean; settle?: number },
): Promise<ExitCode> {
  return watch(ctx.client(), ctx.io, id, {
    intervalMs: o.interval,
    giveUpMs: 30_000,
    json: o.json,
    settleMs: o.settle,
  });
}

/** The title of a publish, or the counts of a batch. */
function what(d: TaskDoc): string {
  if (d.counts) {
    const c = d.counts;
    return `${c.success + c.failed + c.cancelled}/${c.total} done (${c.success} ok, ${c.failed} failed)`;
  }
  return safe((d.data as { title?: string }).title ?? '');
}

export function describeTask(d: TaskDoc, color: boolean): string {
  const rows: Array<[string, string]> = [
    ['id', safe(d.task_id)],
    ['type', d.task_type],
    ['status', paint(color, statusStyle(d.status), d.status)],
  ];
  if (d.parent_task_id) rows.push(['batch', safe(d.parent_task_id)]);
  if (d.platform) rows.push(['platform', safe(d.platform)]);
  if (d.account_id) rows.push(['account', safe(d.account_id)]);
  const title = (d.data as { title?: string }).title;
  if (title !== undefined) rows.push(['title', safe(title)]);
  if (d.counts) {
    const c = d.counts;
    rows.push([
      'counts',
      `total ${c.total}, success ${c.success}, failed ${c.failed}, cancelled ${c.cancelled}, running ${c.running}, pending ${c.pending}`,
    ]);
  }
  if (d.progress) rows.push(['progress', `${d.progress.percent}% ${safe(d.progress.stage)}`]);
  rows.push(['attempt', String(d.attempt)], ['priority', String(d.priority)]);
  if (d.scheduled_for) rows.push(['scheduled', shortTime(d.scheduled_for)]);
  rows.push(['created', shortTime(d.created_at)], ['updated', shortTime(d.updated_at)]);
  if (d.completed_at) rows.push(['completed', shortTime(d.completed_at)]);
  if (d.result?.url || d.result?.postId) rows.push(['result', safe(d.result.url ?? d.result.postId)]);
  if (d.error_message) rows.push(['error', `${d.error_kind ?? ''} ${safe(d.error_message)}`.trim()]);
  if (d.review) {
    const r = d.review;
    rows.push([
      'review',
      r.open
        ? `open: ${r.kind}, attempt ${r.attempt}; expires ${shortTime(r.expires_at)}`
        : `closed: ${r.decision ?? ''} ${shortTime(r.decided_at)}`.trim(),
    ]);
    if (r.note) rows.push(['note', safe(r.note)]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n';
}

/** Runs the CLI; resolves to the exit code. */
export async function main(
  argv: string[],
  io: Io = processIo(),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let code: ExitCode = EXIT.ok;
  let client: ApiClient | undefined;
  const ctx: Context = { io, env, client: () => (client ??= new ApiClient(loadCliConfig(env))) };
  const program = buildProgram(ctx, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are 0; everything else commander refuses is a usage error (it has said why).
      return err.exitCode === 0 ? EXIT.ok : EXIT.input;
    }
    if (err instanceof CliError) {
      io.err(`pubflow: ${err.message}\n`);
      for (const line of err.lines) io.err(`  ${line}\n`);
      return err.exitCode;
    }
    io.err(`pubflow: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.api;
  }
}
