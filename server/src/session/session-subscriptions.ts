/**
 * The subscriptions of one connection: subscribe (start position, checks,
 * answer, then attach to the partition's fan-out), unsubscribe, credit, and
 * their end when the connection closes. It sees the connection only as the
 * fan-out's `SubscriberConnection`.
 *
 * Invariants: a subscription starts at an offset within [logStartOffset,
 * channel end]; the `subscribed` answer is sent before its first records
 * frame; a subscribe superseded meanwhile (a later subscribe or unsubscribe
 * of the same topic-partition) is dropped unanswered, so at most one
 * subscription per topic-partition exists.
 */
import { ErrorTable, encodeFrame, type ErrorName, type SubscribeFrame, type SubscribedFrame } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';

/** Longest a subscribe waits for a lagging replica to reach the asked offset (below the SDK's request timeout, 5 s at its lowest in tests). */
const SUBSCRIBE_CATCH_UP_WAIT_MS = 3000;
import type { RunnelMetrics } from '../metrics.ts';
import type { Fanout } from '../fanout/fanout.ts';
import { Subscription, type SubscriberConnection } from '../fanout/subscription.ts';
import { topicPartitionKey } from '../metadata/topic-info.ts';
import type { BrokerApi } from '../request/broker-api.ts';
import type { RequestContext } from '../request/request-context.ts';
import { errorOf } from './requests.ts';

export interface SubscriptionDeps {
  api: BrokerApi;
  fanout: Fanout;
  limits: Limits;
  metrics?: RunnelMetrics;
}

/** A refused credit frame: `isInvalidFrame` counts toward maxInvalidFramesPerConnection. */
export interface CreditRefusal { name: ErrorName; message: string; isInvalidFrame: boolean }

export class SessionSubscriptions {
  private readonly byKey = new Map<string, Subscription>();
  /** Latest subscribe/unsubscribe request per topic-partition: stale async subscribes are dropped. */
  private readonly latest = new Map<string, number>();
  /** Credit grants withheld by the fetch quota, per topic-partition (one timer each). */
  private readonly withheld = new Map<string, { bytes: number; dueMs: number; timer: ReturnType<typeof setTimeout> | undefined }>();
  private seq = 0;

  constructor(private readonly connection: SubscriberConnection, private readonly deps: SubscriptionDeps) {}

  get size(): number {
    return this.byKey.size;
  }

  values(): IterableIterator<Subscription> {
    return this.byKey.values();
  }

  async subscribe(ctx: RequestContext, frame: SubscribeFrame): Promise<void> {
    const { api, fanout, limits, metrics } = this.deps;
    const key = topicPartitionKey(frame.topic, frame.partition);
    const mySeq = ++this.seq;
    this.latest.set(key, mySeq);
    const answer = (errorCode: number, topicId = '', startOffset = -1, logStartOffset = -1, highWatermark = -1): void => {
      const subscribed: SubscribedFrame = { type: 'subscribed', requestId: frame.requestId, topic: frame.topic, partition: frame.partition, errorCode, topicId, startOffset, logStartOffset, highWatermark };
      if (!this.connection.isClosed) this.connection.send(encodeFrame(subscribed));
    };
    if (!Number.isSafeInteger(frame.creditBytes) || frame.creditBytes < 0) return answer(ErrorTable.INVALID_REQUEST.code);
    if (frame.creditBytes > limits.maxCreditBytes) return answer(ErrorTable.LIMIT_EXCEEDED.code);
    if (this.isFull(key)) return answer(ErrorTable.LIMIT_EXCEEDED.code);
    let start: number | 'earliest' | 'latest';
    try {
      await api.subscribe(ctx, frame.topic, frame.partition);
      start = await this.resolveStart(ctx, frame);
    } catch (e) {
      return answer(ErrorTable[errorOf(e).name].code);
    }
    if (this.latest.get(key) !== mySeq || this.connection.isClosed) return; // superseded meanwhile
    const target = fanout.get(frame.topic, frame.partition);
    if (!target) return answer(ErrorTable.UNKNOWN_TOPIC_OR_PARTITION.code);
    const { topicId } = target.topic;
    let end = target.liveEnd;
    if (typeof start === 'number' && start > end && (start <= target.source.logEndOffset || target.source.leaderEpoch > 0 || target.source.state().replicas.length > 1)) {
      // A replica behind the offset a client already read up to elsewhere: its high watermark lags its log (a restarted
      // cluster broker opens at its checkpointed one), or its log lags the leader's (a follower catching up after a
      // restart). The offset is on its way to being visible here, so wait (bounded, below clients' request timeouts)
      // instead of refusing OFFSET_OUT_OF_RANGE, which would send the client back to its reset policy.
      await target.source.waitForVisible(start - 1, Math.min(limits.leaderWaitMs, SUBSCRIBE_CATCH_UP_WAIT_MS));
      if (this.latest.get(key) !== mySeq || this.connection.isClosed) return;
      end = target.liveEnd;
    }
    const logStartOffset = target.source.logStartOffset;
    if (frame.topicId !== '' && frame.topicId !== topicId) return answer(ErrorTable.INCONSISTENT_TOPIC_ID.code, topicId, -1, logStartOffset, end);
    const offset = start === 'earliest' ? logStartOffset : start === 'latest' ? end : Math.max(start, frame.from.kind === 'timestamp' ? logStartOffset : start);
    if (offset < logStartOffset || offset > end) return answer(ErrorTable.OFFSET_OUT_OF_RANGE.code, topicId, -1, logStartOffset, end);
    if (this.isFull(key)) return answer(ErrorTable.LIMIT_EXCEEDED.code);
    this.remove(key);
    answer(0, topicId, offset, logStartOffset, end);
    // The initial credit goes through the fetch quota like any grant: the subscription starts with none.
    const sub = new Subscription(this.connection, target, offset, 0);
    this.byKey.set(key, sub);
    metrics?.subscriptions.inc();
    target.add(sub);
    if (frame.creditBytes > 0) this.grant(ctx, key, sub, frame.creditBytes);
  }

  unsubscribe(topic: string, partition: number): void {
    const key = topicPartitionKey(topic, partition);
    this.latest.set(key, ++this.seq);
    this.remove(key);
  }

  /** null when granted (or harmlessly racing an unsubscribe). */
  credit(ctx: RequestContext, topic: string, partition: number, bytes: number): CreditRefusal | null {
    const max = this.deps.limits.maxCreditBytes;
    if (!Number.isSafeInteger(bytes) || bytes <= 0) return { name: 'INVALID_REQUEST', message: `credit must be 1..${max} bytes`, isInvalidFrame: true };
    if (bytes > max) return { name: 'LIMIT_EXCEEDED', message: `credit grant ${bytes} is above maxCreditBytes ${max}`, isInvalidFrame: false };
    const key = topicPartitionKey(topic, partition);
    const sub = this.byKey.get(key);
    if (!sub) return null;
    const withheld = this.withheld.get(key);
    // Credit is permission to send: a subscription never holds more unused credit than maxCreditBytes
    // (3,000 grants of 64 MiB were all accepted before: 192 GB the broker had agreed to send).
    const outstanding = sub.fanout.outstandingCredit(sub) + (withheld?.bytes ?? 0);
    if (outstanding + bytes > max) {
      return { name: 'LIMIT_EXCEEDED', message: `credit grant ${bytes} would leave ${outstanding + bytes} bytes of credit unused on ${topic}/${partition}, above maxCreditBytes ${max}`, isInvalidFrame: false };
    }
    this.grant(ctx, key, sub, bytes);
    return null;
  }

  /**
   * Applies a grant through the fetch quota: charged now, and over the quota withheld (the broker sends
   * nothing more meanwhile) until the client's buckets allow it. A grant arriving while one is withheld is
   * charged too and joins it, pushed out to the later of the two delays.
   */
  private grant(ctx: RequestContext, key: string, sub: Subscription, bytes: number): void {
    const delayMs = this.deps.api.creditDelayMs(ctx, sub.fanout.topic.name, sub.fanout.partition, bytes);
    const withheld = this.withheld.get(key);
    if (delayMs <= 0 && !withheld) {
      sub.fanout.addCredit(sub, bytes);
      return;
    }
    const dueMs = Date.now() + delayMs;
    const held = withheld ?? { bytes: 0, dueMs, timer: undefined as ReturnType<typeof setTimeout> | undefined };
    held.bytes += bytes;
    if (withheld && dueMs <= held.dueMs) return;
    held.dueMs = dueMs;
    if (held.timer) clearTimeout(held.timer);
    held.timer = setTimeout(() => {
      this.withheld.delete(key);
      if (this.byKey.get(key) === sub && !this.connection.isClosed) sub.fanout.addCredit(sub, held.bytes);
    }, Math.max(0, delayMs));
    this.withheld.set(key, held);
  }

  /** The fan-out ended `sub` (topic deleted, offset gone): forget it if it is still the current one. */
  forget(sub: Subscription): void {
    if (this.byKey.get(sub.key) !== sub) return;
    this.byKey.delete(sub.key);
    this.deps.metrics?.subscriptions.dec();
  }

  /** The connection closed: every subscription ends. */
  closeAll(): void {
    for (const w of this.withheld.values()) if (w.timer) clearTimeout(w.timer);
    this.withheld.clear();
    for (const sub of this.byKey.values()) sub.fanout.remove(sub);
    this.deps.metrics?.subscriptions.dec(this.byKey.size);
    this.byKey.clear();
  }

  private isFull(key: string): boolean {
    return !this.byKey.has(key) && this.byKey.size >= this.deps.limits.maxSubscriptionsPerConnection;
  }

  /** Start position as an offset, or 'earliest'/'latest' resolved against the channel at the last moment. */
  private async resolveStart(ctx: RequestContext, frame: SubscribeFrame): Promise<number | 'earliest' | 'latest'> {
    const from = frame.from;
    switch (from.kind) {
      case 'earliest': return 'earliest';
      case 'latest': return 'latest';
      case 'offset': return from.offset;
      case 'timestamp': {
        const offset = await this.deps.api.offsetForTimestamp(ctx, frame.topic, frame.partition, from.timestampMs).catch(() => null);
        return offset === null ? 'latest' : offset;
      }
      default: return 'latest';
    }
  }

  private remove(key: string): void {
    const withheld = this.withheld.get(key);
    if (withheld?.timer) clearTimeout(withheld.timer);
    this.withheld.delete(key);
    const sub = this.byKey.get(key);
    if (!sub) return;
    this.byKey.delete(key);
    sub.fanout.remove(sub);
    this.deps.metrics?.subscriptions.dec();
  }
}
