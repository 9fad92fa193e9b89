/**
 * Desk sessions: a random id in an HttpOnly, SameSite=Strict cookie, mapped here (in the API process's memory) to
 * the principal of the API key that signed in, an expiry and a per-session CSRF token. The token never leaves the
 * sign-in request: neither the cookie nor this store holds it. A restart of the API signs everybody out.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../auth/roles';

export const SESSION_COOKIE = 'pubflow_desk';

export interface Session {
  id: string;
  principal: Principal;
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

/** Sessions kept at most; the oldest is dropped past it, so a flood of sign-ins cannot grow memory unbounded. */
const MAX_SESSIONS = 10_000;

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  create(principal: Principal): Session {
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const t = this.now();
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      principal: { name: principal.name, role: principal.role },
      csrf: randomBytes(32).toString('base64url'),
      createdAt: t,
      expiresAt: t + this.ttlMs,
    };
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | null {
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  destroy(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= t) this.sessions.delete(id);
  }
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(session: Session, submitted: unknown): boolean {
  if (typeof submitted !== 'string' || submitted.length === 0) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}
