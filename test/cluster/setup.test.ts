/**
 * `pubflow setup` against a real dev server: a namespace that is not there is created with its retention and
 * pubflow's search attributes; a second run changes nothing; a changed retention is updated; --check changes
 * nothing; a search attribute of another type is refused. (make test-cluster runs the same command against the
 * multi-service cluster, over mTLS.)
 */
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { main } from '../../src/cli/program';
import type { Io } from '../../src/cli/output';
import type { SetupReport } from '../../src/setup/setup';
import { SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes';
import { startDevServer, type DevServer } from '../helpers/servers';

jest.setTimeout(180_000);

let dev: DevServer;
let conn: Connection;

beforeAll(async () => {
  dev = await startDevServer();
  conn = await Connection.connect({ address: dev.address });
});
afterAll(async () => {
  await conn?.close();
  await dev?.destroy();
});

async function setup(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (t: string) => void (out += t),
    err: (t: string) => void (err += t),
    isTTY: false,
    color: false,
    columns: 120,
  } as unknown as Io;
  const code = await main(['setup', ...args], io, { TEMPORAL_ADDRESS: dev.address, HOME: '/nonexistent' });
  return { code, out, err };
}

const retentionSeconds = async (namespace: string) =>
  Number((await conn.workflowService.describeNamespace({ namespace })).config?.workflowExecutionRetentionTtl?.seconds);

describe('pubflow setup', () => {
  test('creates a missing namespace with retention and search attributes; the second run changes nothing', async () => {
    const ns = `setup-${randomUUID().slice(0, 8)}`;

    const first = await setup(['--namespace', ns, '--retention', '3d', '--json']);
    expect(first.code).toBe(0);
    const report = JSON.parse(first.out) as SetupReport;
    expect(report.changes).toEqual([
      { what: 'namespace', action: 'created', namespace: ns, retentionMs: 3 * 86_400_000 },
      ...Object.keys(SEARCH_ATTRIBUTES).map((name) => ({
        what: 'search-attribute',
        action: 'added',
        name,
        type: 'Keyword',
      })),
    ]);
    expect(await retentionSeconds(ns)).toBe(3 * 86_400);
    const listed = await conn.operatorService.listSearchAttributes({ namespace: ns });
    for (const name of Object.keys(SEARCH_ATTRIBUTES))
      expect(listed.customAttributes?.[name]).toBe(temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD);

    const second = await setup(['--namespace', ns, '--retention', '3d']);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/nothing to change: namespace setup-\w+ \(retention 3d\) and 5 search attributes/);
    const secondJson = JSON.parse((await setup(['--namespace', ns, '--retention', '3d', '--json'])).out) as SetupReport;
    expect(secondJson.changes).toEqual([]);
    expect(secondJson.searchAttributesPresent.sort()).toEqual(Object.keys(SEARCH_ATTRIBUTES).sort());
  });

  test('a different retention is updated, and --check reports without changing', async () => {
    const ns = `setup-${randomUUID().slice(0, 8)}`;
    expect((await setup(['--namespace', ns, '--retention', '2d'])).code).toBe(0);

    const check = await setup(['--namespace', ns, '--retention', '5d', '--check']);
    expect(check.code).toBe(1);
    expect(check.out).toContain(`namespace ${ns}: retention would be changed from 2d to 5d`);
    expect(await retentionSeconds(ns)).toBe(2 * 86_400);

    const update = await setup(['--namespace', ns, '--retention', '5d']);
    expect(update.code).toBe(0);
    expect(update.out).toContain(`namespace ${ns}: retention changed from 2d to 5d`);
    expect(await retentionSeconds(ns)).toBe(5 * 86_400);
    expect((await setup(['--namespace', ns, '--retention', '5d', '--check'])).code).toBe(0);
  });

  test('--check on a missing namespace creates nothing', async () => {
    const ns = `setup-${randomUUID().slice(0, 8)}`;
    const check = await setup(['--namespace', ns, '--check']);
    expect(check.code).toBe(1);
    expect(check.out).toContain(`namespace ${ns}: would be created (retention 7d)`);
    await expect(conn.workflowService.describeNamespace({ namespace: ns })).rejects.toThrow(/not found/i);
  });

  test('a search attribute that exists with another type is an error naming it, and nothing else is added', async () => {
    const ns = `setup-${randomUUID().slice(0, 8)}`;
    await conn.workflowService.registerNamespace({
      namespace: ns,
      workflowExecutionRetentionPeriod: { seconds: 86_400 * 7 } as never,
    });
    await conn.operatorService.addSearchAttributes({
      namespace: ns,
      searchAttributes: { PubflowStatus: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT },
    });
    const res = await setup(['--namespace', ns]);
    expect(res.code).toBe(2);
    expect(res.err).toMatch(
      /search attribute PubflowStatus exists in namespace setup-\w+ as INT, pubflow needs Keyword/,
    );
    const listed = await conn.operatorService.listSearchAttributes({ namespace: ns });
    expect(listed.customAttributes?.PubflowType).toBeUndefined();
  });

  test('bad input: a retention under a day is a usage error; an unreachable Temporal is exit 3', async () => {
    const short = await setup(['--retention', '2h']);
    expect(short.code).toBe(2);
    expect(short.err).toMatch(/retention must be at least 1 day/);
    expect((await setup(['--retention', 'soon'])).err).toMatch(/--retention: not a duration/);
    let err = '';
    const io = { out: () => undefined, err: (t: string) => void (err += t) } as unknown as Io;
    const code = await main(['setup'], io, { TEMPORAL_ADDRESS: '127.0.0.1:1', HOME: '/nonexistent' });
    expect(code).toBe(3);
    expect(err).toMatch(/cannot reach Temporal at 127\.0\.0\.1:1/);
  });
});
