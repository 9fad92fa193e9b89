import { z } from 'zod';
import { TASK_STATUSES, TASK_TYPES } from '../shared/types';

const isoWithOffset = () =>
  z.iso.datetime({ offset: true, message: 'must be ISO 8601 with an offset, e.g. 2026-12-01T09:00:00+08:00' });

const fileRef = z.object({ path: z.string().min(1, 'must not be empty') }).strict();

export const PublishBody = z
  .object({
    platform: z.string().min(1, 'must not be empty'),
    accountId: z.string().min(1, 'must not be empty'),
    video: fileRef,
    title: z.string().min(1, 'must not be empty').max(1000),
    description: z.string().max(20_000).optional(),
    tags: z.array(z.string().min(1)).max(100).optional(),
    cover: fileRef.optional(),
    publishAt: z.iso
      .datetime({ offset: true, message: 'must be ISO 8601 with an offset, e.g. 2026-12-01T09:00:00+08:00' })
      .optional(),
    priority: z.number().int().min(0).max(9).default(5),
    options: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type PublishBody = z.infer<typeof PublishBody>;

const pageLimit = z.coerce.number().int().min(1).max(1000).default(50);
const pageOffset = z.coerce.number().int().min(0).default(0);

export const ListTasksQuery = z
  .object({
    status: z.enum(TASK_STATUSES).optional(),
    type: z.enum(TASK_TYPES).optional(),
    parent: z.string().min(1).optional(),
    limit: pageLimit,
    offset: pageOffset,
  })
  .strict();

export const ListReviewsQuery = z
  .object({
    platform: z.string().min(1).optional(),
    accountId: z.string().min(1).optional(),
    kind: z.string().min(1).optional(),
    batchId: z.string().min(1).optional(),
    limit: pageLimit,
    offset: pageOffset,
  })
  .strict();

export const DeleteQuery = z.object({ force: z.enum(['true', 'false']).optional() }).strict();

export const RetryBody = z
  .object({
    patch: z
      .object({
        title: z.string().min(1).max(1000).optional(),
        description: z.string().max(20_000).optional(),
        tags: z.array(z.string().min(1)).max(100).optional(),
        accountId: z.string().min(1).optional(),
        video: fileRef.optional(),
      })
      .strict()
      .optional(),
    note: z.string().max(2000).optional(),
  })
  .strict();

export const ResolveBody = z.object({ url: z.url().optional(), note: z.string().max(2000).optional() }).strict();
export const DiscardBody = z.object({ note: z.string().max(2000).optional() }).strict();

export const TaskIdParam = z.string().min(1).max(400);

export const RescheduleBody = z.object({ publishAt: isoWithOffset() }).strict();
