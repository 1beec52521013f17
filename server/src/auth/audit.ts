/**
 * Audit lines for authentication and authorization failures: one JSON
 * object per line, `{ ts, event, subject, ip, operation, resource, code,
 * failure? }`, written through an injected sink.
 *
 * Invariants:
 * - no line ever holds a token: an AuditEntry has no field for one, and
 *   string fields are capped at AuthLimits.maxAuditFieldChars (JSON
 *   escaping keeps client-chosen names from forging lines);
 * - at most AuthLimits.maxAuditLinesPerSec failure lines per second; the
 *   rest are counted and reported by one `audit_suppressed` line when the
 *   next second starts, so a client looping on a bad token cannot flood the log;
 * - the counter hook sees every failure, written or suppressed (metrics
 *   stay exact while the log is bounded).
 *
 * Time comes in as `nowMs`; the driver may call flush(nowMs) on a timer so
 * a summary is not held back until the next failure.
 */
import type { AuthorizationErrorName, Operation, Resource } from './authorize.ts';
import { AuthLimits } from './limits.ts';
import type { Principal } from './principal.ts';
import type { AuthenticationErrorName, AuthenticationFailure, VerifyResult } from './verifier.ts';

export type AuditEvent = 'authentication_failed' | 'authorization_failed';

export interface AuditEntry {
  readonly event: AuditEvent;
  /** The principal's subject; null when authentication failed (no subject is trusted yet). */
  readonly subject: string | null;
  /** The client address as the request layer sees it. */
  readonly ip: string;
  /** `authenticate` for authentication failures. */
  readonly operation: Operation | 'authenticate';
  readonly resource: Resource | null;
  readonly code: AuthenticationErrorName | AuthorizationErrorName;
  /** Why authentication failed (authentication_failed only). */
  readonly failure?: AuthenticationFailure;
}

export interface AuditLogOptions {
  /** Writes one line (no trailing newline). The sink must not throw. */
  write(line: string): void;
  /** Counter hook (the metrics module provides it), called for every failure, written or suppressed. */
  onEvent?(event: AuditEvent, code: AuditEntry['code']): void;
  /** Defaults to AuthLimits.maxAuditLinesPerSec. */
  maxLinesPerSec?: number;
}

export interface AuditStats { readonly written: number; readonly suppressed: number }

const WINDOW_MS = 1000;

export class AuditLog {
  private readonly maxLinesPerSec: number;
  private windowStartMs = Number.NEGATIVE_INFINITY;
  private linesInWindow = 0;
  private suppressedInWindow = 0;
  private written = 0;
  private suppressed = 0;

  constructor(private readonly options: AuditLogOptions) {
    this.maxLinesPerSec = options.maxLinesPerSec ?? AuthLimits.maxAuditLinesPerSec;
  }

  /** Records one failure; returns whether its line was written (false = suppressed by the rate bound). */
  record(entry: AuditEntry, nowMs: number): boolean {
    this.options.onEvent?.(entry.event, entry.code);
    this.flush(nowMs);
    if (this.linesInWindow >= this.maxLinesPerSec) {
      this.suppressedInWindow++;
      this.suppressed++;
      return false;
    }
    this.linesInWindow++;
    this.written++;
    this.options.write(formatAuditLine(entry, nowMs));
    return true;
  }

  /** Starts a new window when a second has passed, writing the summary of what the old one suppressed. */
  flush(nowMs: number): void {
    if (nowMs - this.windowStartMs < WINDOW_MS) return;
    if (this.suppressedInWindow > 0) {
      this.options.write(JSON.stringify({ ts: isoTime(nowMs), event: 'audit_suppressed', count: this.suppressedInWindow, windowStartTs: isoTime(this.windowStartMs) }));
    }
    this.windowStartMs = nowMs;
    this.linesInWindow = 0;
    this.suppressedInWindow = 0;
  }

  stats(): AuditStats {
    return { written: this.written, suppressed: this.suppressed };
  }
}

/** The entry of a refused token. */
export function authenticationFailureEntry(result: Extract<VerifyResult, { ok: false }>, ip: string): AuditEntry {
  return { event: 'authentication_failed', subject: null, ip, operation: 'authenticate', resource: null, code: result.code, failure: result.failure };
}

/** The entry of a refused operation. */
export function authorizationFailureEntry(principal: Principal, operation: Operation, resource: Resource, code: AuthorizationErrorName, ip: string): AuditEntry {
  return { event: 'authorization_failed', subject: principal.subject, ip, operation, resource, code };
}

/** One JSON line; fixed key order so lines grep and diff well. */
export function formatAuditLine(entry: AuditEntry, nowMs: number): string {
  return JSON.stringify({
    ts: isoTime(nowMs),
    event: entry.event,
    subject: entry.subject === null ? null : capped(entry.subject),
    ip: capped(entry.ip),
    operation: entry.operation,
    resource: entry.resource === null ? null : describeResource(entry.resource),
    code: entry.code,
    ...(entry.failure === undefined ? {} : { failure: entry.failure }),
  });
}

/** `topic:clicks`, `group:reports`, `group:reports/topic:clicks`, `cluster`. */
export function describeResource(resource: Resource): string {
  if ('cluster' in resource) return 'cluster';
  if ('group' in resource) return resource.topic === undefined ? `group:${capped(resource.group)}` : `group:${capped(resource.group)}/topic:${capped(resource.topic)}`;
  return `topic:${capped(resource.topic)}`;
}

function capped(text: string): string {
  return text.length > AuthLimits.maxAuditFieldChars ? `${text.slice(0, AuthLimits.maxAuditFieldChars)}…` : text;
}

function isoTime(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'none';
}
