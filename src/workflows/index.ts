export { publishSingle } from './publish-single';
export type { PublishSingleInput, PublishSingleOutput } from './publish-single';
export { publishBatch } from './publish-batch';
export type { PublishBatchInput, PublishBatchOutput } from './publish-batch';
export { pruneProjectionWorkflow } from './prune-projection';
export { reconcileProjectionWorkflow } from './reconcile-projection';
export { accountGate, platformGate } from './account-gate';
export type { GateInput } from './account-gate';
