/**
 * How long one page of GET /tasks takes at 10,000 tasks (issue #12, "Tasks" filters), measured on the read path the
 * API uses (TaskStateManager) against a fresh redis-server: index-only filters (exact), and the scan filters
 * (platform, account, time range, search), each a bounded page of at most SCAN_WINDOW index members.
 *
 *   npx tsc bench/task-list.ts --outDir /tmp/tl --rootDir . --target ES2022 --module commonjs \
 *     --moduleResolution node --esModuleInterop --skipLibCheck --strict --types node
 *   NODE_PATH=$PWD/node_modules node /tmp/tl/bench/task-list.js      # BENCH_TASKS=10000 by default
 *
 * Prints one line per query: median and worst of BENCH_REPEAT runs, items returned, members looked at.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { ProjectionStore } from '../src/projection/store';
import { TaskStateManager, type TaskScanFilter } from '../src/projection/task-state-manager';
import type { TaskDoc } from '../src/shared/types';

const N = Number(process.env.BENCH_TASKS ?? 10_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 20);
const BASE = Date.parse('2026-12-01T00:00:00Z');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function doc(i: number): TaskDoc {
  const created = new Date(BASE + i * 1000).toISOString();
  const account = i % 500 === 0 ? 'rare' : `shop-${i % 20}`;
  return {
    task_id: `pub-bench-${i}`,
    task_type: 'publish',
    data: { platform: i % 10 === 0 ? 'webhook' : 'local', accountId: account, title: `item ${i}` },
    priority: 5,
    parent_task_id: i < 1000 ? 'batch-bench' : null,
    status: i % 7 === 0 ? 'failed' : 'success',
    created_at: created,
    started_at: created,
    completed_at: created,
    updated_at: created,
    error_message: null,
    result: null,
    retry_count: 0,
    version: 3,
    attempt: 1,
    progress: null,
    review: null,
    platform: i % 10 === 0 ? 'webhook' : 'local',
    account_id: account,
    workflow_id: `pub-bench-${i}`,
    run_id: null,
    scheduled_for: null,
    error_kind: null,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pubflow-bench-tl-'));
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined); // connection refused while the server starts, and at the end
  try {
    for (let i = 0; i < 50; i++) {
      try {
        await redis.connect();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const store = new ProjectionStore(redis);
    for (let i = 0; i < N; i += 200)
      await Promise.all(Array.from({ length: Math.min(200, N - i) }, (_, j) => store.write(doc(i + j))));
    const tsm = new TaskStateManager(redis);
    const queries: Array<[string, () => Promise<{ items: unknown[]; scanned?: number }>]> = [
      ['status=failed (index)', () => tsm.listTasks({ status: 'failed' })],
      ['parent+status (index)', () => tsm.listTasks({ parent: 'batch-bench', status: 'failed' })],
      ['platform=webhook', () => tsm.scanTasks({ platform: 'webhook' })],
      ['accountId=rare (1 in 500)', () => tsm.scanTasks({ accountId: 'rare' })],
      ['since/until (1 h)', () => tsm.scanTasks({ since: BASE + 3_600_000, until: BASE + 7_200_000 })],
      ['search "item 99" (title)', () => tsm.scanTasks({ search: 'item 99' })],
      ['search by exact id', () => tsm.scanTasks({ search: 'pub-bench-1234' })],
      [
        'time=updated, status, account',
        () => tsm.scanTasks({ time: 'updated', status: 'success', accountId: 'shop-3' } satisfies TaskScanFilter),
      ],
    ];
    console.log(`${N} tasks, ${REPEAT} runs each`);
    for (const [name, run] of queries) {
      const times: number[] = [];
      let last: { items: unknown[]; scanned?: number } = { items: [] };
      for (let r = 0; r < REPEAT; r++) {
        const t0 = process.hrtime.bigint();
        last = await run();
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)] ?? 0;
      const worst = times[times.length - 1] ?? 0;
      console.log(
        `${name.padEnd(32)} median ${median.toFixed(1).padStart(6)} ms  worst ${worst.toFixed(1).padStart(6)} ms  ` +
          `items ${String(last.items.length).padStart(3)}  looked at ${last.scanned ?? '(index)'}`,
      );
    }
  } finally {
    redis.disconnect();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
