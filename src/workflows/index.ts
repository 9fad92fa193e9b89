import type { PublishBatchWorkflow, PublishSingleWorkflow, WorkflowTypeName } from '../shared/workflow-contracts';
import type { accountGate, platformGate } from './account-gate';
import type { deliverEvent } from './deliver-event';
import type { pruneProjectionWorkflow } from './prune-projection';
import type { publishBatch } from './publish-batch';
import type { publishSingle } from './publish-single';
import type { reconcileProjectionWorkflow } from './reconcile-projection';

export { publishSingle } from './publish-single';
export { publishBatch } from './publish-batch';
export { pruneProjectionWorkflow } from './prune-projection';
export { reconcileProjectionWorkflow } from './reconcile-projection';
export { accountGate, platformGate } from './account-gate';
export { deliverEvent } from './deliver-event';
export type { GateInput } from './account-gate';
export type {
  PublishBatchInput,
  PublishBatchOutput,
  PublishSingleInput,
  PublishSingleOutput,
} from '../shared/workflow-contracts';

// Compile-time only: every workflow type name in the contracts is exported here under that name, and the two task
// workflows keep the signatures their contracts promise, so the client side (which starts them by name) cannot drift.
type Check<T extends true> = T;
type Exported = {
  publishSingle: typeof publishSingle;
  publishBatch: typeof publishBatch;
  accountGate: typeof accountGate;
  platformGate: typeof platformGate;
  pruneProjectionWorkflow: typeof pruneProjectionWorkflow;
  reconcileProjectionWorkflow: typeof reconcileProjectionWorkflow;
  deliverEvent: typeof deliverEvent;
};
export type _ContractsHold = [
  Check<WorkflowTypeName extends keyof Exported ? true : false>,
  Check<typeof publishSingle extends PublishSingleWorkflow ? true : false>,
  Check<typeof publishBatch extends PublishBatchWorkflow ? true : false>,
];
