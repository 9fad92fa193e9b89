/**
 * API keys: `node lib/tools/keys.js <command>` (npm run keys -- <command>; `npx pubflow keys <command>` wraps it).
 *
 *   create --name NAME --role viewer|publisher|operator|admin [--file F]   prints the new token once, on stdout
 *   list [--file F] [--json]                                                names and roles (no hashes)
 *   revoke --name NAME [--file F]
 *   ensure-admin --dir DIR [--file F]    make up's bootstrap: with no keys file, creates one with an admin key and
 *                                         writes its token to DIR/admin.token (0600). Idempotent.
 *
 * The file is --file, else PUBFLOW_API_KEYS_FILE, else data/api-keys.json (ensure-admin: DIR/api-keys.json).
 * A running API picks changes up by itself (it watches the file; SIGHUP reloads at once).
 * Data goes to stdout, messages to stderr.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  addKey,
  generateToken,
  hashToken,
  keysFileExists,
  loadKeysFile,
  removeKey,
  serialiseKeys,
  withKeysFileLock,
  writeFileAtomic,
  type KeyEntry,
} from '../auth/keys-file';
import { isRole, ROLES } from '../auth/roles';

const USAGE = `usage: keys.js create --name NAME --role ${ROLES.join('|')} [--file F]
       keys.js list [--file F] [--json]
       keys.js revoke --name NAME [--file F]
       keys.js ensure-admin --dir DIR [--file F]`;

class UsageError extends Error {}

const say = (msg: string) => process.stderr.write(msg + '\n');

function keysFile(file: string | undefined, fallback: string): string {
  return path.resolve(file || process.env.PUBFLOW_API_KEYS_FILE || fallback);
}

/** Relative to the working directory when inside it (what a person types next), else absolute. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

export function run(argv: string[]): number {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: 'string' },
      role: { type: 'string' },
      file: { type: 'string' },
      dir: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  switch (command) {
    case 'create': {
      if (!values.name) throw new UsageError('create: --name is required');
      if (!isRole(values.role)) throw new UsageError(`create: --role must be one of ${ROLES.join(', ')}`);
      const file = keysFile(values.file, 'data/api-keys.json');
      mkdirSync(path.dirname(file), { recursive: true });
      const { token } = addKey(file, { name: values.name, role: values.role });
      process.stdout.write(token + '\n');
      say(`created key "${values.name}" (role ${values.role}) in ${shown(file)}.`);
      say('The token above is shown only now; only its SHA-256 is stored. Send it as: Authorization: Bearer <token>');
      return 0;
    }
    case 'list': {
      const file = keysFile(values.file, 'data/api-keys.json');
      const entries = loadKeysFile(file).map(({ name, role, createdAt }) => ({ name, role, createdAt }));
      if (values.json) process.stdout.write(JSON.stringify(entries) + '\n');
      else for (const e of entries) process.stdout.write(`${e.name}\t${e.role}\t${e.createdAt ?? ''}\n`);
      return 0;
    }
    case 'revoke': {
      if (!values.name) throw new UsageError('revoke: --name is required');
      const file = keysFile(values.file, 'data/api-keys.json');
      removeKey(file, values.name);
      say(`revoked key "${values.name}" in ${shown(file)}`);
      return 0;
    }
    case 'ensure-admin': {
      if (!values.dir) throw new UsageError('ensure-admin: --dir is required');
      const dir = path.resolve(values.dir);
      const file = keysFile(values.file, path.join(dir, 'api-keys.json'));
      const tokenFile = path.join(dir, 'admin.token');
      mkdirSync(path.dirname(file), { recursive: true });
      mkdirSync(dir, { recursive: true });
      const created = withKeysFileLock(file, () => {
        if (keysFileExists(file)) return false;
        // Token file first: a crash in between leaves no keys file, so the next run starts again; the other order
        // could leave a key whose token nobody has.
        const token = generateToken();
        writeFileAtomic(tokenFile, token + '\n', 0o600);
        const entries: KeyEntry[] = [
          { name: 'admin', role: 'admin', sha256: hashToken(token), createdAt: new Date().toISOString() },
        ];
        writeFileAtomic(file, serialiseKeys(file, entries));
        return true;
      });
      if (!created) {
        const n = loadKeysFile(file).length; // a broken file fails here, before the API would
        say(
          `API keys: ${shown(file)} (${n} key${n === 1 ? '' : 's'})` +
            (keysFileExists(tokenFile) ? `; admin token in ${shown(tokenFile)}` : ''),
        );
        return 0;
      }
      say(`API keys: created ${shown(file)} with one admin key; its token is in ${shown(tokenFile)} (mode 0600).`);
      say(`  curl -H "Authorization: Bearer $(cat ${shown(tokenFile)})" ...`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

if (require.main === module) {
  try {
    process.exitCode = run(process.argv.slice(2));
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    say(`keys: ${(err as Error).message}`);
    if (usage) say(USAGE);
    process.exitCode = usage ? 2 : 1;
  }
}
