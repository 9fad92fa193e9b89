/**
 * `make reconcile`: rebuilds or repairs the Redis projection from Temporal once (the same function the
 * `pubflow-reconcile-projection` Schedule runs), prints the report as JSON on stdout and logs on stderr.
 * Exit code: 0 done, 2 done but some tasks could not be reconciled (see errorSamples), 1 the run failed.
 */
import { Client } from '@temporalio/client';
import { loadConfig, type Config } from './config';
import { connectTemporalClient, createRedis } from './connections';
import { createLogger } from './log';
import { reconcile, type ReconcileReport } from './service/reconciler';
import { ProjectionStore } from './projection/store';

/** The same JSON lines as every process, but on stderr, so stdout carries only the report (`make reconcile | jq`). */
const log = createLogger('reconcile', { destination: 'stderr' });

export async function runReconcile(config: Config = loadConfig()): Promise<ReconcileReport> {
  const redis = createRedis(config.redis, { maxRetriesPerRequest: 3 });
  redis.on('error', (err) => log.warn('redis error', { error: err.message }));
  try {
    const connection = await connectTemporalClient(config.temporalTarget);
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace });
      const store = new ProjectionStore(redis, { ttlSeconds: config.statusTtlSeconds });
      log.info('reconcile started', { temporal: config.temporalTarget.summary });
      return await reconcile({ client, store, namespace: config.temporal.namespace, log });
    } finally {
      await connection.close();
    }
  } finally {
    redis.disconnect();
  }
}

if (require.main === module) {
  runReconcile()
    .then((report) => {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      process.exitCode = report.errors > 0 ? 2 : 0;
    })
    .catch((err) => {
      log.fatal('reconcile failed', { error: err instanceof Error ? err.stack : String(err) });
      process.exit(1);
    });
}
