/**
 * One connection's subscription to one topic-partition, and the narrow view
 * of a connection that fan-out and catch-up need (`SubscriberConnection`).
 *
 * States: `catchUp` (served from the log: queued, reading, or parked until
 * credit or socket room arrives), `live` (on the partition's uWS channel;
 * its credit is held by the LiveChannel), `closed`.
 * Invariant: in `catchUp`, `nextOffset` is the next offset to send and
 * `credit` the payload bytes the client still allows; records reach the
 * client in offset order with no gap: catch-up frames are sent before the
 * subscription joins the channel, and it joins only at the channel's end.
 */
import type { PartitionFanout } from './partition-fanout.ts';

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
    readonly fanout: PartitionFanout,
    /** catchUp: next offset to send. */
    public nextOffset: number,
    /** catchUp: remaining payload credit (bytes). */
    public credit: number,
  ) {}

  get key(): string {
    return `${this.fanout.topic.name}\0${this.fanout.partition}`;
  }
}
