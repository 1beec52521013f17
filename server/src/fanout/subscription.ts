/**
 * One connection's subscription to one topic-partition, the narrow view of
 * a connection that fan-out and catch-up need (`SubscriberConnection`), and
 * the narrow view of the partition's fan-out a subscription is attached to
 * (`SubscriptionTarget`, implemented by PartitionFanout).
 *
 * States: `catchUp` (served from the partition: queued, reading, or parked
 * until credit or socket room arrives), `live` (on the partition's uWS
 * channel; its credit is held by the LiveChannel), `closed`.
 * Invariant: in `catchUp`, `nextOffset` is the next offset to send and
 * `credit` the payload bytes the client still allows; records reach the
 * client in offset order with no gap: catch-up frames are sent before the
 * subscription joins the channel, and it joins only at the channel's end.
 */
import type { TopicInfo } from '../metadata/topic-info.ts';
import { topicPartitionKey } from '../metadata/topic-info.ts';
import type { Partition } from '../partition/partition.ts';

export interface SubscriberConnection {
  readonly id: number;
  readonly isClosed: boolean;
  /** Live subscriptions of this connection (socket room is shared between them). */
  liveCount: number;
  /** Sends one frame; false when the connection is closed or the frame was dropped. */
  send(frame: Uint8Array): boolean;
  bufferedAmount(): number;
  subscribeChannel(channel: string): void;
  unsubscribeChannel(channel: string): void;
  /** Bytes this connection may still buffer before it is paused (≤ 0 = paused). */
  roomBytes(): number;
  /** The socket is over its backpressure limit: start (or keep) the slow-consumer clock. */
  notePaused(): void;
  /** A subscription ended on the broker side (topic deleted, offset out of range). */
  subscriptionFailed(sub: Subscription, errorCode: number): void;
}

/** The fan-out of one partition as a subscription sees it. */
export interface SubscriptionTarget {
  readonly topic: TopicInfo;
  readonly partition: number;
  /** The partition catch-up reads from. */
  readonly source: Partition;
  /** Offset after the last batch published on the live channel: where catch-up hands over. */
  readonly liveEnd: number;
  advance(sub: Subscription): void;
  addCredit(sub: Subscription, bytes: number): void;
  /** Credit `sub` was granted and has not used yet (payload bytes). */
  outstandingCredit(sub: Subscription): number;
  remove(sub: Subscription): void;
  fail(sub: Subscription, errorCode: number): void;
}

export type SubscriptionState = 'catchUp' | 'live' | 'closed';

export class Subscription {
  state: SubscriptionState = 'catchUp';
  /** In catchUp: in the scheduler queue. */
  queued = false;
  /** In catchUp: a log read is in flight. */
  reading = false;
  /** In catchUp: credit needed before the next step (the size of the next batch once known). */
  minCredit = 1;

  constructor(
    readonly connection: SubscriberConnection,
    readonly fanout: SubscriptionTarget,
    /** catchUp: next offset to send. */
    public nextOffset: number,
    /** catchUp: remaining payload credit (bytes). */
    public credit: number,
  ) {}

  get key(): string {
    return topicPartitionKey(this.fanout.topic.name, this.fanout.partition);
  }
}
