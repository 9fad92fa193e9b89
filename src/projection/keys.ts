/**
 * The Redis key schema of the projection, in one place.
 * The `celery:*` keys are a contract with operators (see the Celery migration guide); the `pubflow:*` keys are ours.
 * Lua scripts build keys from `KEY_PREFIX` (passed in as an argument), so they never spell a prefix themselves.
 */
import { randomUUID } from 'node:crypto';

export const KEY_PREFIX = {
  task: 'celery:task:',
  status: 'celery:index:status:',
  type: 'celery:index:type:',
  parent: 'celery:index:parent:',
  reviewOpen: 'pubflow:index:review:open',
  reviewPlatform: 'pubflow:index:review:platform:',
  reviewAccount: 'pubflow:index:review:account:',
  reviewKind: 'pubflow:index:review:kind:',
  reviewBatch: 'pubflow:index:review:batch:',
  deleted: 'pubflow:deleted:',
  meta: 'pubflow:meta:',
  temp: 'pubflow:tmp:',
} as const;

/** One JSON string per task. */
export const taskKey = (taskId: string): string => `${KEY_PREFIX.task}${taskId}`;

/** Every task document matches this (SCAN MATCH). */
export const TASK_PATTERN = `${KEY_PREFIX.task}*`;

/**
 * A deleted task's tombstone: a string (epoch ms) with the status TTL, set by the same script that deletes the
 * document. Writes of the task as it existed before that moment are refused, so an in-flight write or the
 * reconciler cannot bring a deleted task back. Outside INDEX_PATTERNS and TASK_PATTERN on purpose.
 */
export const tombstoneKey = (taskId: string): string => `${KEY_PREFIX.deleted}${taskId}`;

/**
 * A task's index record: a hash of the fields its index entries were made from (version, status, type, parent,
 * platform, account, review kind, review open) and the SHA-1 of the document JSON it describes, written by the same
 * script as the document, with the same TTL, and deleted with it. The scripts read it instead of decoding the document, which holds client text that Redis's
 * cjson may not read (a lone surrogate, deep nesting). Outside INDEX_PATTERNS and TASK_PATTERN on purpose.
 */
export const metaKey = (taskId: string): string => `${KEY_PREFIX.meta}${taskId}`;

/** Sorted sets; the score is epoch seconds (see the store for which timestamp). */
export const statusIndex = (status: string): string => `${KEY_PREFIX.status}${status}`;
export const typeIndex = (type: string): string => `${KEY_PREFIX.type}${type}`;
export const parentIndex = (batchId: string): string => `${KEY_PREFIX.parent}${batchId}`;

/** Open reviews only, scored by `review.failed_at`. */
export const reviewOpenIndex = (): string => KEY_PREFIX.reviewOpen;
export const reviewPlatformIndex = (platform: string): string => `${KEY_PREFIX.reviewPlatform}${platform}`;
export const reviewAccountIndex = (accountId: string): string => `${KEY_PREFIX.reviewAccount}${accountId}`;
export const reviewKindIndex = (kind: string): string => `${KEY_PREFIX.reviewKind}${kind}`;
export const reviewBatchIndex = (batchId: string): string => `${KEY_PREFIX.reviewBatch}${batchId}`;

/** Every index key matches one of these (SCAN MATCH); task and temp keys match none. */
export const INDEX_PATTERNS = ['celery:index:*', 'pubflow:index:*'] as const;

/** A scratch key for ZINTERSTORE, created and deleted inside one script. Outside INDEX_PATTERNS on purpose. */
export const tempKey = (): string => `${KEY_PREFIX.temp}${randomUUID()}`;
