/**
 * Which browser origins may talk to the broker: one list shared by CORS on
 * `/v1/*` and the WebSocket upgrade (docs/security.md "Origins").
 *
 * - No `Origin` header: not a browser page (curl, Node, the CLI) — allowed;
 *   such clients are governed by tokens alone.
 * - Same origin (the page was served by this broker: Origin's host equals
 *   the request's Host) — allowed.
 * - Otherwise the configured list: exact origins (`https://app.example`),
 *   or `*` for any (a start-up warning). Without a list, loopback origins
 *   only (`http://localhost:5173`, `http://127.0.0.1:3000`, `http://[::1]:8080`),
 *   so a first run on a laptop works and a page on the internet does not.
 *
 * Invariant: a state-changing HTTP request from a disallowed origin is
 * refused whatever its content type (a `text/plain` POST needs no
 * preflight, so CORS alone would not stop it from writing).
 */
import { isLoopbackHost } from '../auth/listen-policy.ts';

export class OriginPolicy {
  readonly allowsAny: boolean;
  private readonly exact: ReadonlySet<string>;

  /** `origins`: configured list; empty = loopback origins only. */
  constructor(origins: readonly string[]) {
    this.allowsAny = origins.includes('*');
    this.exact = new Set(origins.filter((o) => o !== '*').map((o) => o.replace(/\/+$/, '').toLowerCase()));
  }

  get configured(): readonly string[] {
    return this.allowsAny ? ['*'] : [...this.exact];
  }

  /** `host`: the request's Host header (same-origin check). */
  isAllowed(origin: string | undefined | null, host?: string | null): boolean {
    if (origin === undefined || origin === null || origin === '') return true;
    if (this.allowsAny) return true;
    const normalized = origin.toLowerCase();
    if (this.exact.has(normalized)) return true;
    let url: URL;
    try {
      url = new URL(normalized);
    } catch {
      return false; // includes the literal "null" origin of sandboxed frames and file: pages
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    if (host && url.host === host.toLowerCase()) return true;
    return this.exact.size === 0 && isLoopbackHost(url.hostname);
  }
}
