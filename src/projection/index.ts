export * from './keys';
export * from './store';
export * from './task-state-manager';
