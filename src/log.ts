/**
 * Every log line of every pubflow process: JSON from one pino logger per output stream. A line is
 * `{"level":"info","ts":"<ISO time>","pid":…,"hostname":…,"component":"worker",…fields,"msg":"…"}`.
 * The level comes from PUBFLOW_LOG_LEVEL (default info). The Temporal SDK's own lines (core, workflow `log`,
 * activity `Context.current().log`) reach the same logger through {@link toTemporalLogger}. Lines logged while the API
 * serves a request carry its `requestId` (src/api/request-id.ts).
 */
import pino from 'pino';
import type { Logger as TemporalLogger, LogLevel as TemporalLogLevel, LogMetadata } from '@temporalio/common';
import { currentRequest } from './interceptors/request-context';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

/** The call signature every module uses: `log.info(msg, fields?)`. A thin facade over pino. */
export interface Logger {
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  fatal(msg: string, fields?: LogFields): void;
  /** A logger whose every line also carries these fields (e.g. `{ taskId }`). */
  child(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  /** No output at all (tests). */
  silent?: boolean;
  /** Defaults to PUBFLOW_LOG_LEVEL, else info. */
  level?: LogLevel;
  /**
   * Where the lines go: stdout (the default) or stderr (the reconcile command, whose stdout is its report), or a
   * stream (tests).
   */
  destination?: 'stdout' | 'stderr' | pino.DestinationStream;
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** PUBFLOW_LOG_LEVEL; an invalid value falls back to info here (loadConfig refuses it with the variable's name). */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const v = env.PUBFLOW_LOG_LEVEL?.trim().toLowerCase();
  return v && isLogLevel(v) ? v : 'info';
}

function createRoot(destination: pino.DestinationStream): pino.Logger {
  return pino(
    {
      // Each logger sets its own level (child option below); the root lets everything through to them.
      level: 'trace',
      // A line logged while the API serves a request (an audit line, an unexpected error, a desk sign-in) carries the
      // request's id; a line's own `requestId` wins.
      mixin: () => {
        const request = currentRequest();
        return request ? { requestId: request.requestId } : {};
      },
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

// One root per output stream, made on first use. Sync writes: a line logged just before process.exit() is not lost.
const roots = new Map<'stdout' | 'stderr', pino.Logger>();
function rootFor(which: 'stdout' | 'stderr'): pino.Logger {
  let root = roots.get(which);
  if (!root) {
    root = createRoot(pino.destination({ dest: which === 'stdout' ? 1 : 2, sync: true }));
    roots.set(which, root);
  }
  return root;
}

function facade(p: pino.Logger): Logger {
  return {
    trace: (msg, fields) => p.trace(fields ?? {}, msg),
    debug: (msg, fields) => p.debug(fields ?? {}, msg),
    info: (msg, fields) => p.info(fields ?? {}, msg),
    warn: (msg, fields) => p.warn(fields ?? {}, msg),
    error: (msg, fields) => p.error(fields ?? {}, msg),
    fatal: (msg, fields) => p.fatal(fields ?? {}, msg),
    child: (bindings) => facade(p.child(bindings)),
  };
}

export function createLogger(component: string, opts: LoggerOptions = {}): Logger {
  const level: LogLevel = opts.silent ? 'silent' : (opts.level ?? logLevelFromEnv());
  const dest = opts.destination ?? 'stdout';
  const root = typeof dest === 'string' ? rootFor(dest) : createRoot(dest);
  return facade(root.child({ component }, { level }));
}

const TEMPORAL_LEVELS: Record<TemporalLogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * The SDK's metadata as fields. Activity lines name the run `workflowRunId` and workflow lines `runId`: both become
 * `runId`, so one query finds a run's lines from either side. The task token is dropped: it can complete the
 * activity, and it is long.
 */
function temporalFields(meta: LogMetadata | undefined): LogFields {
  if (!meta) return {};
  // Object.entries skips symbol keys (the SDK's LogTimestamp): pino has its own `ts`.
  const fields: LogFields = {};
  for (const [k, v] of Object.entries(meta)) fields[k] = v;
  if (fields.workflowRunId !== undefined && fields.runId === undefined) {
    fields.runId = fields.workflowRunId;
    delete fields.workflowRunId;
  }
  delete fields.taskToken;
  return fields;
}

/**
 * The SDK's Logger interface over ours, for `Runtime.install({ logger })`: workflow `log` lines (through the SDK's
 * logger sink), activity `Context.current().log` lines and the core's forwarded lines all come out as our JSON.
 */
export function toTemporalLogger(log: Logger): TemporalLogger {
  const at = (level: TemporalLogLevel, message: string, meta?: LogMetadata) =>
    log[TEMPORAL_LEVELS[level] ?? 'info'](message, temporalFields(meta));
  return {
    log: at,
    trace: (m, meta) => at('TRACE', m, meta),
    debug: (m, meta) => at('DEBUG', m, meta),
    info: (m, meta) => at('INFO', m, meta),
    warn: (m, meta) => at('WARN', m, meta),
    error: (m, meta) => at('ERROR', m, meta),
  };
}

/**
 * Ours over the SDK's (an activity's `Context.current().log`), for code that takes our Logger (the reconciler): its
 * lines keep the activity's workflowId, runId and attempt.
 */
export function fromTemporalLogger(tl: TemporalLogger, bindings: LogFields = {}): Logger {
  const at = (level: 'trace' | 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: LogFields) =>
    tl[level](msg, { ...bindings, ...fields });
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('error'),
    child: (more) => fromTemporalLogger(tl, { ...bindings, ...more }),
  };
}
