import crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadKeyRegistry } from '../../src/api/auth';
import { KeyRegistry } from '../../src/auth/key-registry';
import {
  addKey,
  generateToken,
  hashToken,
  KeysFileError,
  loadKeysFile,
  parseKeysFile,
  removeKey,
} from '../../src/auth/keys-file';
import { parseRate, TokenBucketLimiter } from '../../src/auth/rate-limit';
import { roleAtLeast, ROLES, type Role } from '../../src/auth/roles';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/log';
import { waitUntil } from '../helpers/polling';
import { tempDir } from '../helpers/servers';

// Roles as plain strings: the bad-file cases need roles outside the enum.
const entry = (name: string, role: string, token = `tok-${name}`) => ({ name, role, sha256: hashToken(token) });
const good = (name: string, role: Role, token = `tok-${name}`) => ({ name, role, sha256: hashToken(token) });

describe('the API keys file', () => {
  it('reads JSON and YAML lists of {name, role, sha256}', () => {
    const dir = tempDir('keys');
    const json = path.join(dir, 'keys.json');
    writeFileSync(json, JSON.stringify([entry('ops-anna', 'operator'), entry('ci', 'publisher')]));
    const yaml = path.join(dir, 'keys.yaml');
    writeFileSync(yaml, `- name: viewer-bob\n  role: viewer\n  sha256: ${hashToken('b').toUpperCase()}\n`);

    expect(loadKeysFile(json).map((e) => [e.name, e.role])).toEqual([
      ['ops-anna', 'operator'],
      ['ci', 'publisher'],
    ]);
    expect(loadKeysFile(yaml)).toEqual([{ name: 'viewer-bob', role: 'viewer', sha256: hashToken('b') }]);
  });

  it.each([
    ['an unknown role', [entry('ops-anna', 'root')], /entry 0 \("ops-anna"\): role:/],
    ['a short hash', [{ name: 'x', role: 'viewer', sha256: 'abc' }], /entry 0 \("x"\): sha256: must be the 64 hex/],
    ['a missing name', [{ role: 'viewer', sha256: hashToken('a') }], /entry 0: name:/],
    ['an unknown field', [{ ...entry('x', 'viewer'), sha265: 'a' }], /entry 0 \("x"\): sha265:/],
    ['a plain-text token', [{ name: 'x', role: 'admin', token: 'pf_abc' }], /entry 0 \("x"\): token: tokens are never/],
    ['a duplicate name', [entry('ci', 'viewer', 'a'), entry('ci', 'admin', 'b')], /entry "ci": name: duplicate name/],
    ['one token twice', [entry('a', 'viewer', 't'), entry('b', 'admin', 't')], /entry "b": sha256: the same token/],
    ['no list', { name: 'x' }, /must be a list/],
  ])('refuses %s, naming the entry and the field', (_what, content, message) => {
    expect(() => parseKeysFile(JSON.stringify(content), '/etc/keys.json')).toThrow(message);
    expect(() => parseKeysFile(JSON.stringify(content), '/etc/keys.json')).toThrow(KeysFileError);
  });

  it('refuses a file that is not JSON, and a missing file, naming the file', () => {
    expect(() => parseKeysFile('[{', '/etc/keys.json')).toThrow(/keys file \/etc\/keys.json: not valid JSON/);
    expect(() => loadKeysFile('/nonexistent/keys.json')).toThrow(
      /keys file \/nonexistent\/keys.json: cannot read it: ENOENT/,
    );
  });

  it('a bad PUBFLOW_API_KEYS_FILE stops start-up with a message naming the entry and field', () => {
    const file = path.join(tempDir('keys'), 'keys.json');
    writeFileSync(file, JSON.stringify([entry('a', 'viewer'), entry('b', 'superuser')]));
    expect(() => loadKeyRegistry(loadConfig({ PUBFLOW_API_KEYS_FILE: file }))).toThrow(
      /PUBFLOW_API_KEYS_FILE: keys file .* is invalid:\n {2}entry 1 \("b"\): role:/,
    );
  });

  it('addKey appends a hashed key and returns the token; the token is not in the file', () => {
    const file = path.join(tempDir('keys'), 'keys.json');
    const a = addKey(file, { name: 'a', role: 'viewer' });
    const b = addKey(file, { name: 'b', role: 'admin' });

    expect(a.token).toMatch(/^pf_[A-Za-z0-9_-]{43}$/);
    const entries = loadKeysFile(file);
    expect(entries.map((e) => [e.name, e.role, e.sha256])).toEqual([
      ['a', 'viewer', hashToken(a.token)],
      ['b', 'admin', hashToken(b.token)],
    ]);
    expect(JSON.stringify(entries)).not.toContain(a.token.slice(3));
    expect(() => addKey(file, { name: 'a', role: 'admin' })).toThrow(/a key named "a" exists already/);
    removeKey(file, 'a');
    expect(loadKeysFile(file).map((e) => e.name)).toEqual(['b']);
  });

  it('tokens are 32 random bytes, base64url, prefixed pf_', () => {
    const t = generateToken();
    expect(Buffer.from(t.slice(3), 'base64url')).toHaveLength(32);
    expect(generateToken()).not.toBe(t);
  });
});

describe('the key registry', () => {
  afterEach(() => jest.restoreAllMocks());

  it('finds a token by comparing its hash with every key in constant time', () => {
    const reg = new KeyRegistry([good('a', 'viewer'), good('b', 'operator'), good('c', 'admin')]);
    const spy = jest.spyOn(crypto, 'timingSafeEqual');

    expect(reg.lookup('tok-a')).toEqual({ name: 'a', role: 'viewer' });
    // No early exit on a match: all three hashes were compared.
    expect(spy).toHaveBeenCalledTimes(3);
    expect(reg.lookup('tok-zzz')).toBeNull();
    expect(spy).toHaveBeenCalledTimes(6);
    expect(reg.lookup('')).toBeNull();
    expect(reg.lookup('x'.repeat(10_000))).toBeNull();
  });

  it('reload() takes a rotated file; a broken one is refused and the keys in force stay', () => {
    const file = path.join(tempDir('keys'), 'keys.json');
    writeFileSync(file, JSON.stringify([entry('old', 'admin')]));
    const reg = KeyRegistry.fromFile(file);

    writeFileSync(file, JSON.stringify([entry('new', 'admin')]));
    expect(reg.reload()).toEqual({ ok: true, size: 1 });
    expect(reg.lookup('tok-old')).toBeNull();
    expect(reg.lookup('tok-new')).toEqual({ name: 'new', role: 'admin' });

    writeFileSync(file, JSON.stringify([entry('new', 'admin'), entry('new', 'viewer', 'x')]));
    const out = reg.reload();
    expect(out.ok).toBe(false);
    expect(reg.lookup('tok-new')).toEqual({ name: 'new', role: 'admin' });
  });

  it('watch() picks up a key added to the file by addKey (atomic rename)', async () => {
    const file = path.join(tempDir('keys'), 'keys.json');
    addKey(file, { name: 'first', role: 'viewer' });
    const reg = KeyRegistry.fromFile(file);
    const stop = reg.watch(createLogger('test', { silent: true }), { intervalMs: 50, signal: false });
    try {
      const { token } = addKey(file, { name: 'second', role: 'operator' });
      await waitUntil('the new key to be loaded', async () => reg.lookup(token));
      expect(reg.lookup(token)).toEqual({ name: 'second', role: 'operator' });
    } finally {
      stop();
    }
  });
});

describe('roles and the rate limiter', () => {
  it('each role includes the ones before it', () => {
    expect(ROLES).toEqual(['viewer', 'publisher', 'operator', 'admin']);
    expect(roleAtLeast('admin', 'viewer')).toBe(true);
    expect(roleAtLeast('operator', 'publisher')).toBe(true);
    expect(roleAtLeast('publisher', 'operator')).toBe(false);
    expect(roleAtLeast('viewer', 'publisher')).toBe(false);
  });

  it('a bucket allows its burst, then refuses with the seconds until the next token, per key', () => {
    let now = 1_000_000;
    const limiter = new TokenBucketLimiter({ perSecond: 0.5, burst: 2 }, () => now);

    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 2 });
    expect(limiter.take('b').allowed).toBe(true);
    now += 1000;
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    now += 1000;
    expect(limiter.take('a').allowed).toBe(true);
  });

  it('parses rates and the config block', () => {
    expect(parseRate('20/s')).toBe(20);
    expect(parseRate('600/m')).toBe(10);
    expect(parseRate('off')).toBeNull();
    expect(() => parseRate('fast')).toThrow(/not a rate/);
    expect(loadConfig({}).api).toEqual({ host: '127.0.0.1', port: 3000, rateLimit: { perSecond: 20, burst: 40 } });
    expect(loadConfig({ PUBFLOW_API_RATE_LIMIT: 'off', PUBFLOW_API_KEYS_FILE: 'k.json' }).api).toMatchObject({
      rateLimit: null,
      keysFile: 'k.json',
    });
    expect(() => loadConfig({ PUBFLOW_API_RATE_LIMIT: '20 per s' })).toThrow(/PUBFLOW_API_RATE_LIMIT: not a rate/);
  });
});
