import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AccountError, loadAccounts } from '../../src/platforms/accounts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pubflow-accounts-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function loadError(file: string): AccountError {
  try {
    loadAccounts(file);
  } catch (err) {
    expect(err).toBeInstanceOf(AccountError);
    return err as AccountError;
  }
  throw new Error('loadAccounts did not throw');
}

const brandA = {
  id: 'brand-a-hook',
  platform: 'webhook',
  displayName: 'Brand A CMS',
  settings: { url: 'http://127.0.0.1:9999/upload', timeoutMs: 5000 },
  credentials: { headers: { Authorization: 'Bearer s3cret-literal' } },
};

describe('loadAccounts', () => {
  test('without a file the registry holds only the demo account on the local platform', () => {
    for (const registry of [loadAccounts(), loadAccounts(undefined), loadAccounts('')]) {
      expect(registry.list()).toEqual([
        { id: 'demo', platform: 'local', displayName: 'Demo (local folder)', settings: {} },
      ]);
      expect(registry.has('demo')).toBe(true);
      expect(registry.resolve('demo')).toEqual({
        id: 'demo',
        platform: 'local',
        displayName: 'Demo (local folder)',
        settings: {},
        credentials: {},
      });
    }
  });

  test('a JSON file yields its accounts, with literal credentials resolved as given', () => {
    const file = write('accounts.json', [brandA, { id: 'plain', platform: 'local' }]);

    const registry = loadAccounts(file);

    expect(registry.has('brand-a-hook')).toBe(true);
    expect(registry.has('demo')).toBe(false);
    expect(registry.get('plain')).toEqual({ id: 'plain', platform: 'local', displayName: 'plain', settings: {} });
    expect(registry.resolve('brand-a-hook').credentials).toEqual({
      headers: { Authorization: 'Bearer s3cret-literal' },
    });
    expect(registry.resolve('brand-a-hook').settings).toEqual({ url: 'http://127.0.0.1:9999/upload', timeoutMs: 5000 });
    expect(registry.resolve('plain').credentials).toEqual({});
  });

  test.each(['accounts.yaml', 'accounts.yml'])('a YAML file (%s) is parsed as YAML', (name) => {
    const file = write(
      name,
      [
        '# comments are allowed in YAML',
        '- id: brand-b',
        '  platform: webhook',
        '  displayName: Brand B',
        '  settings:',
        '    url: https://cms.example.test/hook',
        '  credentials:',
        '    headers:',
        '      X-Api-Key: yaml-secret-value',
        '',
      ].join('\n'),
    );

    const registry = loadAccounts(file);

    expect(registry.list()).toEqual([
      {
        id: 'brand-b',
        platform: 'webhook',
        displayName: 'Brand B',
        settings: { url: 'https://cms.example.test/hook' },
      },
    ]);
    expect(registry.resolve('brand-b').credentials).toEqual({ headers: { 'X-Api-Key': 'yaml-secret-value' } });
  });

  test('an env credential is read when resolved, not when loaded', () => {
    const file = write('env.json', [
      { ...brandA, credentials: { headers: { Authorization: { env: 'PUBFLOW_TEST_HOOK_TOKEN' } } } },
    ]);
    delete process.env.PUBFLOW_TEST_HOOK_TOKEN;
    const registry = loadAccounts(file);

    process.env.PUBFLOW_TEST_HOOK_TOKEN = 'Bearer from-env-1';
    expect(registry.resolve('brand-a-hook').credentials).toEqual({ headers: { Authorization: 'Bearer from-env-1' } });
    process.env.PUBFLOW_TEST_HOOK_TOKEN = 'Bearer rotated-2';
    expect(registry.resolve('brand-a-hook').credentials).toEqual({ headers: { Authorization: 'Bearer rotated-2' } });
    delete process.env.PUBFLOW_TEST_HOOK_TOKEN;
  });

  test('a missing env var fails naming the account, the credential and the var, but no value', () => {
    const file = write('env-missing.json', [
      {
        ...brandA,
        credentials: {
          cookie: 'literal-cookie-value',
          headers: { Authorization: { env: 'PUBFLOW_TEST_UNSET_VAR' } },
        },
      },
    ]);
    delete process.env.PUBFLOW_TEST_UNSET_VAR;
    const registry = loadAccounts(file);

    let message = '';
    try {
      registry.resolve('brand-a-hook');
    } catch (err) {
      expect(err).toBeInstanceOf(AccountError);
      message = (err as Error).message;
    }

    expect(message).toContain('brand-a-hook');
    expect(message).toContain('PUBFLOW_TEST_UNSET_VAR');
    expect(message).toContain('headers.Authorization');
    expect(message).not.toContain('literal-cookie-value');
  });

  test('a file credential is read relative to the accounts file, trimmed', () => {
    const sub = mkdtempSync(path.join(dir, 'sub-'));
    writeFileSync(path.join(sub, 'token.txt'), '  file-secret-123\n\n');
    const file = path.join(sub, 'accounts.json');
    writeFileSync(file, JSON.stringify([{ ...brandA, credentials: { token: { file: 'token.txt' } } }]));

    const registry = loadAccounts(file);

    expect(registry.resolve('brand-a-hook').credentials).toEqual({ token: 'file-secret-123' });
  });

  test('an unreadable file credential fails naming the account and the path, not a value', () => {
    const file = write('file-missing.json', [{ ...brandA, credentials: { token: { file: 'nope/token.txt' } } }]);

    expect(() => loadAccounts(file).resolve('brand-a-hook')).toThrow(
      /account "brand-a-hook", credential "token": cannot read file .*nope\/token\.txt \(ENOENT\)/,
    );
  });

  test('list() carries no credentials and no secret-looking settings', () => {
    process.env.PUBFLOW_TEST_LIST_TOKEN = 'env-secret-should-not-leak';
    const file = write('list.json', [
      {
        ...brandA,
        settings: {
          url: 'https://user:url-password@cms.example.test/hook?access_token=query-secret&lang=en',
          timeoutMs: 1000,
          apiToken: 'settings-token-value',
          nested: { clientSecret: 'nested-secret-value', region: 'eu' },
        },
        credentials: {
          headers: { Authorization: 'Bearer s3cret-literal', Cookie: { env: 'PUBFLOW_TEST_LIST_TOKEN' } },
          password: { file: 'whatever.txt' },
        },
      },
    ]);

    const listed = loadAccounts(file).list();
    const json = JSON.stringify(listed);

    for (const secret of [
      's3cret-literal',
      'PUBFLOW_TEST_LIST_TOKEN',
      'env-secret-should-not-leak',
      'whatever.txt',
      'settings-token-value',
      'nested-secret-value',
      'url-password',
      'query-secret',
      'credentials',
    ]) {
      expect(json).not.toContain(secret);
    }
    expect(listed).toEqual([
      {
        id: 'brand-a-hook',
        platform: 'webhook',
        displayName: 'Brand A CMS',
        settings: {
          url: 'https://cms.example.test/hook?access_token=redacted&lang=en',
          timeoutMs: 1000,
          nested: { region: 'eu' },
        },
      },
    ]);
    delete process.env.PUBFLOW_TEST_LIST_TOKEN;
  });

  test('get() and resolve() hand out copies: a caller cannot change the registry', () => {
    const registry = loadAccounts(write('copies.json', [brandA]));

    registry.get('brand-a-hook')!.settings.url = 'http://evil.test/';
    (registry.resolve('brand-a-hook').credentials.headers as Record<string, string>).Authorization = 'changed';

    expect(registry.get('brand-a-hook')!.settings.url).toBe('http://127.0.0.1:9999/upload');
    expect(registry.resolve('brand-a-hook').credentials).toEqual({
      headers: { Authorization: 'Bearer s3cret-literal' },
    });
  });

  test('an unknown id is not there, and resolving it fails with the id', () => {
    const registry = loadAccounts(write('unknown.json', [brandA]));

    expect(registry.get('nope')).toBeUndefined();
    expect(registry.has('nope')).toBe(false);
    expect(() => registry.resolve('nope')).toThrow(/unknown account "nope"/);
  });
});

describe('loadAccounts validation', () => {
  test('errors name the file, the index and the field', () => {
    const file = write('invalid.json', [
      brandA,
      { id: '', platform: 'webhook' },
      { id: 'no-platform' },
      { id: 'bad-timeout', platform: 'webhook', settings: { timeoutMs: -5, url: 'ftp://x.test/' } },
    ]);

    const message = loadError(file).message;

    expect(message).toContain(file);
    expect(message).toMatch(/index 1, field "id"/);
    expect(message).toMatch(/index 2, field "platform"/);
    expect(message).toMatch(/index 3, field "settings\.timeoutMs"/);
    expect(message).toMatch(/index 3, field "settings\.url": must be an http:\/\/ or https:\/\/ URL/);
    expect(message).not.toMatch(/index 0/);
  });

  test('a duplicate id is rejected at its second occurrence', () => {
    const file = write('dup.json', [brandA, { ...brandA, displayName: 'again' }]);

    expect(loadError(file).message).toMatch(/index 1, field "id": duplicate id "brand-a-hook" \(first at index 0\)/);
  });

  test('a misspelt key is rejected instead of silently dropped', () => {
    const file = write('typo.json', [{ id: 'x', platform: 'webhook', credential: { token: 'abc-secret' } }]);

    const message = loadError(file).message;

    expect(message).toMatch(/index 0/);
    expect(message).toContain('credential');
    expect(message).not.toContain('abc-secret');
  });

  test('a malformed credential reference names its path', () => {
    const file = write(
      'badref.yaml',
      [
        '- id: x',
        '  platform: webhook',
        '  credentials:',
        '    headers:',
        '      Authorization: { env: 42 }',
        '      X-Other: { env: A, file: b }',
        '',
      ].join('\n'),
    );

    const message = loadError(file).message;

    expect(message).toMatch(/index 0, field "credentials\.headers\.Authorization"/);
    expect(message).toMatch(/index 0, field "credentials\.headers\.X-Other"/);
  });

  test('a file that is not an array, not JSON, or missing fails naming the file', () => {
    const notArray = write('object.json', { accounts: [] });
    const notJson = write('broken.json', '[{"id": ');
    const notYaml = write('broken.yaml', 'a: [1, 2');
    const missing = path.join(dir, 'missing.json');

    expect(loadError(notArray).message).toContain(notArray);
    expect(loadError(notJson).message).toMatch(/broken\.json is not valid JSON/);
    expect(loadError(notYaml).message).toMatch(/broken\.yaml is not valid YAML/);
    expect(loadError(missing).message).toMatch(/cannot read accounts file .*missing\.json: ENOENT/);
  });
});
