/**
 * src/connections.ts: the SDK's environment configuration (variables and a TOML profile) becomes the connection
 * options of every process, and Redis through Sentinel follows a real failover (master, replica, sentinel started
 * here on free ports).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRedis, describeRedis, loadRedisTarget, loadTemporalTarget } from '../../src/connections';
import { loadConfig } from '../../src/config';
import { waitUntil } from '../helpers/polling';
import { freePort, tempDir } from '../helpers/servers';
import { toolPaths } from '../helpers/tools';

jest.setTimeout(120_000);

const noFile = { HOME: '/nonexistent' };

describe('Temporal connection from the environment configuration', () => {
  test('nothing set: plaintext to the dev server address and namespace default', () => {
    const t = loadTemporalTarget(noFile);
    expect(t.address).toBe('127.0.0.1:7233');
    expect(t.namespace).toBe('default');
    expect(t.connectionOptions.tls).toBeUndefined();
    expect(t.summary).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      tls: 'off',
      apiKey: false,
      profile: 'default',
    });
  });

  test('TEMPORAL_TLS_* files make an mTLS connection; an API key alone turns TLS on', () => {
    const dir = tempDir('envconfig');
    for (const f of ['ca.pem', 'client.pem', 'client.key']) writeFileSync(path.join(dir, f), `-----${f}-----\n`);
    const t = loadTemporalTarget({
      ...noFile,
      TEMPORAL_ADDRESS: 'frontend.example:7233',
      TEMPORAL_NAMESPACE: 'pubflow-prod',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'ca.pem'),
      TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'client.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
      TEMPORAL_TLS_SERVER_NAME: 'frontend',
    });
    expect(t.summary).toMatchObject({ address: 'frontend.example:7233', namespace: 'pubflow-prod', tls: 'mtls' });
    const tls = t.connectionOptions.tls as {
      serverNameOverride?: string;
      serverRootCACertificate?: Uint8Array;
      clientCertPair?: { crt: Uint8Array; key: Uint8Array };
    };
    expect(tls.serverNameOverride).toBe('frontend');
    expect(Buffer.from(tls.serverRootCACertificate!).toString()).toBe('-----ca.pem-----\n');
    expect(Buffer.from(tls.clientCertPair!.crt).toString()).toBe('-----client.pem-----\n');
    expect(Buffer.from(tls.clientCertPair!.key).toString()).toBe('-----client.key-----\n');

    const cloud = loadTemporalTarget({ ...noFile, TEMPORAL_ADDRESS: 'x.tmprl.cloud:7233', TEMPORAL_API_KEY: 'k' });
    expect(cloud.connectionOptions.apiKey).toBe('k');
    expect(cloud.connectionOptions.tls).toBe(true);
    expect(cloud.summary).toMatchObject({ tls: 'server', apiKey: true });
  });

  test('a TOML profile is read (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE), variables override it, a missing profile is an error', () => {
    const dir = tempDir('envconfig');
    const file = path.join(dir, 'temporal.toml');
    writeFileSync(
      file,
      '[profile.default]\naddress = "a.example:7233"\n\n[profile.prod]\naddress = "p.example:7233"\nnamespace = "prod"\napi_key = "secret"\n',
    );
    expect(loadTemporalTarget({ ...noFile, TEMPORAL_CONFIG_FILE: file }).address).toBe('a.example:7233');
    const prod = loadTemporalTarget({ ...noFile, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' });
    expect(prod.summary).toMatchObject({ address: 'p.example:7233', namespace: 'prod', apiKey: true, profile: 'prod' });
    expect(
      loadTemporalTarget({
        ...noFile,
        TEMPORAL_CONFIG_FILE: file,
        TEMPORAL_PROFILE: 'prod',
        TEMPORAL_NAMESPACE: 'other',
      }).namespace,
    ).toBe('other');
    expect(() => loadConfig({ ...noFile, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'nope' })).toThrow(
      /invalid configuration:\n {2}Profile 'nope' not found/,
    );
    // loadConfig carries the same target to every process.
    expect(loadConfig({ ...noFile, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' }).temporal).toMatchObject({
      address: 'p.example:7233',
      namespace: 'prod',
    });
  });
});

describe('Redis target', () => {
  test('REDIS_URL, or Sentinel with the URL giving password and db; bad values name the variable', () => {
    expect(loadRedisTarget({})).toEqual({ kind: 'url', url: 'redis://127.0.0.1:6379/0' });
    const s = loadRedisTarget({
      REDIS_SENTINELS: '10.0.0.1:26379, [::1]:26380',
      REDIS_SENTINEL_NAME: 'pubflow',
      REDIS_URL: 'redis://:p%40ss@ignored:1/3',
    });
    expect(s).toMatchObject({
      kind: 'sentinel',
      name: 'pubflow',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      password: 'p@ss',
      db: 3,
      tls: false,
    });
    expect(describeRedis(s)).toBe('sentinel pubflow via 10.0.0.1:26379,::1:26380 db 3');
    expect(describeRedis(loadRedisTarget({ REDIS_URL: 'redis://:secret@h:1/0' }))).not.toContain('secret');
    expect(() => loadRedisTarget({ REDIS_SENTINELS: 'h:1' })).toThrow(/REDIS_SENTINEL_NAME/);
    expect(() => loadRedisTarget({ REDIS_SENTINEL_NAME: 'x' })).toThrow(/REDIS_SENTINELS is not/);
    expect(() => loadRedisTarget({ REDIS_SENTINELS: 'h', REDIS_SENTINEL_NAME: 'x' })).toThrow(/"h" is not host:port/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'h:0', REDIS_SENTINEL_NAME: 'x' })).toThrow(/REDIS_SENTINELS/);
  });

  describe('through a real Sentinel', () => {
    const children: ChildProcess[] = [];
    const bin = toolPaths().redisServer || 'redis-server';
    let masterPort = 0;
    let replicaPort = 0;
    let sentinelPort = 0;
    const run = (args: string[]) => {
      const c = spawn(bin, args, { stdio: 'ignore' });
      children.push(c);
      return c;
    };
    let master: ChildProcess;

    beforeAll(async () => {
      const dir = tempDir('sentinel');
      [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
      const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
      master = run(['--port', String(masterPort), '--dir', dir, ...common]);
      run(['--port', String(replicaPort), '--dir', dir, ...common, '--replicaof', '127.0.0.1', String(masterPort)]);
      const conf = path.join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${sentinelPort}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor pubflow 127.0.0.1 ${masterPort} 1`,
          'sentinel down-after-milliseconds pubflow 1000',
          'sentinel failover-timeout pubflow 5000',
        ].join('\n') + '\n',
      );
      run([conf, '--sentinel']);
    });
    afterAll(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });

    test('the client finds the master and, after the master is killed, writes to the promoted replica', async () => {
      const target = loadRedisTarget({ REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`, REDIS_SENTINEL_NAME: 'pubflow' });
      const redis = createRedis(target, { maxRetriesPerRequest: 1 });
      const errors: string[] = [];
      redis.on('error', (err: Error) => errors.push(err.message)); // expected while the master is down
      try {
        await waitUntil(
          'the sentinel to know the master and the replica to sync',
          async () => {
            try {
              await redis.set('k', 'before');
              const info = await redis.info('replication');
              return /connected_slaves:1/.test(info);
            } catch {
              return false;
            }
          },
          { timeoutMs: 30_000, intervalMs: 200 },
        );
        expect(Number(/tcp_port:(\d+)/.exec(await redis.info('server'))?.[1])).toBe(masterPort);
        await redis.wait(1, 5000);

        process.kill(master.pid!, 'SIGKILL');
        await waitUntil(
          'a write to succeed after the failover',
          async () => {
            try {
              await redis.set('k', 'after');
              return true;
            } catch {
              return false;
            }
          },
          { timeoutMs: 60_000, intervalMs: 250 },
        );
        expect(Number(/tcp_port:(\d+)/.exec(await redis.info('server'))?.[1])).toBe(replicaPort);
        expect(await redis.get('k')).toBe('after');
      } finally {
        redis.disconnect();
      }
    });
  });
});
