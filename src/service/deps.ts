import type { Client } from '@temporalio/client';
import type Redis from 'ioredis';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { DriverRegistry } from '../platforms';
import type { AccountRegistry } from '../platforms/accounts';
import type { ProjectionStore } from '../projection/store';
import type { TaskStateManager } from '../projection/task-state-manager';

/** Everything the use cases need; built once per process (src/api.ts) and handed to createService. */
export interface ServiceDeps {
  client: Client;
  redis: Redis;
  store: ProjectionStore;
  tsm: TaskStateManager;
  accounts: AccountRegistry;
  drivers: DriverRegistry;
  config: Pick<Config, 'mediaRoot' | 'policyFor' | 'temporal' | 'scheduleHorizonMs'>;
  log: Logger;
}
