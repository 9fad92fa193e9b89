import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Paths found by scripts/provision.sh (.tools/env); explicit env vars win. Empty string = not available. */
export interface ToolPaths {
  temporalCli: string;
  testServer: string;
  redisServer: string;
}

export function readToolEnv(root = path.resolve(__dirname, '../..')): Record<string, string> {
  const file = path.join(root, '.tools', 'env');
  const out: Record<string, string> = {};
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m && m[1]) out[m[1]] = m[2] ?? '';
  }
  return out;
}

export function toolPaths(): ToolPaths {
  const env = readToolEnv();
  return {
    temporalCli: process.env.PUBFLOW_TEMPORAL_CLI ?? env.PUBFLOW_TEMPORAL_CLI ?? '',
    testServer: process.env.PUBFLOW_TEST_SERVER ?? env.PUBFLOW_TEST_SERVER ?? '',
    redisServer: process.env.PUBFLOW_REDIS_SERVER ?? env.PUBFLOW_REDIS_SERVER ?? 'redis-server',
  };
}
