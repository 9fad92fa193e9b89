/** What a delivery sends: the body (the event as JSON, or Slack's `{"text"}`), its headers and its signature. */
import { createHmac } from 'node:crypto';
import type { PubflowEvent } from './types';

/** Slack's mrkdwn needs &, < and > escaped in any text it did not write itself. */
const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One line for a channel that people read. */
export function slackText(e: PubflowEvent): string {
  const d = e.data;
  const where = [d.platform, d.accountId].filter(Boolean).join('/');
  const task = `task ${d.taskId}${where ? ` (${where})` : ''}${d.title !== undefined ? ` "${d.title}"` : ''}`;
  let line: string;
  switch (e.type) {
    case 'task.succeeded':
      line = `Published: ${task}${d.result?.url ? ` ${d.result.url}` : ''}`;
      break;
    case 'task.failed':
      line = `Failed for good: ${task}, review ${d.review?.decision ?? 'closed'} (${d.errorKind ?? 'unknown error'})`;
      break;
    case 'review.opened':
      line = `Review opened: ${task} failed with ${d.review?.kind ?? d.errorKind}: ${d.review?.reason ?? ''}`;
      break;
    case 'review.decided':
      line = `Review decided: ${task}, attempt ${d.review?.attempt}: ${d.review?.decision}${d.review?.note ? ` (${d.review.note})` : ''}`;
      break;
    case 'batch.completed': {
      const c = d.counts;
      line = `Batch ${d.taskId} ${d.status}${c ? `: ${c.success} of ${c.total} published, ${c.failed} failed, ${c.cancelled} cancelled` : ''}`;
      break;
    }
    case 'account.needs_login':
      line = `Account ${d.accountId ?? '?'} (${d.platform ?? '?'}) needs a new login; its queue is held until it is reactivated (task ${d.taskId})`;
      break;
  }
  return `pubflow: ${slackEscape(line.trim())}`;
}

/** The raw body for a subscription's format: the bytes that are signed and sent, the same on every redelivery. */
export function eventBody(e: PubflowEvent, format: 'json' | 'slack'): string {
  return format === 'slack' ? JSON.stringify({ text: slackText(e) }) : JSON.stringify(e);
}

/** `sha256=<hex HMAC-SHA256 of the raw body>`. */
export function signature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function deliveryHeaders(e: PubflowEvent, body: string, secret: string): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'User-Agent': 'pubflow-events/1',
    'Pubflow-Event': e.type,
    'Pubflow-Delivery': e.id,
    'Pubflow-Signature': signature(body, secret),
  };
}
