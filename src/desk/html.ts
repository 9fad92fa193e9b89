/**
 * Strict HTML building for the desk: every interpolated value is escaped unless it is already `Html` made by this
 * module, so a client's title, error message or URL can only ever render as text.
 */
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

type Part = Html | string | number | boolean | null | undefined | readonly Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.value;
  if (Array.isArray(part)) return (part as readonly Part[]).map(render).join('');
  return escapeHtml(String(part as string | number | boolean));
}

/** Tagged template: `html\`<td>${doc.title}</td>\`` escapes the title; nested `html` results pass through. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/** The URL if it is http(s), else null: only those become links. */
export function httpUrl(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

/** A link for an http(s) URL; anything else is shown as plain text. */
export const linkOrText = (value: unknown, label?: string): Html => {
  const url = httpUrl(value);
  if (!url) return html`${typeof value === 'string' ? value : ''}`;
  return html`<a href="${url}" rel="noopener noreferrer" target="_blank">${label ?? url}</a>`;
};

/** A query string from the set values only. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
