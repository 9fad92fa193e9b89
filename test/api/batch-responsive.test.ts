/**
 * Hostile input (issue "Access control" §3): a large batch must not block the whole API while its media paths are
 * checked; other requests keep being answered meanwhile.
 *
 * How it can fail: the check phase of `submitBatch` for 5,000 items whose last one is refused ends in a rejection
 * right after the last check, before anything is started. If the checks held the event loop (synchronous file
 * system calls), that rejection would come before any other request could be answered, since an HTTP answer needs
 * the loop to turn. So the test counts the /healthz answers the same process gave while the checks ran. It is an
 * order, not a duration: no bound on how long anything takes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { PublishBody } from '../../src/api/schemas';
import { createLogger } from '../../src/log';
import { DriverRegistry } from '../../src/platforms';
import { loadAccounts } from '../../src/platforms/accounts';
import { ProjectionStore } from '../../src/projection/store';
import { TaskStateManager } from '../../src/projection/task-state-manager';
import { createService, InvalidInputError } from '../../src/service';
import type { ParsedItem } from '../../src/service/publish';
import { ScriptedDriver } from '../helpers/scripted-driver';
import { publishBody, type ApiStack, useApiStack } from './fixtures';

let stack: ApiStack;
useApiStack((s) => (stack = s));

test('while a 5,000-item batch has its media checked, the same process keeps answering other requests', async () => {
  const N = 5000;
  const dir = path.join(stack.mediaRoot, 'many');
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < N - 1; i++) writeFileSync(path.join(dir, `v${i}.mp4`), 'v');
  const items: ParsedItem[] = Array.from({ length: N }, (_, i) => ({
    ok: true,
    // The last file does not exist: the batch is refused once every path has been checked, and nothing starts.
    request: PublishBody.parse(publishBody({ video: { path: `many/v${i}.mp4` }, title: `item ${i}` })),
  }));
  const service = createService({
    client: stack.client,
    redis: stack.redis,
    tsm: new TaskStateManager(stack.redis),
    store: new ProjectionStore(stack.redis),
    accounts: loadAccounts(stack.config.accountsFile),
    drivers: new DriverRegistry([new ScriptedDriver()]), // the platform of publishBody()
    config: stack.config,
    log: createLogger('test-api', { silent: true }),
  });

  let checking = true;
  const submitted = service.submitBatch({ items, concurrency: 10, priority: 5 }).finally(() => (checking = false));
  submitted.catch(() => undefined); // awaited below
  let answeredMeanwhile = 0;
  while (checking) {
    const res = await request(stack.app).get('/healthz');
    expect(res.status).toBe(200);
    if (checking) answeredMeanwhile++;
  }

  const err = await submitted.then(
    () => new Error('the batch was accepted'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidInputError);
  expect((err as InvalidInputError).issues).toEqual([
    { field: `items[${N - 1}].video.path`, message: expect.stringContaining(`many/v${N - 1}.mp4`) },
  ]);
  expect(answeredMeanwhile).toBeGreaterThan(0);
}, 120_000);
