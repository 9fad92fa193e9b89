/**
 * PUBFLOW_TEST_TEMPORAL=external (test/helpers/servers.ts), as scripts/cluster/test.sh runs it against the cluster:
 * startDevServer gives each caller a fresh namespace on that Temporal, reached over its mTLS, and starts no dev
 * server. Without the switch (make test) there is no external Temporal to test against: skipped.
 */
import { Client, Connection } from '@temporalio/client';
import { externalTemporal, startDevServer, type DevServer } from '../helpers/servers';
import { waitUntil } from '../helpers/polling';

const describeExternal = externalTemporal() ? describe : describe.skip;

describeExternal('PUBFLOW_TEST_TEMPORAL=external', () => {
  const made: DevServer[] = [];
  afterAll(async () => {
    for (const d of made) await d.destroy();
  });

  it('gives each caller its own ready namespace on TEMPORAL_ADDRESS, over TLS, and cannot stop that Temporal', async () => {
    const [a, b] = await Promise.all([startDevServer(), startDevServer()]);
    made.push(a, b);
    expect(a.external).toBe(true);
    expect(a.pid).toBe(0);
    expect(a.address).toBe(process.env.TEMPORAL_ADDRESS);
    expect(a.namespace).not.toBe(b.namespace);
    expect(a.namespace).toMatch(/^pubflow-test-/);
    expect(a.env).toMatchObject({ TEMPORAL_ADDRESS: a.address, TEMPORAL_NAMESPACE: a.namespace });
    expect(a.connection.tls).toBeDefined();

    const connection = await Connection.connect(a.connection);
    try {
      const ns = await connection.workflowService.describeNamespace({ namespace: a.namespace });
      expect(ns.namespaceInfo?.name).toBe(a.namespace);
      const attrs = await connection.operatorService.listSearchAttributes({ namespace: a.namespace });
      expect(Object.keys(attrs.customAttributes ?? {})).toEqual(
        expect.arrayContaining(['PubflowStatus', 'PubflowParent']),
      );
      // One namespace's workflows are not the other's.
      const client = new Client({ connection, namespace: a.namespace });
      const list = [];
      for await (const w of client.workflow.list()) list.push(w);
      expect(list).toEqual([]);
    } finally {
      await connection.close();
    }
    // The frontend asks for a client certificate: without TLS the connection does not get an answer.
    await expect(
      Connection.connect({ address: a.address, connectTimeout: 3000 }).then(async (c) => {
        try {
          await c.workflowService.describeNamespace({ namespace: a.namespace });
        } finally {
          await c.close();
        }
      }),
    ).rejects.toThrow();
    await expect(a.kill()).rejects.toThrow(/not the tests' to stop/);
  });

  it('destroy() deletes the namespace', async () => {
    const d = await startDevServer();
    await d.destroy();
    const connection = await Connection.connect(d.connection);
    try {
      await waitUntil(
        `namespace ${d.namespace} to be gone`,
        async () => {
          try {
            const ns = await connection.workflowService.describeNamespace({ namespace: d.namespace });
            // NAMESPACE_STATE_DELETED (3) while the deletion runs
            return ns.namespaceInfo?.state === 3;
          } catch {
            return true;
          }
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    } finally {
      await connection.close();
    }
  });
});
