/**
 * The ceiling's worker process (see ceiling-workflow.ts): one process, as pubflow's worker, with a workflow worker
 * on the main queue and the no-op activity on its own queue with BENCH_WORKER_CONCURRENCY slots (pubflow's upload
 * slots). Started by bench/batch.ts; env: TEMPORAL_ADDRESS, BENCH_CEILING_QUEUE, BENCH_WORKER_CONCURRENCY.
 */
import path from 'node:path';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';

async function run() {
  const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const taskQueue = process.env.BENCH_CEILING_QUEUE ?? 'pubflow-bench-ceiling';
  const slots = Number(process.env.BENCH_WORKER_CONCURRENCY ?? '20');
  const root = process.env.BENCH_ROOT ?? process.cwd();
  // Bundled here (not prebuilt): the compiled file sits in a temp dir, so webpack is told where node_modules is.
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'ceiling-workflow.js'),
    webpackConfigHook: (config) => ({
      ...config,
      resolve: { ...config.resolve, modules: [path.join(root, 'node_modules'), 'node_modules'] },
    }),
  });
  const connection = await NativeConnection.connect({ address });
  const main = await Worker.create({ connection, taskQueue, workflowBundle });
  const acts = await Worker.create({
    connection,
    taskQueue: 'pubflow-bench-ceiling-activities',
    activities: { noop: async () => undefined },
    maxConcurrentActivityTaskExecutions: slots,
  });
  const stop = () => {
    main.shutdown();
    acts.shutdown();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  console.log('worker started');
  await Promise.all([main.run(), acts.run()]);
  await connection.close();
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
