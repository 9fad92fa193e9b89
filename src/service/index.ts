export { createService, type PubflowService } from './service';
export type { ServiceDeps } from './deps';
export * from './errors';
