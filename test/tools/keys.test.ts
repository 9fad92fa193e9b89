/**
 * The keys command as a real child process: `node lib/tools/keys.js ...` (run `npm run build` first; make test does).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { KeyRegistry } from '../../src/auth/key-registry';
import { hashToken, loadKeysFile } from '../../src/auth/keys-file';
import { tempDir } from '../helpers/servers';

const ROOT = path.resolve(__dirname, '../..');
const KEYS_JS = path.join(ROOT, 'lib/tools/keys.js');

async function keys(args: string[], env: NodeJS.ProcessEnv = {}) {
  const cwd = tempDir('keys-cwd');
  const childEnv = { ...process.env, ...env };
  if (!('PUBFLOW_API_KEYS_FILE' in env)) delete childEnv.PUBFLOW_API_KEYS_FILE;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [KEYS_JS, ...args], { cwd, env: childEnv });
    return { code: 0, stdout, stderr, cwd };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr, cwd };
  }
}

beforeAll(() => {
  if (!existsSync(KEYS_JS))
    throw new Error(`${KEYS_JS} is missing: run \`npm run build\` first (\`make test\` does it)`);
});

describe('keys create', () => {
  it('appends a key to the file and prints its token once, on stdout only', async () => {
    const file = path.join(tempDir('keys'), 'api-keys.json');
    const first = await keys(['create', '--name', 'ops-anna', '--role', 'operator', '--file', file]);
    const second = await keys(['create', '--name', 'ci', '--role', 'publisher', '--file', file]);

    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    const token = first.stdout.trim();
    expect(token).toMatch(/^pf_[A-Za-z0-9_-]{43}$/);
    expect(first.stdout).toBe(`${token}\n`);
    expect(first.stderr).not.toContain(token);
    expect(first.stderr).toContain('shown only now');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(token);
    expect(loadKeysFile(file).map((e) => [e.name, e.role, e.sha256])).toEqual([
      ['ops-anna', 'operator', hashToken(token)],
      ['ci', 'publisher', hashToken(second.stdout.trim())],
    ]);
    expect(KeyRegistry.fromFile(file).lookup(token)).toEqual({ name: 'ops-anna', role: 'operator' });
  });

  it('uses PUBFLOW_API_KEYS_FILE when --file is not given', async () => {
    const file = path.join(tempDir('keys'), 'keys.yaml');
    const out = await keys(['create', '--name', 'bob', '--role', 'viewer'], { PUBFLOW_API_KEYS_FILE: file });
    expect(out.code).toBe(0);
    expect(loadKeysFile(file)).toEqual([expect.objectContaining({ name: 'bob', role: 'viewer' })]);
  });

  it.each([
    [['create', '--name', 'x', '--role', 'root'], 2, /--role must be one of viewer, publisher, operator, admin/],
    [['create', '--role', 'admin'], 2, /--name is required/],
    [['create', '--name', 'bad name', '--role', 'admin'], 1, /name: must be 1-64 letters/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
  ])('%j fails (exit %i) saying why, printing no token and writing nothing', async (args, code, message) => {
    const file = path.join(tempDir('keys'), 'api-keys.json');
    const out = await keys([...args, '--file', file]);
    expect(out.code).toBe(code);
    expect(out.stderr).toMatch(message);
    expect(out.stdout).toBe('');
    expect(existsSync(file)).toBe(false);
  });

  it('refuses a second key with the same name and leaves the file as it was', async () => {
    const file = path.join(tempDir('keys'), 'api-keys.json');
    await keys(['create', '--name', 'a', '--role', 'admin', '--file', file]);
    const before = readFileSync(file, 'utf8');
    const out = await keys(['create', '--name', 'a', '--role', 'viewer', '--file', file]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/a key named "a" exists already/);
    expect(out.stdout).toBe('');
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('list shows names and roles, revoke removes a key', async () => {
    const file = path.join(tempDir('keys'), 'api-keys.json');
    await keys(['create', '--name', 'a', '--role', 'admin', '--file', file]);
    await keys(['create', '--name', 'b', '--role', 'viewer', '--file', file]);
    expect((await keys(['revoke', '--name', 'a', '--file', file])).code).toBe(0);
    const list = await keys(['list', '--json', '--file', file]);
    expect(JSON.parse(list.stdout)).toEqual([{ name: 'b', role: 'viewer', createdAt: expect.any(String) }]);
    expect(list.stdout).not.toContain('sha256');
  });
});

describe('keys ensure-admin (the make up bootstrap)', () => {
  it('with no keys file: creates it with one admin key and writes the token to admin.token, mode 0600', async () => {
    const data = path.join(tempDir('keys'), 'data');
    const out = await keys(['ensure-admin', '--dir', data]);

    expect(out.code).toBe(0);
    const tokenFile = path.join(data, 'admin.token');
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(out.stdout + out.stderr).not.toContain(token);
    expect(out.stderr).toContain(tokenFile);
    const file = path.join(data, 'api-keys.json');
    expect(readFileSync(file, 'utf8')).not.toContain(token);
    expect(KeyRegistry.fromFile(file).lookup(token)).toEqual({ name: 'admin', role: 'admin' });
  });

  it('a second run changes nothing and says where the token is', async () => {
    const data = path.join(tempDir('keys'), 'data');
    await keys(['ensure-admin', '--dir', data]);
    const files = ['api-keys.json', 'admin.token'].map((f) => path.join(data, f));
    const before = files.map((f) => [readFileSync(f, 'utf8'), statSync(f).mtimeMs, statSync(f).ino]);

    const again = await keys(['ensure-admin', '--dir', data]);

    expect(again.code).toBe(0);
    expect(files.map((f) => [readFileSync(f, 'utf8'), statSync(f).mtimeMs, statSync(f).ino])).toEqual(before);
    expect(again.stderr).toMatch(/\(1 key\); admin token in .*admin\.token/);
  });

  it('leaves an existing keys file (PUBFLOW_API_KEYS_FILE) alone and writes no token', async () => {
    const dir = tempDir('keys');
    const file = path.join(dir, 'mine.json');
    writeFileSync(file, JSON.stringify([{ name: 'ops', role: 'operator', sha256: hashToken('t') }]));
    const out = await keys(['ensure-admin', '--dir', path.join(dir, 'data')], { PUBFLOW_API_KEYS_FILE: file });
    expect(out.code).toBe(0);
    expect(existsSync(path.join(dir, 'data', 'admin.token'))).toBe(false);
    expect(loadKeysFile(file).map((e) => e.name)).toEqual(['ops']);
  });

  it('fails on a broken keys file, naming the entry and field', async () => {
    const dir = tempDir('keys');
    writeFileSync(
      path.join(dir, 'api-keys.json'),
      JSON.stringify([{ name: 'x', role: 'boss', sha256: hashToken('t') }]),
    );
    const out = await keys(['ensure-admin', '--dir', dir]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/entry 0 \("x"\): role:/);
  });
});
