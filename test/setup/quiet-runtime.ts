import { DefaultLogger, Runtime } from '@temporalio/worker';

// Workers in tests log only errors (set PUBFLOW_TEST_DEBUG=1 for everything).
Runtime.install({ logger: new DefaultLogger(process.env.PUBFLOW_TEST_DEBUG ? 'INFO' : 'ERROR') });
