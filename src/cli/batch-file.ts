/**
 * A batch file for `pubflow batch <file>`: CSV, JSON or YAML, turned into the body of POST /publish/batch and checked
 * with the API's own schemas before anything is sent, so a bad row starts nothing and is named by row and column.
 *
 * CSV: a header row with the columns accountId, platform, video, title, description, tags, publishAt, priority (any
 * order, case-insensitive; accountId, platform, video and title are required). `video` is a path inside the media
 * root; `tags` are separated by `;` (or `,` inside a quoted cell); an empty cell means "not set".
 * JSON / YAML: the API's batch body (`{items, defaults, concurrency, spacing}`) or a plain list of items; `video`
 * and `cover` may be a path string instead of `{path}`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { BatchBody, PublishBody } from '../api/schemas';
import { parseCsv, CsvSyntaxError } from './csv';
import { inputError, type FieldIssue } from './errors';

export type BatchFormat = 'csv' | 'json' | 'yaml';

export const CSV_COLUMNS = [
  'accountId',
  'platform',
  'video',
  'title',
  'description',
  'tags',
  'publishAt',
  'priority',
] as const;
type Column = (typeof CSV_COLUMNS)[number];
const REQUIRED_COLUMNS: readonly Column[] = ['accountId', 'platform', 'video', 'title'];

/** The request body, and how to name an item and a field of it to the person who wrote the file. */
export interface BatchSource {
  file: string;
  format: BatchFormat;
  body: { items: Record<string, unknown>[] } & Record<string, unknown>;
  /** "row 3 (line 4)" for CSV, "items[2]" for JSON and YAML. */
  itemLabel(index: number): string;
  /** "column title" for CSV, "title" / "video.path" for JSON and YAML. */
  fieldLabel(index: number, field: string): string;
  /** Problems found while reading the file (a CSV row's cell count, a priority that is not a number), by item. */
  preIssues?: Map<number, FieldIssue[]>;
}

export interface BatchOverrides {
  concurrency?: number;
  intervalSeconds?: number;
  jitterSeconds?: number;
}

export function formatOf(file: string, explicit?: string): BatchFormat {
  const f = (explicit ?? path.extname(file).slice(1)).toLowerCase();
  if (f === 'csv' || f === 'json') return f;
  if (f === 'yaml' || f === 'yml') return 'yaml';
  throw inputError(`${file}: cannot tell the format from the name; use a .csv, .json or .yaml file, or --format`);
}

export function loadBatchFile(file: string, opts: { format?: string } & BatchOverrides = {}): BatchSource {
  const format = formatOf(file, opts.format);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw inputError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const src = format === 'csv' ? fromCsv(file, text) : fromDocument(file, format, text);
  if (opts.concurrency !== undefined) src.body.concurrency = opts.concurrency;
  if (opts.intervalSeconds !== undefined || opts.jitterSeconds !== undefined) {
    const spacing = (src.body.spacing ?? {}) as Record<string, unknown>;
    src.body.spacing = {
      ...spacing,
      ...(opts.intervalSeconds !== undefined ? { intervalSeconds: opts.intervalSeconds } : {}),
      ...(opts.jitterSeconds !== undefined ? { jitterSeconds: opts.jitterSeconds } : {}),
    };
  }
  return src;
}

// ---------------------------------------------------------------- CSV

function fromCsv(file: string, text: string): BatchSource {
  let records;
  try {
    records = parseCsv(text);
  } catch (err) {
    if (err instanceof CsvSyntaxError) throw inputError(`${file}: ${err.message}`);
    throw err;
  }
  const [header, ...rows] = records;
  if (!header) throw inputError(`${file}: empty; the first line must name the columns: ${CSV_COLUMNS.join(',')}`);
  const columns: Column[] = [];
  const problems: string[] = [];
  header.fields.forEach((name, i) => {
    const col = CSV_COLUMNS.find((c) => c.toLowerCase() === name.trim().toLowerCase());
    if (!col) problems.push(`column ${i + 1} "${name}": unknown; the columns are ${CSV_COLUMNS.join(', ')}`);
    else if (columns.includes(col)) problems.push(`column ${i + 1} "${name}": appears twice`);
    if (col) columns.push(col);
  });
  const missing = REQUIRED_COLUMNS.filter((c) => !columns.includes(c));
  if (missing.length) problems.push(`missing column${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  if (problems.length) throw inputError(`${file}: the header (line ${header.line}) is not valid`, problems);
  if (rows.length === 0) throw inputError(`${file}: no rows after the header`);

  const rowLabel = (i: number) => `row ${i + 1} (line ${rows[i]?.line ?? '?'})`;
  const preIssues = new Map<number, FieldIssue[]>();
  const items = rows.map((row, i) => {
    const item: Record<string, unknown> = {};
    const issues: FieldIssue[] = [];
    if (row.fields.length !== columns.length)
      issues.push({
        field: '',
        message: `has ${row.fields.length} cell${row.fields.length === 1 ? '' : 's'}, the header has ${columns.length}`,
      });
    columns.forEach((col, c) => {
      const raw = row.fields[c];
      if (raw === undefined) return;
      // Titles and descriptions are kept as written; the other cells are names, paths, times and numbers.
      const cell = col === 'title' || col === 'description' ? raw : raw.trim();
      if (cell === '') return;
      switch (col) {
        case 'video':
          item.video = { path: cell };
          break;
        case 'tags':
          item.tags = cell
            .split(/[;,]/)
            .map((t) => t.trim())
            .filter((t) => t !== '');
          break;
        case 'priority':
          if (/^\d+$/.test(cell)) item.priority = Number(cell);
          else issues.push({ field: 'priority', message: `must be a whole number from 0 to 9, not "${cell}"` });
          break;
        default:
          item[col] = cell;
      }
    });
    if (issues.length) preIssues.set(i, issues);
    return item;
  });
  return {
    file,
    format: 'csv',
    body: { items },
    itemLabel: rowLabel,
    fieldLabel: (_i, field) => `column ${columnOf(field)}`,
    preIssues,
  };
}

/** `video.path` -> `video`, `tags[2]` -> `tags`. */
const columnOf = (field: string) => field.split(/[.[]/)[0] ?? field;

// ---------------------------------------------------------------- JSON / YAML

function fromDocument(file: string, format: 'json' | 'yaml', text: string): BatchSource {
  let doc: unknown;
  try {
    doc = format === 'json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw inputError(`${file}: not valid ${format.toUpperCase()}: ${(err as Error).message}`);
  }
  const body: Record<string, unknown> = Array.isArray(doc)
    ? { items: doc }
    : typeof doc === 'object' && doc !== null
      ? { ...(doc as Record<string, unknown>) }
      : {};
  if (!Array.isArray(body.items))
    throw inputError(`${file}: must be a list of items, or an object with "items" (the API's batch body)`);
  body.items = (body.items as unknown[]).map(fileRefs);
  if (body.defaults !== undefined) body.defaults = fileRefs(body.defaults);
  return {
    file,
    format,
    body: body as BatchSource['body'],
    itemLabel: (i) => `items[${i}]`,
    fieldLabel: (_i, field) => field || '(item)',
  };
}

/** `video: "a.mp4"` is taken for `video: {path: "a.mp4"}` (and `cover` likewise). */
function fileRefs(item: unknown): unknown {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return item;
  const out = { ...(item as Record<string, unknown>) };
  for (const k of ['video', 'cover']) if (typeof out[k] === 'string') out[k] = { path: out[k] };
  return out;
}

// ---------------------------------------------------------------- checking

const issueMessage = (i: z.core.$ZodIssue): string =>
  i.code === 'invalid_type' && /received undefined$/.test(i.message) ? 'is required' : i.message;

function fieldOf(issuePath: readonly PropertyKey[]): string {
  let out = '';
  for (const p of issuePath) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out;
}

/** Lines naming every problem of the batch, checked as the API will check it; empty when it is fine. */
export function checkBatch(src: BatchSource): string[] {
  const lines: string[] = [];
  const top = BatchBody.safeParse(src.body);
  if (!top.success) {
    for (const issue of top.error.issues) {
      const [head, index] = issue.path;
      // Item problems are reported below, per item, after the defaults are merged in.
      if (head === 'items' && typeof index === 'number') continue;
      const field = fieldOf(issue.path) || '(body)';
      lines.push(`${flagOf(field) ?? field}: ${issueMessage(issue)}`);
    }
  }
  const defaults = top.success ? top.data.defaults : {};
  const pre = src.preIssues;
  src.body.items.forEach((item, i) => {
    const issues: FieldIssue[] = [...(pre?.get(i) ?? [])];
    const known = new Set(issues.map((x) => x.field));
    const r =
      typeof item === 'object' && item !== null && !Array.isArray(item)
        ? PublishBody.safeParse({ ...defaults, ...item })
        : null;
    if (r === null) issues.push({ field: '', message: 'must be an object' });
    else if (!r.success)
      for (const issue of r.error.issues) {
        const field = fieldOf(issue.path);
        if (!known.has(field)) issues.push({ field, message: issueMessage(issue) });
      }
    for (const x of issues) lines.push(describe(src, i, x.field, x.message));
  });
  return lines;
}

function describe(src: BatchSource, index: number, field: string, message: string): string {
  const item = src.itemLabel(index);
  if (!field) return `${item}: ${message}`;
  return src.format === 'csv' ? `${item}, ${src.fieldLabel(index, field)}: ${message}` : `${item}.${field}: ${message}`;
}

/** `concurrency` -> `--concurrency` when the CLI flag set it. */
function flagOf(field: string): string | undefined {
  if (field === 'concurrency') return 'concurrency (--concurrency or the file)';
  if (field.startsWith('spacing.interval')) return 'spacing.intervalSeconds (--interval or the file)';
  if (field.startsWith('spacing.jitter')) return 'spacing.jitterSeconds (--jitter or the file)';
  return undefined;
}

/** The API's 400 details (`items[3].video.path`) in the file's own terms (row 4, column video). */
export function explainServerIssues(src: BatchSource, issues: FieldIssue[]): string[] {
  return issues.map(({ field, message }) => {
    const m = /^items\[(\d+)\]\.?(.*)$/.exec(field);
    if (!m) return `${field}: ${message}`;
    return describe(src, Number(m[1]), m[2] ?? '', message);
  });
}
