/**
 * Runs the real, built `pubflow` command (bin/pubflow -> lib/cli/index.js) as a child process, as a person or a
 * script would, and collects its exit code, stdout and stderr. The tests build nothing: `make test` builds first.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const BIN = path.join(ROOT, 'bin', 'pubflow');
const ENTRY = path.join(ROOT, 'lib', 'cli', 'index.js');

/** Fails the file at once, saying what to do, when the CLI has not been built. */
export function requireBuiltCli(): void {
  if (!existsSync(ENTRY))
    throw new Error(
      `the CLI tests run the built command, but ${ENTRY} is missing: run \`npm run build\` first (\`make test\` does it)`,
    );
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The caller's PATH and friends, none of its pubflow settings; NO_COLOR so output is plain. */
function baseEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PUBFLOW_|TEMPORAL_|REDIS_)/.test(k) || k.startsWith('JEST_') || k === 'NODE_OPTIONS') continue;
    out[k] = v;
  }
  return { ...out, NO_COLOR: '1' };
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** The command is killed (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
}

/** A running command: what it has written so far, and its end. */
export interface LiveCli {
  pid: number;
  stdout(): string;
  stderr(): string;
  done: Promise<CliRun>;
}

export function startCli(args: string[], opts: RunOptions = {}): LiveCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...baseEnv(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const done = new Promise<CliRun>((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { pid: child.pid ?? 0, stdout: () => stdout, stderr: () => stderr, done };
}

export const runCli = (args: string[], opts: RunOptions = {}): Promise<CliRun> => startCli(args, opts).done;

/** For a failed expectation: everything the command said. */
export const shown = (r: CliRun) =>
  `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
