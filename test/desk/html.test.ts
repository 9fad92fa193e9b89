import { html, httpUrl, linkOrText } from '../../src/desk/html';
import { csrfMatches, readCookie, SessionStore } from '../../src/desk/sessions';

test('every interpolated value is escaped; only html results pass through', () => {
  const title = `<script>alert("x")</script>&'`;
  const out = html`<td title="${title}">${title}${html`<b>${'<i>'}</b>`}</td>`.value;
  expect(out).toBe(
    '<td title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">' +
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;<b>&lt;i&gt;</b></td>',
  );
  expect(html`${['<a>', 1, null, undefined, false]}`.value).toBe('&lt;a&gt;1');
});

test('links only for http(s) URLs; anything else is text', () => {
  expect(httpUrl('https://example.com/p/1')).toBe('https://example.com/p/1');
  for (const bad of ['javascript:alert(1)', 'data:text/html,x', ' javascript:x', 'vbscript:x', '/relative', 42])
    expect(httpUrl(bad)).toBeNull();
  expect(linkOrText('javascript:alert(1)').value).toBe('javascript:alert(1)');
  expect(linkOrText('https://e.com/"><x').value).toBe(
    '<a href="https://e.com/%22%3E%3Cx" rel="noopener noreferrer" target="_blank">https://e.com/%22%3E%3Cx</a>',
  );
});

test('sessions expire, and a CSRF token matches only its own session', () => {
  let now = 1_000;
  const store = new SessionStore(60_000, () => now);
  const a = store.create({ name: 'k', role: 'viewer' });
  const b = store.create({ name: 'k', role: 'viewer' });
  expect(a.id).not.toBe(b.id);
  expect(store.get(a.id)?.principal).toEqual({ name: 'k', role: 'viewer' });
  expect(csrfMatches(a, a.csrf)).toBe(true);
  expect(csrfMatches(a, b.csrf)).toBe(false);
  expect(csrfMatches(a, undefined)).toBe(false);
  expect(csrfMatches(a, '')).toBe(false);
  now += 60_000;
  expect(store.get(a.id)).toBeNull();
  expect(readCookie('x=1; pubflow_desk=abc; y=2', 'pubflow_desk')).toBe('abc');
  expect(readCookie('pubflow_deskx=abc', 'pubflow_desk')).toBeUndefined();
});
