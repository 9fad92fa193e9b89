import { Connection } from '@temporalio/client';
import Redis from 'ioredis';
import { createTimeSkippingEnv, startDevServer, startRedis } from './servers';
import { SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('test servers', () => {
  test('redis-server starts on a free port and its PID is gone after destroy', async () => {
    const redis = await startRedis();
    const client = new Redis(redis.url);
    await client.set('k', 'v');
    expect(await client.get('k')).toBe('v');
    client.disconnect();
    await redis.destroy();
    expect(alive(redis.pid)).toBe(false);
  });

  test('the dev server starts with pubflow search attributes registered, and stops', async () => {
    const dev = await startDevServer();
    const conn = await Connection.connect({ address: dev.address });
    const res = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(Object.keys(res.customAttributes)).toContain(name);
    await conn.close();
    await dev.destroy();
    expect(alive(dev.pid)).toBe(false);
  });

  test('the time-skipping server starts from the provisioned binary', async () => {
    const env = await createTimeSkippingEnv();
    expect(env.supportsTimeSkipping).toBe(true);
    const before = Number(await env.currentTimeMs());
    await env.sleep('1 day');
    const after = Number(await env.currentTimeMs());
    expect(after - before).toBeGreaterThanOrEqual(86_400_000);
    await env.teardown();
  });
});
