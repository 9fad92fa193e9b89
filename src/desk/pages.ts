/**
 * The desk's pages, server-rendered with the strict `html` template (src/desk/html.ts): every client-written value
 * is escaped, URLs become links only when http(s). Action forms are rendered only for a role that may use them; the
 * server checks the role again on every POST (router.ts).
 */
import { roleAtLeast, type Principal, type Role } from '../auth/roles';
import type { AccountView } from '../service/accounts';
import type { AccountWaiting, Page, QueueStats } from '../projection/task-state-manager';
import type { ListTasksQuery } from '../api/schemas';
import type { TaskListPage } from '../service/tasks';
import type { Timeline } from '../service/timeline';
import { TASK_STATUSES, type DecisionRecord, type TaskDoc, type TaskStatus } from '../shared/types';
import { html, linkOrText, query, type Html } from './html';
import { DESK_ACTIONS, type DeskAction } from './actions';
import { throughputChart, type Throughput } from './throughput';

export interface PageContext {
  principal: Principal;
  csrf: string;
  flash?: { kind: 'ok' | 'error'; text: string } | null;
  now: number;
}

const can = (ctx: PageContext, action: DeskAction): boolean => roleAtLeast(ctx.principal.role, DESK_ACTIONS[action]);

const NAV: Array<[string, string]> = [
  ['/ui/', 'Overview'],
  ['/ui/reviews', 'Reviews'],
  ['/ui/tasks', 'Tasks'],
  ['/ui/batches', 'Batches'],
  ['/ui/accounts', 'Accounts'],
];

export function layout(ctx: PageContext | null, title: string, body: Html, current = ''): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        ${ctx ? html`<meta name="csrf-token" content="${ctx.csrf}" />` : ''}
        <title>${title} · pubflow desk</title>
        <link rel="stylesheet" href="/ui/assets/desk.css" />
        <script src="/ui/assets/desk.js" defer></script>
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/ui/">pubflow desk</a>
          ${
            ctx
              ? html`<nav>
                    ${NAV.map(
                      ([href, label]) =>
                        html`<a href="${href}" class="${href === current ? 'current' : ''}">${label}</a>`,
                    )}
                  </nav>
                  <div class="who">
                    signed in as <strong data-testid="who">${ctx.principal.name}</strong> (<span data-testid="role"
                      >${ctx.principal.role}</span
                    >)
                    <form method="post" action="/ui/logout" class="inline">
                      ${csrfField(ctx)}<button type="submit">Sign out</button>
                    </form>
                  </div>`
              : ''
          }
        </header>
        <main>
          ${ctx?.flash ? html`<p class="flash ${ctx.flash.kind}" role="status" data-testid="flash">${ctx.flash.text}</p>` : ''}
          ${body}
        </main>
      </body>
    </html>`;
}

export const csrfField = (ctx: PageContext): Html => html`<input type="hidden" name="_csrf" value="${ctx.csrf}" />`;

export function loginPage(error: string | null): Html {
  return layout(
    null,
    'Sign in',
    html`<section class="card narrow">
      <h1>Sign in</h1>
      <p>
        Paste an API key (<code>data/admin.token</code> after <code>make up</code>, or one from
        <code>npx pubflow keys create</code>). It is checked once; the desk then keeps a session, never the key.
      </p>
      ${error ? html`<p class="flash error" role="alert" data-testid="login-error">${error}</p>` : ''}
      <form method="post" action="/ui/login">
        <label>API key <input type="password" name="token" autocomplete="off" required autofocus /></label>
        <button type="submit">Sign in</button>
      </form>
    </section>`,
  );
}

export function errorPage(ctx: PageContext | null, status: number, message: string, back?: string): Html {
  return layout(
    ctx,
    `Error ${status}`,
    html`<section class="card">
      <h1>${status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Could not do that'}</h1>
      <p class="flash error" data-testid="error">${message}</p>
      ${back ? html`<p><a href="${back}">Back</a></p>` : ''}
    </section>`,
  );
}

// ---------------------------------------------------------------- pieces

export function age(iso: string | null | undefined, now: number): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  let s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  s = Math.floor(h / 24);
  return `${s}d ${h % 24}h`;
}

const titleOf = (doc: TaskDoc): string => (typeof doc.data?.title === 'string' ? doc.data.title : '');

const statusChip = (status: string): Html =>
  html`<span class="status s-${status}" data-field="status">${status}</span>`;

function progressBar(doc: TaskDoc): Html {
  const pct = doc.counts
    ? doc.counts.total > 0
      ? Math.round(((doc.counts.success + doc.counts.failed + doc.counts.cancelled) / doc.counts.total) * 100)
      : 0
    : (doc.progress?.percent ?? (doc.status === 'success' ? 100 : 0));
  return html`<progress max="100" value="${pct}" data-field="bar"></progress>
    <span data-field="progress"
      >${doc.counts ? countsText(doc.counts) : doc.progress ? `${doc.progress.percent}% ${doc.progress.stage}` : ''}</span
    >`;
}

const countsText = (c: NonNullable<TaskDoc['counts']>): string =>
  `${c.success} success, ${c.failed} failed, ${c.running} running, ${c.pending} pending, ${c.cancelled} cancelled of ${c.total}`;

const taskLink = (id: string): Html => html`<a href="/ui/tasks/${encodeURIComponent(id)}"><code>${id}</code></a>`;

function pager(
  base: string,
  params: Record<string, string | undefined>,
  page: Page<unknown>,
  offset: number,
  limit: number,
) {
  const prev = offset > 0 ? Math.max(0, offset - limit) : null;
  const next = offset + limit < page.total ? offset + limit : null;
  return html`<p class="pager">
    ${page.total === 0 ? 'none' : `${offset + 1}–${Math.min(offset + page.items.length, page.total)} of ${page.total}`}
    ${prev !== null ? html` <a href="${base}${query({ ...params, offset: prev })}">‹ newer</a>` : ''}
    ${next !== null ? html` <a href="${base}${query({ ...params, offset: next })}" data-testid="next">older ›</a>` : ''}
  </p>`;
}

// ---------------------------------------------------------------- overview

export interface OverviewData {
  stats: QueueStats;
  throughput: Throughput;
  reviews: Page<TaskDoc>;
  accounts: AccountView[];
}

export function overviewPage(ctx: PageContext, d: OverviewData): Html {
  const groups = new Map<string, { kind: string; platform: string; n: number; oldest: string }>();
  for (const doc of d.reviews.items) {
    const kind = doc.review?.kind ?? 'unknown';
    const platform = doc.platform ?? 'unknown';
    const key = `${kind}\u0000${platform}`;
    const at = doc.review?.failed_at ?? doc.updated_at;
    const g = groups.get(key);
    if (!g) groups.set(key, { kind, platform, n: 1, oldest: at });
    else {
      g.n++;
      if (at < g.oldest) g.oldest = at;
    }
  }
  const needLogin = d.accounts.filter((a) => a.status === 'needs_login');
  return layout(
    ctx,
    'Overview',
    html`<h1>Overview</h1>
      <section class="card" data-live-stats>
        <h2>Tasks by status</h2>
        <div class="stats">
          ${TASK_STATUSES.map(
            (s) =>
              html`<a class="stat" href="/ui/tasks${query({ status: s })}"
                ><span class="n" data-stat="${s}">${d.stats[s]}</span> <span class="label">${s}</span></a
              >`,
          )}
          <span class="stat"
            ><span class="n" data-stat="total">${d.stats.total}</span><span class="label">total</span></span
          >
        </div>
      </section>
      <section class="card">
        <h2>Recent throughput</h2>
        ${throughputChart(d.throughput)}
      </section>
      <section class="card">
        <h2>Open reviews <small>(${d.reviews.total})</small></h2>
        ${
          groups.size === 0
            ? html`<p>No open reviews.</p>`
            : html`<table data-testid="review-groups">
                  <thead>
                    <tr>
                      <th>kind</th>
                      <th>platform</th>
                      <th>open</th>
                      <th>oldest</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${[...groups.values()].map(
                      (g) =>
                        html`<tr>
                          <td><a href="/ui/reviews${query({ kind: g.kind, platform: g.platform })}">${g.kind}</a></td>
                          <td>${g.platform}</td>
                          <td>${g.n}</td>
                          <td>${age(g.oldest, ctx.now)}</td>
                        </tr>`,
                    )}
                  </tbody>
                </table>
                ${d.reviews.total > d.reviews.items.length ? html`<p class="hint">Grouped from the newest ${d.reviews.items.length}.</p>` : ''}`
        }
      </section>
      <section class="card">
        <h2>Accounts needing login <small>(${needLogin.length})</small></h2>
        ${
          needLogin.length === 0
            ? html`<p>None.</p>`
            : html`<ul>
                ${needLogin.map(
                  (a) =>
                    html`<li>
                      <a href="/ui/accounts">${a.id}</a> (${a.platform}) since ${age(a.needsLogin?.since, ctx.now)}:
                      ${a.needsLogin?.reason ?? ''}
                    </li>`,
                )}
              </ul>`
        }
      </section>`,
    '/ui/',
  );
}

// ---------------------------------------------------------------- reviews

export interface ReviewFilters {
  platform?: string;
  accountId?: string;
  kind?: string;
  batchId?: string;
}

export function reviewsPage(
  ctx: PageContext,
  d: { filters: ReviewFilters; page: Page<TaskDoc>; offset: number; limit: number; matching: string[] },
): Html {
  const f = d.filters;
  const operator = can(ctx, 'retry');
  return layout(
    ctx,
    'Reviews',
    html`<h1>Reviews <small>(${d.page.total} open)</small></h1>
      <form method="get" action="/ui/reviews" class="filters card">
        <label>platform <input name="platform" value="${f.platform ?? ''}" /></label>
        <label>account <input name="accountId" value="${f.accountId ?? ''}" /></label>
        <label>kind <input name="kind" value="${f.kind ?? ''}" list="kinds" /></label>
        <label>batch <input name="batchId" value="${f.batchId ?? ''}" /></label>
        <datalist id="kinds">
          ${['RateLimited', 'NotSent', 'AuthExpired', 'VerificationRequired', 'ContentRejected', 'Unconfirmed', 'InvalidResult', 'Internal'].map((k) => html`<option value="${k}"></option>`)}
        </datalist>
        <button type="submit">Filter</button> <a href="/ui/reviews">clear</a>
      </form>
      ${
        operator && d.page.total > 0
          ? html`<form
              method="post"
              action="/ui/reviews/retry-all"
              class="card bulk"
              data-bulk
              data-count="${d.page.total}"
              data-watch="${d.matching.join(',')}"
            >
              ${csrfField(ctx)}
              ${(['platform', 'accountId', 'kind', 'batchId'] as const).map((k) =>
                f[k] ? html`<input type="hidden" name="${k}" value="${f[k]}" />` : '',
              )}
              <p>
                <strong data-testid="bulk-count">${d.page.total}</strong> open review(s) match these filters. Retrying
                them all sends each one's publish
                again${
                  d.page.items.some((x) => x.review?.kind === 'Unconfirmed')
                    ? html`; <strong>some are Unconfirmed: their post may already exist</strong>`
                    : ''
                }.
              </p>
              <label>note <input name="note" maxlength="2000" /></label>
              <label class="confirm"
                ><input type="checkbox" name="confirm" value="yes" required /> I have checked: retry all
                ${d.page.total}</label
              >
              <button type="submit" data-testid="bulk-retry">Retry all ${d.page.total}</button>
              <p class="progress" data-bulk-progress hidden></p>
            </form>`
          : ''
      }
      <table class="reviews" data-testid="reviews">
        <thead>
          <tr>
            <th>task</th>
            <th>title</th>
            <th>platform / account</th>
            <th>kind</th>
            <th>message</th>
            <th>age</th>
            <th>status</th>
            ${operator ? html`<th>actions</th>` : ''}
          </tr>
        </thead>
        <tbody>
          ${d.page.items.map((doc) => reviewRow(ctx, doc, operator))}
        </tbody>
      </table>
      ${pager('/ui/reviews', { ...f }, d.page, d.offset, d.limit)}`,
    '/ui/reviews',
  );
}

function reviewRow(ctx: PageContext, doc: TaskDoc, operator: boolean): Html {
  const r = doc.review;
  const id = doc.task_id;
  const enc = encodeURIComponent(id);
  const unconfirmed = r?.kind === 'Unconfirmed';
  return html`<tr data-live-id="${id}" data-testid="review-row">
    <td>
      ${taskLink(id)}${doc.parent_task_id ? html`<br /><small>batch ${taskLink(doc.parent_task_id)}</small>` : ''}
    </td>
    <td class="title" data-field="title">${titleOf(doc)}</td>
    <td>${doc.platform ?? ''} / ${doc.account_id ?? ''}</td>
    <td><span class="kind">${r?.kind ?? ''}</span></td>
    <td class="msg">${r?.message ?? doc.error_message ?? ''}</td>
    <td>${age(r?.failed_at, ctx.now)}</td>
    <td>${statusChip(doc.status)}</td>
    ${
      operator
        ? html`<td class="actions">
            <details>
              <summary>${unconfirmed ? 'Retry… (may already exist)' : 'Retry…'}</summary>
              <form
                method="post"
                action="/ui/reviews/${enc}/retry"
                class="stack"
                ${unconfirmed ? html`data-confirm="The platform did not confirm this upload: the post may already exist. Retry anyway?"` : ''}
              >
                ${csrfField(ctx)}
                ${unconfirmed ? html`<p class="warn" data-testid="unconfirmed-warning">Unconfirmed: the post may already exist on ${doc.platform ?? 'the platform'}. Check the account before retrying, or resolve it with its URL.</p>` : ''}
                <label>title <input name="title" value="${titleOf(doc)}" maxlength="1000" /></label>
                <label
                  >description
                  <textarea name="description" maxlength="20000">
${typeof doc.data?.description === 'string' ? doc.data.description : ''}</textarea>
                </label>
                <label
                  >tags (comma-separated)
                  <input
                    name="tags"
                    value="${Array.isArray(doc.data?.tags) ? (doc.data.tags as unknown[]).map(String).join(', ') : ''}"
                /></label>
                <label>account <input name="accountId" value="${doc.account_id ?? ''}" /></label>
                <label>video (path in the media root) <input name="video" value="${videoPath(doc)}" /></label>
                <label>note <input name="note" maxlength="2000" /></label>
                <button type="submit" data-testid="retry">
                  ${unconfirmed ? 'Retry: the post may already exist' : 'Retry'}
                </button>
              </form>
            </details>
            <details>
              <summary>Resolve…</summary>
              <form method="post" action="/ui/reviews/${enc}/resolve" class="stack">
                ${csrfField(ctx)}
                <label>URL of the post <input name="url" type="url" placeholder="https://" /></label>
                <label>note <input name="note" maxlength="2000" /></label>
                <button type="submit" data-testid="resolve">Resolve</button>
              </form>
            </details>
            <details>
              <summary>Discard…</summary>
              <form method="post" action="/ui/reviews/${enc}/discard" class="stack">
                ${csrfField(ctx)}
                <label>note <input name="note" maxlength="2000" /></label>
                <button type="submit" data-testid="discard">Discard</button>
              </form>
            </details>
          </td>`
        : ''
    }
  </tr>`;
}

const videoPath = (doc: TaskDoc): string => {
  const v = doc.data?.video as { path?: unknown } | undefined;
  return typeof v?.path === 'string' ? v.path : '';
};

// ---------------------------------------------------------------- tasks

/** The Tasks and Batches pages: every filter of GET /api/v1/tasks, in one form. */
export function tasksPage(
  ctx: PageContext,
  d: { query: ListTasksQuery; page: TaskListPage },
  title = 'Tasks',
  current = '/ui/tasks',
): Html {
  const q = d.query;
  const batches = q.type === 'batch_publish';
  const scan = d.page.total === null;
  // The query string of this very list (for the pager), without its paging.
  const params: Record<string, string | undefined> = {
    status: q.status,
    type: batches ? undefined : q.type,
    parent: q.parent,
    platform: q.platform,
    accountId: q.accountId,
    since: q.since,
    until: q.until,
    time: q.time === 'created' ? undefined : q.time,
    search: q.search,
  };
  const local = (iso: string | undefined): string => (iso ? new Date(iso).toISOString().slice(0, 16) : '');
  return layout(
    ctx,
    title,
    html`<h1>${title} <small>(${scan ? `${d.page.items.length} shown` : d.page.total})</small></h1>
      <form method="get" action="${current}" class="filters card" data-testid="task-filters">
        <label
          >search <input name="search" value="${q.search ?? ''}" placeholder="task id or title" data-testid="search"
        /></label>
        <label
          >status
          <select name="status">
            <option value="">any</option>
            ${TASK_STATUSES.map((s) => html`<option value="${s}" ${q.status === s ? 'selected' : ''}>${s}</option>`)}
          </select></label
        >
        ${
          batches
            ? ''
            : html`<label
                  >type
                  <select name="type">
                    <option value="">any</option>
                    ${['publish', 'batch_publish'].map(
                      (s) => html`<option value="${s}" ${q.type === s ? 'selected' : ''}>${s}</option>`,
                    )}
                  </select></label
                >
                <label>platform <input name="platform" value="${q.platform ?? ''}" size="10" /></label>
                <label>account <input name="accountId" value="${q.accountId ?? ''}" size="12" /></label>
                <label>batch <input name="parent" value="${q.parent ?? ''}" /></label>`
        }
        <label
          ><select name="time" aria-label="which time">
            <option value="created" ${q.time === 'created' ? 'selected' : ''}>created</option>
            <option value="updated" ${q.time === 'updated' ? 'selected' : ''}>updated</option>
          </select>
          from <input type="datetime-local" name="since" value="${local(q.since)}"
        /></label>
        <label>to <input type="datetime-local" name="until" value="${local(q.until)}" /> UTC</label>
        <button type="submit" data-testid="filter">Filter</button> <a href="${current}">clear</a>
      </form>
      <table data-testid="tasks">
        <thead>
          <tr>
            <th>task</th>
            <th>${batches ? 'items' : 'title'}</th>
            <th>platform / account</th>
            <th>status</th>
            <th>progress</th>
            <th>${q.time === 'updated' && scan ? 'updated' : 'created'}</th>
          </tr>
        </thead>
        <tbody>
          ${d.page.items.map(
            (doc) =>
              html`<tr data-live-id="${doc.task_id}">
                <td>${taskLink(doc.task_id)}</td>
                <td class="title">${doc.counts ? `${doc.counts.total} items` : titleOf(doc)}</td>
                <td>${doc.platform ?? ''}${doc.account_id ? ` / ${doc.account_id}` : ''}</td>
                <td>
                  ${statusChip(doc.status)}${doc.review?.open ? html` <a href="/ui/reviews${query({ batchId: doc.parent_task_id ?? undefined })}" class="kind">in review</a>` : ''}
                </td>
                <td>${progressBar(doc)}</td>
                <td>${age(q.time === 'updated' && scan ? doc.updated_at : doc.created_at, ctx.now)} ago</td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${
        scan
          ? html`<p class="pager" data-testid="scan-pager">
              ${d.page.items.length === 0 ? 'none here' : ''} (looked at ${d.page.scanned ?? 0} tasks)
              ${q.cursor ? html` <a href="${current}${query(params)}">‹ newest</a>` : ''}
              ${d.page.next ? html` <a href="${current}${query({ ...params, cursor: d.page.next })}" data-testid="next">older ›</a>` : ''}
            </p>`
          : pager(current, params, { items: d.page.items, total: d.page.total ?? 0 }, q.offset, q.limit)
      }`,
    current,
  );
}

export interface TaskPageData {
  doc: TaskDoc;
  children: Page<TaskDoc> | null;
  /** The status the children are filtered by. */
  childStatus?: TaskStatus;
  /** From Temporal's history; null when Temporal could not answer (the document's own record is shown then). */
  timeline: Timeline | null;
  temporalUrl: string;
}

export function taskPage(ctx: PageContext, d: TaskPageData): Html {
  const doc = d.doc;
  const id = doc.task_id;
  const enc = encodeURIComponent(id);
  const open = doc.review?.open === true;
  const cancellable = ['pending', 'running', 'retry'].includes(doc.status) || open;
  return layout(
    ctx,
    `Task ${id}`,
    html`<h1>Task <code data-testid="task-id">${id}</code></h1>
      <section class="card" data-live-id="${id}">
        <p>${statusChip(doc.status)} attempt <span data-field="attempt">${doc.attempt}</span> · ${progressBar(doc)}</p>
        <p>
          <a href="${d.temporalUrl}" rel="noopener noreferrer" target="_blank" data-testid="temporal-link"
            >Open in Temporal UI</a
          >
          ${doc.parent_task_id ? html` · batch ${taskLink(doc.parent_task_id)}` : ''}
        </p>
        <dl class="doc">
          <dt>type</dt>
          <dd>${doc.task_type}</dd>
          <dt>title</dt>
          <dd data-testid="task-title">${titleOf(doc)}</dd>
          <dt>platform / account</dt>
          <dd>${doc.platform ?? ''} / ${doc.account_id ?? ''}</dd>
          <dt>created</dt>
          <dd>${doc.created_at}</dd>
          <dt>scheduled for</dt>
          <dd>${doc.scheduled_for ?? '—'}</dd>
          <dt>completed</dt>
          <dd>${doc.completed_at ?? '—'}</dd>
          <dt>result</dt>
          <dd>
            ${doc.result?.url ? linkOrText(doc.result.url) : ''}
            ${doc.result?.postId ? html`<code>${doc.result.postId}</code>` : ''}
          </dd>
          <dt>error</dt>
          <dd class="msg">${doc.error_kind ? `${doc.error_kind}: ` : ''}${doc.error_message ?? ''}</dd>
        </dl>
        ${
          cancellable && can(ctx, 'cancel')
            ? html`<form
                method="post"
                action="/ui/tasks/${enc}/cancel"
                class="inline"
                data-confirm="Cancel this task?"
                data-while-open
              >
                ${csrfField(ctx)} <input name="note" placeholder="note" /><button type="submit" data-testid="cancel">
                  Cancel task
                </button>
              </form>`
            : ''
        }
      </section>
      ${
        doc.review
          ? html`<section class="card">
              <h2>Review ${open ? '(open)' : `(${doc.review.decision ?? 'closed'})`}</h2>
              <p>
                <span class="kind">${doc.review.kind}</span> on attempt ${doc.review.attempt}:
                <span class="msg">${doc.review.message}</span>
              </p>
              ${doc.review.evidence ? html`<pre class="msg">${doc.review.evidence}</pre>` : ''}
              ${open ? html`<p><a href="/ui/reviews${query({ batchId: doc.parent_task_id ?? undefined })}">Decide it on the Reviews page</a>${doc.review.kind === 'Unconfirmed' ? ' (Unconfirmed: the post may already exist)' : ''}</p>` : ''}
            </section>`
          : ''
      }
      <section class="card">
        <h2>Timeline</h2>
        ${d.timeline ? '' : html`<p class="msg">Temporal did not answer: this is the document's own record.</p>`}
        <table data-testid="timeline">
          <thead>
            <tr>
              <th>when</th>
              <th>what</th>
              <th>who</th>
              <th>note</th>
            </tr>
          </thead>
          <tbody>
            ${(d.timeline ? fromHistory(d.timeline) : timeline(doc)).map(
              (e) =>
                html`<tr>
                  <td>${e.at}</td>
                  <td>${e.what}</td>
                  <td>${e.who}</td>
                  <td class="msg">${e.note}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>
      ${
        d.children
          ? html`<section class="card">
              <h2>Items <small>(${d.children.total}${d.childStatus ? ` ${d.childStatus}` : ''})</small></h2>
              <p data-testid="children-filter">
                <a href="/ui/tasks/${enc}">all</a>
                ${TASK_STATUSES.filter((s) => s !== 'retry').map(
                  (s) =>
                    html` ·
                      <a
                        href="/ui/tasks/${enc}${query({ children: s })}"
                        ${d.childStatus === s ? 'aria-current="true"' : ''}
                        >${s}${doc.counts && s in doc.counts ? ` ${doc.counts[s as keyof typeof doc.counts]}` : ''}</a
                      >`,
                )}
              </p>
              <p>
                <a href="/ui/reviews${query({ batchId: id })}">Open reviews of this batch</a> ·
                <a href="/ui/tasks${query({ parent: id })}">all items</a>
              </p>
              <table>
                <tbody>
                  ${d.children.items.map(
                    (c) =>
                      html`<tr data-live-id="${c.task_id}">
                        <td>${taskLink(c.task_id)}</td>
                        <td class="title">${titleOf(c)}</td>
                        <td>${statusChip(c.status)}</td>
                        <td>${progressBar(c)}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </section>`
          : ''
      }
      <details class="card">
        <summary>Document (JSON)</summary>
        <pre data-testid="task-json">${JSON.stringify(doc, null, 2)}</pre>
      </details>`,
    '/ui/tasks',
  );
}

interface TimelineEntry {
  at: string;
  what: string;
  who: string;
  note: string;
}

function timeline(doc: TaskDoc): TimelineEntry[] {
  const out: TimelineEntry[] = [{ at: doc.created_at, what: 'created', who: '', note: '' }];
  if (doc.started_at) out.push({ at: doc.started_at, what: 'started', who: '', note: '' });
  if (doc.review)
    out.push({
      at: doc.review.failed_at,
      what: `attempt ${doc.review.attempt} failed: ${doc.review.kind}`,
      who: '',
      note: doc.review.message,
    });
  for (const d of doc.decisions ?? []) out.push(decisionEntry(d));
  if (doc.completed_at) out.push({ at: doc.completed_at, what: `finished: ${doc.status}`, who: '', note: '' });
  return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

/** Temporal's history, one row per entry (src/service/timeline.ts). */
function fromHistory(t: Timeline): TimelineEntry[] {
  return t.entries.map((e) => {
    switch (e.type) {
      case 'attempt':
        return {
          at: e.at,
          what: `attempt ${e.attempt ?? '?'}: ${e.outcome}${e.error_kind ? ` (${e.error_kind})` : ''} · "${e.title ?? ''}"${e.accountId ? ` to ${e.platform}/${e.accountId}` : ''}`,
          who: '',
          note: [e.message, e.evidence ? `evidence: ${e.evidence}` : null, e.url].filter(Boolean).join(' · '),
        };
      case 'auto_retry':
        return { at: e.at, what: `automatic retry in ${e.delay_seconds ?? 0} s`, who: '', note: '' };
      case 'review_opened':
        return { at: e.at, what: `review opened: ${e.error_kind ?? ''}`, who: '', note: '' };
      case 'review_closed':
        return {
          at: e.at,
          what: `review closed: ${e.action ?? ''}${e.via ? ` via ${e.via}` : ''}${e.patched?.length ? ` (corrected ${e.patched.join(', ')})` : ''}`,
          who: e.action === 'expired' ? '' : `${e.by ?? ''} (${e.role ?? ''})`,
          note: e.note ?? '',
        };
      case 'decision':
        return {
          at: e.at,
          what: `${e.action ?? ''}${e.via ? ` via ${e.via}` : ''}`,
          who: `${e.by ?? ''} (${e.role ?? ''})`,
          note: e.note ?? '',
        };
      default:
        return { at: e.at, what: `finished: ${e.status ?? ''}`, who: '', note: '' };
    }
  });
}

const decisionEntry = (d: DecisionRecord): TimelineEntry => ({
  at: d.at,
  what: `${d.action}${d.attempt !== undefined ? ` (attempt ${d.attempt})` : ''}${d.via ? ` via ${d.via}` : ''}${d.publishAt ? ` to ${d.publishAt}` : ''}`,
  who: `${d.by} (${d.role})`,
  note: d.note ?? '',
});

// ---------------------------------------------------------------- accounts

export function accountsPage(
  ctx: PageContext,
  accounts: AccountView[],
  waiting: { accounts: Map<string, AccountWaiting>; complete: boolean },
): Html {
  const operator = can(ctx, 'reactivate');
  const waits = (id: string): Html => {
    const w = waiting.accounts.get(id);
    if (!w) return html`<span class="muted">nothing</span>`;
    const more = waiting.complete ? '' : '≥ ';
    const link = (status: string, n: number, label: string) =>
      n > 0
        ? html`<a href="/ui/tasks${query({ accountId: id, status, time: 'updated' })}" data-testid="waits-${status}"
            >${more}${n} ${label}</a
          >`
        : '';
    return html`${[link('pending', w.pending, 'queued or scheduled'), link('running', w.running, 'uploading'), link('retry', w.retry, 'backing off')].filter((x) => x !== '').map((x, i) => html`${i > 0 ? ' · ' : ''}${x}`)}
      <br /><small>${w.sample.map((t, i) => html`${i > 0 ? ' ' : ''}${taskLink(t)}`)}</small>`;
  };
  return layout(
    ctx,
    'Accounts',
    html`<h1>Accounts <small>(${accounts.length})</small></h1>
      <table data-testid="accounts">
        <thead>
          <tr>
            <th>account</th>
            <th>platform</th>
            <th>status</th>
            <th>since / reason</th>
            <th>waiting on it</th>
            <th>last reactivation</th>
            ${operator ? html`<th></th>` : ''}
          </tr>
        </thead>
        <tbody>
          ${accounts.map(
            (a) =>
              html`<tr data-account="${a.id}">
                <td><strong>${a.id}</strong>${a.displayName ? html`<br /><small>${a.displayName}</small>` : ''}</td>
                <td>${a.platform}</td>
                <td>${statusChip(a.status)}</td>
                <td>
                  ${a.needsLogin ? html`${age(a.needsLogin.since, ctx.now)} · <span class="msg">${a.needsLogin.reason ?? ''}</span>` : ''}
                </td>
                <td data-testid="waits">${waits(a.id)}</td>
                <td>
                  ${a.lastReactivation ? `${a.lastReactivation.by} (${a.lastReactivation.role}) ${a.lastReactivation.at}` : ''}
                </td>
                ${
                  operator
                    ? html`<td>
                        ${
                          a.status === 'needs_login'
                            ? html`<form
                                method="post"
                                action="/ui/accounts/${encodeURIComponent(a.id)}/reactivate"
                                class="inline"
                              >
                                ${csrfField(ctx)} <input name="note" placeholder="note" /><button
                                  type="submit"
                                  data-testid="reactivate"
                                >
                                  Reactivate
                                </button>
                              </form>`
                            : ''
                        }
                      </td>`
                    : ''
                }
              </tr>`,
          )}
        </tbody>
      </table>`,
    '/ui/accounts',
  );
}

export type { Role };
