/**
 * The `pubflow setup` command (src/cli/program.ts) and `node lib/setup/run.js` (scripts/up.sh, the cluster scripts,
 * the admin-tools container): connects with the same environment configuration as the worker and the API
 * (src/connections.ts), runs setupTemporal and prints what it changed.
 * Exit codes: 0 done (or, with --check, nothing to change), 1 --check found changes to make, 2 bad arguments or
 * a conflict that needs a person (a search attribute of another type), 3 Temporal could not be reached.
 */
import { parseDuration } from '../config';
import { connectTemporalClient, loadTemporalTarget } from '../connections';
import { describeReport, SetupError, setupTemporal, type SetupReport } from './setup';

export const DEFAULT_RETENTION = '7d';

export interface SetupArgs {
  namespace?: string;
  retention?: string;
  check?: boolean;
  json?: boolean;
}

export interface SetupIo {
  out(text: string): void;
  err(text: string): void;
}

export async function runSetup(args: SetupArgs, io: SetupIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let retentionMs: number;
  try {
    retentionMs = parseDuration(args.retention ?? env.PUBFLOW_RETENTION ?? DEFAULT_RETENTION);
  } catch (err) {
    io.err(`pubflow setup: --retention: ${(err as Error).message}\n`);
    return 2;
  }
  let target;
  try {
    target = loadTemporalTarget(env);
  } catch (err) {
    io.err(`pubflow setup: Temporal configuration: ${(err as Error).message}\n`);
    return 2;
  }
  const namespace = args.namespace ?? target.namespace;
  const where = `${target.address} (tls ${target.summary.tls}${target.summary.apiKey ? ', api key' : ''})`;
  let connection;
  try {
    connection = await connectTemporalClient(target, { connectTimeout: 10_000 });
  } catch (err) {
    io.err(`pubflow setup: cannot reach Temporal at ${where}: ${(err as Error).message}\n`);
    return 3;
  }
  let report: SetupReport;
  try {
    report = await setupTemporal(connection, {
      namespace,
      retentionMs,
      checkOnly: args.check ?? false,
      onProgress: (line) => io.err(`pubflow setup: ${line}\n`),
    });
  } catch (err) {
    if (err instanceof SetupError) {
      io.err(`pubflow setup: ${err.message}\n`);
      return 2;
    }
    io.err(`pubflow setup: Temporal at ${where} refused: ${(err as Error).message}\n`);
    return 3;
  } finally {
    await connection.close();
  }
  if (args.json) io.out(JSON.stringify(report, null, 2) + '\n');
  else io.out(describeReport(report, where).join('\n') + '\n');
  return report.checkOnly && report.changes.length > 0 ? 1 : 0;
}

/** `node lib/setup/run.js [--namespace N] [--retention 7d] [--check] [--json]` without the CLI's other commands. */
function parseArgv(argv: string[]): SetupArgs {
  const args: SetupArgs = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new SetupError(`${a} needs a value`);
      return v;
    };
    if (a === '--namespace') args.namespace = value();
    else if (a === '--retention') args.retention = value();
    else if (a === '--check') args.check = true;
    else if (a === '--json') args.json = true;
    else throw new SetupError(`unknown argument ${a} (use --namespace, --retention, --check, --json)`);
  }
  return args;
}

if (require.main === module) {
  const io: SetupIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };
  let args: SetupArgs;
  try {
    args = parseArgv(process.argv.slice(2));
  } catch (err) {
    io.err(`pubflow setup: ${(err as Error).message}\n`);
    process.exit(2);
  }
  runSetup(args, io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      io.err(`pubflow setup: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 3;
    },
  );
}
