/**
 * Fan-out of one partition: each batch that becomes visible is encoded ONCE
 * as a RecordsFrame and published with uWS to the partition's channel, so
 * every live subscriber gets the same bytes (no per-subscriber or
 * per-record work). Subscribers that are behind, out of credit or whose
 * socket is full are served from the partition by the CatchUpScheduler and
 * re-join the channel exactly at its end.
 *
 * Ordering contract of `handleAppend` (runs synchronously in the partition's
 * onVisible, in offset order): (1) subscribers that cannot take the frame
 * leave the channel, (2) the frame is published, (3) the channel end moves
 * to lastOffset + 1. A catch-up reader joins only when its next offset
 * equals that end, checked and done in the same synchronous block: no gap,
 * no duplicate.
 */
import { ErrorTable, assert, batchRecordCount, encodeRecordsFrame } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { Partition, VisibleBatch } from '../partition/partition.ts';
import { LiveChannel } from './live-channel.ts';
import type { Subscription, SubscriptionTarget } from './subscription.ts';

export interface FanoutDeps {
  limits: Limits;
  metrics?: RunnelMetrics;
  /** uWS `app.publish(channel, bytes, true)`. */
  publish(channel: string, frame: Uint8Array): void;
  /** Queue a catch-up read for `sub`. */
  enqueueCatchUp(sub: Subscription): void;
}

export class PartitionFanout implements SubscriptionTarget {
  readonly channel: string;
  readonly live: LiveChannel<Subscription>;
  private readonly subs = new Set<Subscription>();
  private closed = false;

  readonly topic: TopicInfo;
  readonly partition: number;

  constructor(readonly source: Partition, private readonly deps: FanoutDeps) {
    this.topic = source.topic;
    this.partition = source.partition;
    this.channel = `${this.topic.topicId}/${this.partition}`;
    this.live = new LiveChannel(source.highWatermark);
  }

  get liveEnd(): number {
    return this.live.lastPublishedEnd;
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  /** Hot path: one encode, one publish per visible batch. */
  handleAppend(event: VisibleBatch): void {
    if (this.closed) return;
    const endOffset = event.lastOffset + 1;
    if (this.live.size === 0) {
      this.live.skipTo(endOffset);
      return;
    }
    const frame = encodeRecordsFrame(this.topic.name, this.partition, event.highWatermark, event.batch);
    const payload = event.batch.length;
    this.makeRoom(payload, frame.length);
    const receivers = this.live.size;
    if (receivers > 0) {
      this.deps.publish(this.channel, frame);
      const metrics = this.deps.metrics;
      if (metrics) {
        metrics.recordsOut.inc({ topic: this.topic.name }, batchRecordCount(event.batch) * receivers);
        metrics.bytesOut.inc({ topic: this.topic.name }, payload * receivers);
      }
    }
    this.live.published(payload, frame.length, endOffset);
  }

  /** Takes off the channel every subscriber without credit or socket room for this frame. */
  private makeRoom(payload: number, wire: number): void {
    for (let action = this.live.nextAction(payload, wire); action; action = this.live.nextAction(payload, wire)) {
      const sub = action.subscriber;
      if (action.kind === 'evictCredit') {
        this.becomeCatchUp(sub, action.remainingCredit);
        sub.minCredit = payload; // parked until the client grants enough for this batch
        continue;
      }
      const room = sub.connection.roomBytes();
      if (room >= wire) {
        this.live.setRoom(sub, room);
        continue;
      }
      this.becomeCatchUp(sub, this.live.leave(sub));
      sub.connection.notePaused();
      this.deps.metrics?.backpressureDrops.inc({ reason: 'paused' });
    }
  }

  private becomeCatchUp(sub: Subscription, credit: number): void {
    sub.connection.unsubscribeChannel(this.channel);
    sub.connection.liveCount--;
    sub.state = 'catchUp';
    sub.nextOffset = this.live.lastPublishedEnd;
    sub.credit = credit;
  }

  /** Starts a new subscription (already answered with `subscribed`). */
  add(sub: Subscription): void {
    this.subs.add(sub);
    this.advance(sub);
  }

  /**
   * Moves a catch-up subscription forward: joins the channel when it is at
   * its end with credit and room, else queues a catch-up read, else leaves it
   * parked until credit (`addCredit`) or room (`resume`) arrives.
   */
  advance(sub: Subscription): void {
    if (sub.state !== 'catchUp' || sub.reading || sub.queued || this.closed) return;
    if (sub.credit < sub.minCredit || sub.credit <= 0) return;
    assert(sub.nextOffset <= this.live.lastPublishedEnd, `subscription at ${sub.nextOffset} beyond the channel end ${this.live.lastPublishedEnd}`);
    const room = sub.connection.roomBytes();
    if (room <= 0) {
      sub.connection.notePaused();
      return;
    }
    if (sub.nextOffset === this.live.lastPublishedEnd) {
      sub.state = 'live';
      sub.connection.liveCount++;
      sub.connection.subscribeChannel(this.channel);
      this.live.join(sub, sub.credit, Math.floor(room / sub.connection.liveCount));
      return;
    }
    this.deps.enqueueCatchUp(sub);
  }

  outstandingCredit(sub: Subscription): number {
    return sub.state === 'live' ? this.live.remainingCredit(sub) : sub.credit;
  }

  addCredit(sub: Subscription, bytes: number): void {
    if (sub.state === 'live') {
      this.live.addCredit(sub, bytes);
      return;
    }
    sub.credit += bytes;
    this.advance(sub);
  }

  /** Ends a subscription (unsubscribe, re-subscribe, connection closed). */
  remove(sub: Subscription): void {
    if (!this.subs.delete(sub)) return;
    if (sub.state === 'live') {
      this.live.leave(sub);
      sub.connection.liveCount--;
      if (!sub.connection.isClosed) sub.connection.unsubscribeChannel(this.channel);
    }
    sub.state = 'closed';
  }

  /** A catch-up read found the offset gone (retention) or failed. */
  fail(sub: Subscription, errorCode: number): void {
    this.remove(sub);
    sub.connection.subscriptionFailed(sub, errorCode);
  }

  /** Topic deleted: every subscription ends with UNKNOWN_TOPIC_OR_PARTITION. */
  close(): void {
    this.closed = true;
    for (const sub of [...this.subs]) this.fail(sub, ErrorTable.UNKNOWN_TOPIC_OR_PARTITION.code);
  }
}
