/**
 * promtool (Debian's `prometheus` package, provisioned by scripts/provision.sh): PUBFLOW_PROMTOOL, then .tools/env,
 * then PATH. Missing in CI (`CI=true`) is a failure, as a missing redis-server is; elsewhere the suites that need it
 * are skipped with a message saying how to get it.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { readToolEnv } from '../helpers/tools';

export const PROMETHEUS_DIR = path.resolve(__dirname, '../../deploy/prometheus');

const executable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

export function findPromtool(): string | undefined {
  const explicit = process.env.PUBFLOW_PROMTOOL || readToolEnv().PUBFLOW_PROMTOOL;
  if (explicit) return executable(explicit) ? explicit : undefined;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, 'promtool');
    if (dir && executable(file)) return file;
  }
  return undefined;
}

export const MISSING_PROMTOOL =
  'promtool not found: run scripts/provision.sh as root (installs Debian\'s "prometheus" package), ' +
  'apt-get install prometheus, or set PUBFLOW_PROMTOOL';

/** `describe` when promtool is here (or in CI, where its absence must fail); `describe.skip` with a note otherwise. */
export function describeWithPromtool(name: string, fn: (promtool: () => string) => void): void {
  const found = findPromtool();
  const inCi = process.env.CI === 'true' || process.env.CI === '1';
  if (!found && !inCi) {
    console.warn(`skipping "${name}": ${MISSING_PROMTOOL}`);
    describe.skip(name, () => fn(() => ''));
    return;
  }
  describe(name, () =>
    fn(() => {
      if (!found) throw new Error(MISSING_PROMTOOL);
      return found;
    }),
  );
}

export interface Run {
  code: number;
  out: string;
}

export async function runPromtool(promtool: string, args: string[], cwd = PROMETHEUS_DIR): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(promtool, args, { cwd, timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}${e.message}` };
  }
}
