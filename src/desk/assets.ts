/**
 * The desk's two static assets, kept as strings so they are compiled into lib/ and served by the API process with
 * nothing read from disk or fetched from elsewhere. Plain ES5 for the browser: no build step. The script sets every
 * server value with textContent, never as HTML.
 */
export const DESK_JS = `// pubflow desk: a little vanilla JS over server-rendered pages. Live updates over server-sent events, confirmations,
// and the bulk retry's progress. Every value from the server is set with textContent, never as HTML.
(function () {
  'use strict';
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute('content') : '';

  // Confirmations (e.g. retrying an Unconfirmed review, cancelling a task).
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    var msg = form.getAttribute && form.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });

  var watched = {};
  function watchIds() {
    var out = [];
    document.querySelectorAll('[data-live-id]').forEach(function (el) {
      out.push(el.getAttribute('data-live-id'));
    });
    document.querySelectorAll('[data-watch]').forEach(function (el) {
      (el.getAttribute('data-watch') || '').split(',').forEach(function (id) {
        if (id) out.push(id);
      });
    });
    var seen = {};
    return out.filter(function (id) {
      if (seen[id]) return false;
      seen[id] = true;
      return true;
    });
  }

  function countsText(c) {
    return c.success + ' success, ' + c.failed + ' failed, ' + c.running + ' running, ' + c.pending +
      ' pending, ' + c.cancelled + ' cancelled of ' + c.total;
  }

  function applyTask(t) {
    watched[t.id] = t;
    document.querySelectorAll('[data-live-id]').forEach(function (row) {
      if (row.getAttribute('data-live-id') !== t.id) return;
      row.setAttribute('data-status', t.status);
      row.querySelectorAll('[data-field="status"]').forEach(function (el) {
        // Only the row's own chip (a batch page lists children with chips of their own).
        if (el.closest('[data-live-id]') !== row) return;
        el.textContent = t.status;
        el.className = 'status s-' + t.status;
      });
      row.querySelectorAll('[data-field="attempt"]').forEach(function (el) {
        if (el.closest('[data-live-id]') === row) el.textContent = String(t.attempt);
      });
      var pct = t.counts
        ? t.counts.total > 0 ? Math.round(((t.counts.success + t.counts.failed + t.counts.cancelled) / t.counts.total) * 100) : 0
        : t.progress ? t.progress.percent : t.status === 'success' ? 100 : 0;
      row.querySelectorAll('[data-field="bar"]').forEach(function (el) {
        if (el.closest('[data-live-id]') === row) el.value = pct;
      });
      row.querySelectorAll('[data-field="progress"]').forEach(function (el) {
        if (el.closest('[data-live-id]') !== row) return;
        el.textContent = t.counts ? countsText(t.counts) : t.progress ? t.progress.percent + '% ' + t.progress.stage : '';
      });
      // A finished task offers no cancel any more (the server would answer 409 anyway).
      var finished = t.status === 'success' || t.status === 'cancelled' || (t.status === 'failed' && !(t.review && t.review.open));
      row.querySelectorAll('[data-while-open]').forEach(function (el) {
        if (el.closest('[data-live-id]') === row) el.hidden = finished;
      });
      if (t.title !== null) {
        row.querySelectorAll('[data-field="title"]').forEach(function (el) {
          if (el.closest('[data-live-id]') === row) el.textContent = t.title;
        });
      }
    });
    updateBulk();
  }

  var bulkSent = null;
  function updateBulk() {
    var form = document.querySelector('[data-bulk]');
    if (!form || !bulkSent) return;
    var out = form.querySelector('[data-bulk-progress]');
    var ids = (form.getAttribute('data-watch') || '').split(',').filter(Boolean);
    var by = {};
    ids.forEach(function (id) {
      var t = watched[id];
      var s = t ? (t.status === 'failed' && t.review && t.review.open ? 'in review' : t.status) : 'unknown';
      by[s] = (by[s] || 0) + 1;
    });
    var parts = Object.keys(by).sort().map(function (k) { return by[k] + ' ' + k; });
    var done = (by.success || 0) + (by.cancelled || 0);
    out.hidden = false;
    out.textContent = 'Retried ' + bulkSent.retried + ' of ' + bulkSent.matched +
      (bulkSent.failed.length ? ' (' + bulkSent.failed.length + ' could not be)' : '') +
      '. Now: ' + parts.join(', ') + '. ' + done + ' of ' + ids.length + ' done.';
    out.setAttribute('data-done', String(done));
  }

  var bulk = document.querySelector('[data-bulk]');
  if (bulk) {
    bulk.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var n = bulk.getAttribute('data-count');
      if (!window.confirm('Retry all ' + n + ' open reviews matching these filters?')) return;
      var data = new URLSearchParams(new FormData(bulk));
      var button = bulk.querySelector('button[type="submit"]');
      button.disabled = true;
      var out = bulk.querySelector('[data-bulk-progress]');
      out.hidden = false;
      out.textContent = 'Retrying ' + n + '…';
      fetch(bulk.action, {
        method: 'POST',
        headers: { Accept: 'application/json', 'X-CSRF-Token': csrf },
        body: data,
        credentials: 'same-origin',
      })
        .then(function (res) {
          return res.json().then(function (body) {
            if (!res.ok) throw new Error((body && body.error && body.error.message) || 'HTTP ' + res.status);
            return body;
          });
        })
        .then(function (body) {
          bulkSent = body;
          updateBulk();
        })
        .catch(function (err) {
          out.textContent = 'Bulk retry failed: ' + err.message;
          button.disabled = false;
        });
    });
  }

  var ids = watchIds();
  var wantStats = !!document.querySelector('[data-live-stats]');
  if ((ids.length > 0 || wantStats) && window.EventSource) {
    var url = '/ui/events?ids=' + encodeURIComponent(ids.join(',')) + (wantStats ? '&stats=1' : '');
    var es = new EventSource(url);
    es.addEventListener('task', function (ev) {
      applyTask(JSON.parse(ev.data));
    });
    es.addEventListener('stats', function (ev) {
      var s = JSON.parse(ev.data);
      document.querySelectorAll('[data-stat]').forEach(function (el) {
        var k = el.getAttribute('data-stat');
        if (typeof s[k] === 'number') el.textContent = String(s[k]);
      });
    });
    es.addEventListener('open', function () {
      document.documentElement.setAttribute('data-live', 'on');
    });
  }
})();
`;

export const DESK_CSS = `/* pubflow desk: plain CSS, no framework. */
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; background: #f4f6f9; }
header.top { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #1d2330; color: #fff; }
header.top a { color: #cfd8e6; text-decoration: none; }
header.top a.brand { color: #fff; font-weight: 700; }
header.top nav a { margin-right: 1rem; }
header.top nav a.current { color: #fff; border-bottom: 2px solid #6ea8ff; }
header.top .who { margin-left: auto; font-size: 13px; }
header.top .who button { margin-left: .5rem; }
main { padding: 1rem 1.2rem 3rem; max-width: 1400px; }
h1 small, h2 small { color: #667; font-weight: 400; }
.card { background: #fff; border: 1px solid #dde2ea; border-radius: 6px; padding: .8rem 1rem; margin: 0 0 1rem; }
.card.narrow { max-width: 34rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #dde2ea; }
th, td { text-align: left; padding: .4rem .55rem; border-bottom: 1px solid #eceff4; vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; font-size: 12px; text-transform: uppercase; color: #556; }
td.title { max-width: 22rem; overflow-wrap: anywhere; }
.msg { overflow-wrap: anywhere; white-space: pre-wrap; color: #5a3a3a; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { overflow: auto; max-height: 30rem; background: #f7f8fa; padding: .6rem; }
.status { display: inline-block; padding: 0 .5rem; border-radius: 9px; font-size: 12px; background: #e5e8ee; }
.s-success, .s-active { background: #d4f4dd; color: #14532d; }
.s-failed, .s-needs_login { background: #fde2e2; color: #7f1d1d; }
.s-running { background: #dbeafe; color: #1e3a8a; }
.s-pending, .s-retry { background: #fef3c7; color: #78350f; }
.s-cancelled, .s-unknown { background: #e5e7eb; color: #374151; }
.kind { font-weight: 600; }
.flash { padding: .5rem .8rem; border-radius: 4px; }
.flash.ok { background: #e6f6ea; border: 1px solid #b6e2c1; }
.flash.error { background: #fdeaea; border: 1px solid #f2b8b8; }
.warn { background: #fff4d6; border: 1px solid #f0d58a; padding: .4rem .6rem; }
.filters label, .bulk label { margin-right: .8rem; }
form.inline { display: inline; }
form.stack { display: grid; gap: .35rem; min-width: 20rem; padding: .4rem 0; }
form.stack label { display: grid; font-size: 12px; color: #445; }
input, textarea, select, button { font: inherit; }
input, textarea, select { padding: .2rem .35rem; border: 1px solid #c5ccd8; border-radius: 3px; }
button { padding: .25rem .7rem; border: 1px solid #2f5fb3; background: #3b6fd0; color: #fff; border-radius: 3px; cursor: pointer; }
button[disabled] { opacity: .6; }
details summary { cursor: pointer; color: #2f5fb3; }
.stats { display: flex; gap: .8rem; flex-wrap: wrap; }
.stat { display: grid; min-width: 6rem; padding: .5rem .8rem; border: 1px solid #dde2ea; border-radius: 6px; text-decoration: none; color: inherit; }
.stat .n { font-size: 22px; font-weight: 700; }
.stat .label { color: #667; font-size: 12px; }
progress { width: 8rem; vertical-align: middle; }
dl.doc { display: grid; grid-template-columns: 10rem 1fr; gap: .2rem .8rem; }
dl.doc dt { color: #667; }
dl.doc dd { margin: 0; overflow-wrap: anywhere; }
.pager a { margin-left: .6rem; }
.hint { color: #667; font-size: 12px; }
.progress { font-weight: 600; }
.throughput svg rect.ok { fill: #3fa565; }
.throughput svg rect.bad { fill: #d14b4b; }
.throughput svg { background: #f7f8fa; border: 1px solid #eceff4; }
.throughput { margin: 0; }
`;
