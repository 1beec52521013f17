/**
 * Where the request layer applies quotas (server/src/quota: token buckets
 * per subject and per IP, counts per IP and subject). Over a rate the client
 * is slowed, not failed, as Kafka does:
 *
 * - a produce is charged at once and held until its buckets have repaid it
 *   (a reservation: later produces of the same client queue behind it and
 *   leave in arrival order, so idempotent sequences stay in order); one that
 *   would be held longer than `maxThrottleDelayMs` is refused at once,
 *   THROTTLING_QUOTA_EXCEEDED with `retryAfterMs` (HTTP 429 + Retry-After),
 *   and charged nothing;
 * - a WebSocket credit grant is charged and withheld until the fetch
 *   buckets repaid it (QuotaManager.withholdFetch; no upper bound, see
 *   creditDelayMs);
 * - an HTTP read is refused with the retry hint while the client is in debt.
 *
 * Every delay and refusal is counted in `runnel_quota_throttled_total{kind}`.
 * Without a quota configured every call is a no-op.
 */
import { RunnelError } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import { QuotaManager, type CountQuotaKind, type QuotaClient, type QuotaConfigInput, type QuotaDecision, type QuotaKind } from '../quota/index.ts';
import type { RequestContext } from './request-context.ts';

const clientOf = (ctx: RequestContext): QuotaClient => ({ subject: ctx.principal.subject, isAnonymous: ctx.principal.isAnonymous, ip: ctx.remoteAddress });

export class QuotaPoints {
  private readonly manager: QuotaManager;
  private readonly sweepTimer: ReturnType<typeof setInterval>;
  /** The last held produce per client; a new one waits behind it. Entries live only while a produce is held. */
  private readonly held = new Map<string, Promise<void>>();

  constructor(config: QuotaConfigInput | undefined, private readonly limits: Limits, private readonly metrics?: RunnelMetrics, private readonly nowMs: () => number = () => performance.now()) {
    this.manager = new QuotaManager(config ?? {});
    this.sweepTimer = setInterval(() => this.manager.sweep(this.nowMs()), limits.quotaSweepIntervalMs);
    this.sweepTimer.unref();
  }

  /**
   * Holds a produce of `bytes` and `records` until the client's produce rates allow it;
   * THROTTLING_QUOTA_EXCEEDED (with retryAfterMs) at once when that would take longer than maxThrottleDelayMs.
   */
  async throttleProduce(ctx: RequestContext, bytes: number, records: number): Promise<void> {
    const client = clientOf(ctx);
    const nowMs = this.nowMs();
    const reservation = this.manager.reserveProduce(client, bytes, records, nowMs, this.limits.maxThrottleDelayMs);
    if (!reservation.ok) {
      this.count(reservation);
      throw refusal(reservation);
    }
    if ('kind' in reservation) this.countKind(reservation.kind);
    // One queue per client (subject and address: the buckets it draws on), so held produces leave in arrival order.
    const key = `${client.isAnonymous ? '' : client.subject}\0${client.ip}`;
    const ahead = this.held.get(key);
    if (reservation.waitMs === 0 && ahead === undefined) return;
    const untilMs = nowMs + reservation.waitMs;
    const mine = (ahead ?? Promise.resolve()).then(() => this.sleepUntil(untilMs));
    this.held.set(key, mine);
    try {
      await mine;
    } finally {
      if (this.held.get(key) === mine) this.held.delete(key);
    }
  }

  /** Clients with a produce held now (each entry lives at most maxThrottleDelayMs after its last produce). */
  get heldClients(): number {
    return this.held.size;
  }

  /** HTTP read: refused with the retry hint while the client is over its fetch rate. */
  checkFetch(ctx: RequestContext, bytes: number): void {
    const decision = this.manager.tryFetch(clientOf(ctx), bytes, this.nowMs());
    if (decision.ok) return;
    this.count(decision);
    throw refusal(decision);
  }

  /** Charges bytes that were sent (catch-up and credit-driven reads). */
  chargeFetch(ctx: RequestContext, bytes: number): void {
    this.manager.chargeFetch(clientOf(ctx), bytes, this.nowMs());
  }

  /**
   * WebSocket credit: the ms to withhold a grant of `bytes` (0 = grant now), charged here. Not bounded by
   * maxThrottleDelayMs: a bound would let any grant through after it, so a client granting maxCreditBytes
   * would receive that much per maxThrottleDelayMs whatever its quota (a withheld grant costs a timer only).
   */
  creditDelayMs(ctx: RequestContext, bytes: number): number {
    const delayMs = this.manager.withholdFetch(clientOf(ctx), bytes, this.nowMs());
    if (delayMs > 0) this.countKind('fetchBytes');
    return delayMs;
  }

  acquire(kind: CountQuotaKind, key: string): void {
    const decision = this.manager.acquire(kind, key);
    if (decision.ok) return;
    this.count(decision);
    throw refusal(decision);
  }

  release(kind: CountQuotaKind, key: string): void {
    this.manager.release(kind, key);
  }

  /** acquire(kind, key) answered as a boolean (a WebSocket upgrade is refused before a session exists): true = one unit taken, release it later. */
  tryAcquire(kind: CountQuotaKind, key: string): boolean {
    const decision = this.manager.acquire(kind, key);
    if (!decision.ok) this.count(decision);
    return decision.ok;
  }

  close(): void {
    clearInterval(this.sweepTimer);
  }

  private count(decision: Exclude<QuotaDecision, { ok: true }>): void {
    this.countKind(decision.kind);
  }

  private countKind(kind: QuotaKind): void {
    this.metrics?.quotaThrottled.inc({ kind });
  }

  private sleepUntil(untilMs: number): Promise<void> | undefined {
    const ms = untilMs - this.nowMs();
    return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : undefined;
  }
}

function refusal(decision: Exclude<QuotaDecision, { ok: true }>): RunnelError {
  const retryAfterMs = decision.code === 'THROTTLING_QUOTA_EXCEEDED' ? decision.retryAfterMs : 0;
  return new RunnelError(decision.code, decision.message, { details: { retryAfterMs } });
}
