/**
 * Two task queues: workflows and bookkeeping activities (projection writes, reviews) run on the main queue;
 * platform uploads run on their own queue, so the upload slots (PUBFLOW_WORKER_CONCURRENCY) are never
 * taken by projection writes, and a backlog of uploads never delays a status write.
 */
export const DEFAULT_TASK_QUEUE = 'pubflow';
export const uploadQueueFor = (mainQueue: string) => `${mainQueue}-uploads`;
