/**
 * Client quotas (Kafka's term, KIP-13/KIP-55): the request layer asks
 * before each produce or fetch, and around each connection, subscription
 * and topic creation, whether this client may go on.
 *
 * - Rates (token buckets, token-bucket.ts): produce bytes/s, produce
 *   records/s and fetch bytes/s, per authenticated subject and per client
 *   IP. A request passes only when every bucket that applies admits it;
 *   it then takes from all of them, else from none (no partial charge).
 *   A refusal carries `retryAfterMs`, the throttle hint (Kafka's
 *   `throttle_time_ms`). reserveProduce charges a request that may wait and
 *   says how long (the request layer holds it that long, in arrival order);
 *   withholdFetch says how long to withhold a WebSocket credit grant.
 * - Counts: connections per IP, subscriptions per connection, topics per
 *   subject. `acquire` / `release` in pairs; every successful acquire
 *   needs exactly one release (when the connection closes, the
 *   subscription ends, the topic is deleted).
 *
 * Pure: no timers, time as `nowMs`. Memory is bounded by
 * QuotaConfig.maxTrackedKeys (buckets evicted least recently used first,
 * sweep() drops refilled ones; counters refuse past it). snapshot() gives
 * the figures for Prometheus.
 */
import { assert, type ErrorName } from '@runnel/client/codec';
import { BucketTable } from './bucket-table.ts';
import { parseQuotaConfig, type QuotaConfig, type QuotaConfigInput } from './config.ts';
import type { TokenBucket, TokenBucketRate } from './token-bucket.ts';

export const RateQuotaKinds = ['produceBytes', 'produceRecords', 'fetchBytes'] as const;
export const CountQuotaKinds = ['connectionsPerIp', 'subscriptionsPerConnection', 'topicsPerSubject'] as const;
export type RateQuotaKind = (typeof RateQuotaKinds)[number];
export type CountQuotaKind = (typeof CountQuotaKinds)[number];
export type QuotaKind = RateQuotaKind | CountQuotaKind;

/** Who is asking: a Principal's subject and kind plus the client address. */
export interface QuotaClient {
  readonly subject: string;
  readonly isAnonymous: boolean;
  readonly ip: string;
}

/** Rates refuse THROTTLING_QUOTA_EXCEEDED (Kafka 89, retryable after `retryAfterMs`); counts LIMIT_EXCEEDED (retryable). */
export type QuotaDecision =
  | { ok: true }
  | { ok: false; code: Extract<ErrorName, 'THROTTLING_QUOTA_EXCEEDED'>; kind: RateQuotaKind; scope: 'subject' | 'ip'; retryAfterMs: number; message: string }
  | { ok: false; code: Extract<ErrorName, 'LIMIT_EXCEEDED'>; kind: CountQuotaKind; message: string };

/**
 * A rate reservation (reserveProduce): admitted now (`waitMs` 0), admitted after `waitMs` (charged now,
 * so later requests of the same client queue behind it: Kafka's throttle), or refused when the wait
 * would exceed the caller's bound (nothing charged; `retryAfterMs` is the wait it would have had).
 */
export type QuotaReservation =
  | { ok: true; waitMs: 0 }
  | { ok: true; waitMs: number; kind: RateQuotaKind; scope: 'subject' | 'ip' }
  | Extract<QuotaDecision, { code: 'THROTTLING_QUOTA_EXCEEDED' }>;

export interface QuotaSnapshot {
  /** Throttles per quota kind since start (a counter each): refusals, and for rates also requests delayed. */
  readonly throttled: Readonly<Record<QuotaKind, number>>;
  /** Rate buckets held now (≤ maxTrackedKeys). */
  readonly trackedBuckets: number;
  /** Counter keys held now, over all count kinds (≤ maxTrackedKeys). */
  readonly trackedCounts: number;
  /** Buckets dropped after refilling (lossless). */
  readonly evictedIdleBuckets: number;
  /** Buckets dropped before refilling because the table was full (that client got a fresh burst). */
  readonly evictedActiveBuckets: number;
}

const OK: QuotaDecision = Object.freeze({ ok: true });

interface Charge { readonly bucket: TokenBucket; readonly cost: number; readonly kind: RateQuotaKind; readonly scope: 'subject' | 'ip' }

const COUNT_LIMIT_OF = {
  connectionsPerIp: 'maxConnectionsPerIp',
  subscriptionsPerConnection: 'maxSubscriptionsPerConnection',
  topicsPerSubject: 'maxTopicsPerSubject',
} as const satisfies Record<CountQuotaKind, keyof QuotaConfig>;

export class QuotaManager {
  readonly config: QuotaConfig;
  private readonly buckets: BucketTable;
  /** Resolved rates (burst defaulted), undefined where the quota is off. */
  private readonly rates: Record<'subject' | 'ip', Record<RateQuotaKind, TokenBucketRate | undefined>>;
  private readonly counts = new Map<string, number>();
  private readonly throttled: Record<QuotaKind, number> = {
    produceBytes: 0, produceRecords: 0, fetchBytes: 0, connectionsPerIp: 0, subscriptionsPerConnection: 0, topicsPerSubject: 0,
  };

  constructor(config: QuotaConfigInput = {}) {
    this.config = parseQuotaConfig(config);
    this.buckets = new BucketTable(this.config.maxTrackedKeys, this.config.sweepBatch);
    this.rates = { subject: resolveRates(this.config.perSubject), ip: resolveRates(this.config.perIp) };
  }

  /**
   * A produce of `bytes` batch bytes holding `records` records.
   *
   * @example
   * const q = quotas.tryProduce({ subject: principal.subject, isAnonymous: principal.isAnonymous, ip }, batch.byteLength, recordCount, performance.now());
   * if (!q.ok) return reply(q.code, { retryAfterMs: q.retryAfterMs });
   */
  tryProduce(client: QuotaClient, bytes: number, records: number, nowMs: number): QuotaDecision {
    return this.tryRates(client, [['produceBytes', bytes], ['produceRecords', records]], nowMs);
  }

  /**
   * A produce that may wait up to `maxWaitMs` for its buckets: charged now and told how long to wait
   * (the caller holds the request that long, then proceeds without asking again), or refused without
   * a charge. Admission times never decrease for one client, so requests held in arrival order stay
   * in order; over any window the admitted costs obey the token-bucket bound (property-tested).
   *
   * @example
   * const r = quotas.reserveProduce(client, batch.byteLength, recordCount, performance.now(), limits.maxThrottleDelayMs);
   * if (!r.ok) throw refusal(r); // THROTTLING_QUOTA_EXCEEDED, r.retryAfterMs
   * if (r.waitMs > 0) await sleep(r.waitMs);
   */
  reserveProduce(client: QuotaClient, bytes: number, records: number, nowMs: number, maxWaitMs: number): QuotaReservation {
    const charges = this.chargesFor(client, [['produceBytes', bytes], ['produceRecords', records]], nowMs);
    const worst = worstWait(charges, nowMs);
    if (worst === undefined) {
      for (const { bucket, cost } of charges) assert(bucket.tryTake(cost, nowMs) === 0, 'an admitted quota charge was refused');
      return OK_NOW;
    }
    this.throttled[worst.kind]++;
    if (worst.waitMs > maxWaitMs) return rateRefusal(worst);
    for (const { bucket, cost } of charges) bucket.charge(cost, nowMs);
    return { ok: true, waitMs: worst.waitMs, kind: worst.kind, scope: worst.scope };
  }

  /**
   * Credit a WebSocket subscriber grants (bytes the broker may then send): charged now, in full, and
   * the ms to withhold the grant until every bucket has repaid it (pay first: unlike a produce, a grant
   * larger than the burst is not let through from a full bucket, since a grant may be as large as
   * maxCreditBytes). So the bytes a subscriber may receive over any window of T ms are at most what it
   * was granted free + burst + perSecond × T / 1000, whatever the size of its grants. No upper bound on
   * the wait: a withheld grant holds no memory but a number and a timer.
   */
  withholdFetch(client: QuotaClient, bytes: number, nowMs: number): number {
    let withholdMs = 0;
    for (const { bucket, cost } of this.chargesFor(client, [['fetchBytes', bytes]], nowMs)) {
      bucket.charge(cost, nowMs);
      withholdMs = Math.max(withholdMs, bucket.debtMs(nowMs));
    }
    if (withholdMs > 0) this.throttled.fetchBytes++;
    return withholdMs;
  }

  /** A fetch expected to return up to `bytes` (e.g. min(credit, read size)); see chargeFetch for the actual size. */
  tryFetch(client: QuotaClient, bytes: number, nowMs: number): QuotaDecision {
    return this.tryRates(client, [['fetchBytes', bytes]], nowMs);
  }

  /** Debits bytes already sent (may go into debt, delaying the next tryFetch): for reads whose size is known afterwards. */
  chargeFetch(client: QuotaClient, bytes: number, nowMs: number): void {
    for (const { bucket, cost } of this.chargesFor(client, [['fetchBytes', bytes]], nowMs)) bucket.charge(cost, nowMs);
  }

  /** Any rate quota alone, with a cost. */
  tryRate(kind: RateQuotaKind, client: QuotaClient, cost: number, nowMs: number): QuotaDecision {
    return this.tryRates(client, [[kind, cost]], nowMs);
  }

  /**
   * Takes one of a counted resource: `key` is the IP (connectionsPerIp), a connection id
   * (subscriptionsPerConnection) or a subject (topicsPerSubject). Release it with release(kind, key).
   */
  acquire(kind: CountQuotaKind, key: string): QuotaDecision {
    const max = this.config[COUNT_LIMIT_OF[kind]];
    if (max === 0) return OK;
    const id = `${kind}\0${key}`;
    const held = this.counts.get(id) ?? 0;
    if (held >= max) return this.refuseCount(kind, `${describeCount(kind)} quota reached (${max})`);
    if (held === 0 && this.counts.size >= this.config.maxTrackedKeys) {
      return this.refuseCount(kind, `quota table full (maxTrackedKeys ${this.config.maxTrackedKeys}); try again later`);
    }
    this.counts.set(id, held + 1);
    return OK;
  }

  /** Gives back one acquired unit. Invariant: only after a successful acquire of the same kind and key. */
  release(kind: CountQuotaKind, key: string): void {
    if (this.config[COUNT_LIMIT_OF[kind]] === 0) return;
    const id = `${kind}\0${key}`;
    const held = this.counts.get(id) ?? 0;
    assert(held > 0, `quota release(${kind}) without a matching acquire`);
    if (held === 1) this.counts.delete(id);
    else this.counts.set(id, held - 1);
  }

  /** How many units of `kind` `key` holds now. */
  held(kind: CountQuotaKind, key: string): number {
    return this.counts.get(`${kind}\0${key}`) ?? 0;
  }

  /** Drops refilled buckets (at most config.sweepBatch inspected); call it every few seconds. Returns how many. */
  sweep(nowMs: number): number {
    return this.buckets.sweep(nowMs);
  }

  snapshot(): QuotaSnapshot {
    const table = this.buckets.stats();
    return {
      throttled: { ...this.throttled },
      trackedBuckets: table.size,
      trackedCounts: this.counts.size,
      evictedIdleBuckets: table.evictedIdle,
      evictedActiveBuckets: table.evictedActive,
    };
  }

  private tryRates(client: QuotaClient, costs: readonly (readonly [RateQuotaKind, number])[], nowMs: number): QuotaDecision {
    const charges = this.chargesFor(client, costs, nowMs);
    const worst = worstWait(charges, nowMs);
    if (worst !== undefined) {
      this.throttled[worst.kind]++;
      return rateRefusal(worst);
    }
    // Invariant: every bucket admitted its cost at nowMs, so each tryTake succeeds.
    for (const { bucket, cost } of charges) assert(bucket.tryTake(cost, nowMs) === 0, 'an admitted quota charge was refused');
    return OK;
  }

  /** The buckets that apply to `client` for each (kind, cost): per subject when authenticated, per IP always, when configured. */
  private chargesFor(client: QuotaClient, costs: readonly (readonly [RateQuotaKind, number])[], nowMs: number): Charge[] {
    const charges: Charge[] = [];
    for (const [kind, cost] of costs) {
      const subjectRate = client.isAnonymous ? undefined : this.rates.subject[kind];
      if (subjectRate !== undefined) charges.push({ bucket: this.buckets.get(`${kind}\0subject\0${client.subject}`, subjectRate, nowMs), cost, kind, scope: 'subject' });
      const ipRate = this.rates.ip[kind];
      if (ipRate !== undefined) charges.push({ bucket: this.buckets.get(`${kind}\0ip\0${client.ip}`, ipRate, nowMs), cost, kind, scope: 'ip' });
    }
    return charges;
  }

  private refuseCount(kind: CountQuotaKind, message: string): QuotaDecision {
    this.throttled[kind]++;
    return { ok: false, code: 'LIMIT_EXCEEDED', kind, message };
  }
}

const OK_NOW = Object.freeze({ ok: true, waitMs: 0 } as const);

/** The charge with the longest wait, undefined when every bucket admits its cost now. */
function worstWait(charges: readonly Charge[], nowMs: number): (Charge & { waitMs: number }) | undefined {
  let worst: (Charge & { waitMs: number }) | undefined;
  for (const charge of charges) {
    const waitMs = charge.bucket.waitMs(charge.cost, nowMs);
    if (waitMs > 0 && (worst === undefined || waitMs > worst.waitMs)) worst = { ...charge, waitMs };
  }
  return worst;
}

function rateRefusal(worst: Charge & { waitMs: number }): Extract<QuotaDecision, { code: 'THROTTLING_QUOTA_EXCEEDED' }> {
  return {
    ok: false, code: 'THROTTLING_QUOTA_EXCEEDED', kind: worst.kind, scope: worst.scope, retryAfterMs: worst.waitMs,
    message: `${worst.kind} quota per ${worst.scope} exceeded; retry after ${worst.waitMs} ms`,
  };
}

function resolveRates(quotas: QuotaConfig['perIp']): Record<RateQuotaKind, TokenBucketRate | undefined> {
  const resolve = (rate: { perSecond: number; burst?: number } | undefined): TokenBucketRate | undefined =>
    rate === undefined ? undefined : Object.freeze({ perSecond: rate.perSecond, burst: rate.burst ?? rate.perSecond });
  return { produceBytes: resolve(quotas.produceBytes), produceRecords: resolve(quotas.produceRecords), fetchBytes: resolve(quotas.fetchBytes) };
}

function describeCount(kind: CountQuotaKind): string {
  switch (kind) {
    case 'connectionsPerIp': return 'connections per IP';
    case 'subscriptionsPerConnection': return 'subscriptions per connection';
    case 'topicsPerSubject': return 'topics per subject';
  }
}
