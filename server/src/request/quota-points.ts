/**
 * Where the request layer applies quotas (server/src/quota: token buckets
 * per subject and per IP, counts per IP and subject). Over a rate the client
 * is slowed, not failed, as Kafka does: a produce waits until its bucket
 * allows it (up to `maxThrottleDelayMs`, beyond that it is refused
 * THROTTLING_QUOTA_EXCEEDED with `retryAfterMs`), WebSocket credit is
 * withheld for the wait, HTTP reads are refused with the retry hint. Every
 * throttle is counted in `runnel_quota_throttled_total`. Without a quota
 * configured every call is a no-op.
 */
import { RunnelError } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import { QuotaManager, type CountQuotaKind, type QuotaClient, type QuotaConfigInput, type QuotaDecision } from '../quota/index.ts';
import type { RequestContext } from './request-context.ts';

const clientOf = (ctx: RequestContext): QuotaClient => ({ subject: ctx.principal.subject, isAnonymous: ctx.principal.isAnonymous, ip: ctx.remoteAddress });

export class QuotaPoints {
  private readonly manager: QuotaManager;
  private readonly sweepTimer: ReturnType<typeof setInterval>;

  constructor(config: QuotaConfigInput | undefined, private readonly limits: Limits, private readonly metrics?: RunnelMetrics, private readonly nowMs: () => number = () => performance.now()) {
    this.manager = new QuotaManager(config ?? {});
    this.sweepTimer = setInterval(() => this.manager.sweep(this.nowMs()), limits.quotaSweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Waits until the client's produce rates allow `bytes` and `records`; THROTTLING_QUOTA_EXCEEDED past maxThrottleDelayMs. */
  async throttleProduce(ctx: RequestContext, bytes: number, records: number): Promise<void> {
    const client = clientOf(ctx);
    let decision = this.manager.tryProduce(client, bytes, records, this.nowMs());
    if (decision.ok) return;
    this.count(decision);
    if (decision.code === 'THROTTLING_QUOTA_EXCEEDED' && decision.retryAfterMs <= this.limits.maxThrottleDelayMs) {
      const waitMs = decision.retryAfterMs;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      decision = this.manager.tryProduce(client, bytes, records, this.nowMs());
      if (decision.ok) return;
    }
    throw refusal(decision);
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

  /** WebSocket credit: the ms to withhold a grant of `bytes` (0 = grant now). The bytes are charged either way. */
  creditDelayMs(ctx: RequestContext, bytes: number): number {
    const client = clientOf(ctx);
    const decision = this.manager.tryFetch(client, bytes, this.nowMs());
    if (decision.ok) return 0;
    this.count(decision);
    this.manager.chargeFetch(client, bytes, this.nowMs());
    return decision.code === 'THROTTLING_QUOTA_EXCEEDED' ? Math.min(decision.retryAfterMs, this.limits.maxThrottleDelayMs) : 0;
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

  /** Whether acquire(kind, key) would pass now (WebSocket upgrades answer before a session exists). */
  tryAcquire(kind: CountQuotaKind, key: string): boolean {
    const decision = this.manager.acquire(kind, key);
    if (!decision.ok) this.count(decision);
    return decision.ok;
  }

  close(): void {
    clearInterval(this.sweepTimer);
  }

  private count(decision: Exclude<QuotaDecision, { ok: true }>): void {
    this.metrics?.quotaThrottled.inc({ kind: decision.kind });
  }
}

function refusal(decision: Exclude<QuotaDecision, { ok: true }>): RunnelError {
  const retryAfterMs = decision.code === 'THROTTLING_QUOTA_EXCEEDED' ? decision.retryAfterMs : 0;
  return new RunnelError(decision.code, decision.message, { details: { retryAfterMs } });
}
