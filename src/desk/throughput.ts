/**
 * Recent throughput for the overview: tasks that reached success or failed, per minute, over the last hour. Read
 * from the status indexes (scored by `updated_at`, which for a finished task is when it finished): 120 ZCOUNTs in one
 * pipeline, whatever the number of tasks.
 */
import type Redis from 'ioredis';
import { statusIndex } from '../projection/keys';
import { html, type Html } from './html';

export interface Throughput {
  /** Minute buckets, oldest first; `at` is the bucket's start (epoch seconds). */
  minutes: Array<{ at: number; success: number; failed: number }>;
}

export async function readThroughput(redis: Redis, nowMs: number, minutes = 60): Promise<Throughput> {
  // Up to a second past now: a worker's clock a little ahead of this process's still counts.
  const end = Math.ceil(nowMs / 1000) + 1;
  const starts = Array.from({ length: minutes }, (_, i) => end - (minutes - i) * 60);
  const pipe = redis.pipeline();
  for (const at of starts) {
    pipe.zcount(statusIndex('success'), at, `(${at + 60}`);
    pipe.zcount(statusIndex('failed'), at, `(${at + 60}`);
  }
  const out = (await pipe.exec()) ?? [];
  const n = (i: number) => Number(out[i]?.[1] ?? 0);
  return { minutes: starts.map((at, i) => ({ at, success: n(2 * i), failed: n(2 * i + 1) })) };
}

/** A small bar chart as inline SVG (no script, no inline style: the page's CSP allows neither). */
export function throughputChart(t: Throughput): Html {
  const w = 6;
  const h = 60;
  const max = Math.max(1, ...t.minutes.map((m) => m.success + m.failed));
  const total = t.minutes.reduce((a, m) => ({ s: a.s + m.success, f: a.f + m.failed }), { s: 0, f: 0 });
  const bars = t.minutes.map((m, i) => {
    const hs = Math.round((m.success / max) * h);
    const hf = Math.round((m.failed / max) * h);
    return html`<rect class="ok" x="${i * w}" y="${h - hs}" width="${w - 1}" height="${hs}"
        ><title>${m.success} success</title></rect
      >
      <rect class="bad" x="${i * w}" y="${h - hs - hf}" width="${w - 1}" height="${hf}"
        ><title>${m.failed} failed</title></rect
      >`;
  });
  return html`<figure class="throughput">
    <svg
      viewBox="0 0 ${t.minutes.length * w} ${h}"
      width="${t.minutes.length * w * 2}"
      height="${h * 2}"
      role="img"
      aria-label="tasks finished per minute, last hour"
    >
      ${bars}
    </svg>
    <figcaption data-testid="throughput">
      Last hour: <strong>${total.s}</strong> success, <strong>${total.f}</strong> failed (per minute, peak ${max}).
    </figcaption>
  </figure>`;
}
