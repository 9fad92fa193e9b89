export { publishSingle } from './publish-single';
export type { PublishSingleInput, PublishSingleOutput } from './publish-single';
export { pruneProjectionWorkflow } from './prune-projection';
