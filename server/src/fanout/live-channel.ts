/**
 * Live channel accounting for one partition (sans-IO core of fan-out).
 *
 * Every live subscriber of a partition receives the same published
 * RecordsFrame bytes (uWS `publish`), so per-subscriber state is kept as
 * positions on two cumulative per-partition counters instead of being
 * updated on every publish:
 *   - `publishedPayloadBytes` (RecordsFrame `batches` bytes): a subscriber's
 *     credit runs out at `creditEnd` (credit is granted in payload bytes);
 *   - `publishedWireBytes` (whole frames): a subscriber's socket has room
 *     for `roomEnd` before it passes the backpressure limit.
 * Two min-heaps find the subscribers that run out first, so a publish costs
 * O(1) plus O(log n) per subscriber that actually runs out.
 *
 * Invariant: a subscriber stays on the live channel only while the next
 * frame fits both its credit and its measured room; the core tells the
 * driver which subscribers must leave (or be re-measured) BEFORE the bytes
 * are published, so a live subscriber never receives more than its credit.
 */
import { assert } from '@runnel/client/codec';
import { MinHeap } from './min-heap.ts';

/** Why the driver must act on a subscriber before the next publish. */
export type LiveAction<S> =
  /** Credit is exhausted for this frame: take it off the channel (it resumes from the log on new credit). */
  | { kind: 'evictCredit'; subscriber: S; remainingCredit: number }
  /** Room estimate is used up: measure the socket and call `setRoom` (or `leave` if it is still full). */
  | { kind: 'measure'; subscriber: S };

export class LiveChannel<S> {
  /** Sum of RecordsFrame payload bytes published on this channel. */
  publishedPayloadBytes = 0;
  /** Sum of whole frame bytes published on this channel. */
  publishedWireBytes = 0;
  /** Offset after the last published batch; a catch-up reader joins only when its next offset equals this. */
  lastPublishedEnd: number;
  private readonly credit = new MinHeap<S>();
  private readonly room = new MinHeap<S>();

  constructor(startOffset: number) {
    this.lastPublishedEnd = startOffset;
  }

  get size(): number {
    return this.credit.size;
  }

  has(subscriber: S): boolean {
    return this.credit.has(subscriber);
  }

  /**
   * Puts a subscriber on the channel with `creditBytes` of payload credit
   * and `roomBytes` of socket room left.
   * Precondition (driver): the subscriber's next offset === lastPublishedEnd.
   */
  join(subscriber: S, creditBytes: number, roomBytes: number): void {
    assert(!this.credit.has(subscriber), 'subscriber already live');
    assert(creditBytes >= 0 && roomBytes >= 0, 'credit and room must be >= 0');
    this.credit.set(subscriber, this.publishedPayloadBytes + creditBytes);
    this.room.set(subscriber, this.publishedWireBytes + roomBytes);
  }

  /** Removes a subscriber; returns its unused credit (0 if it was not live). */
  leave(subscriber: S): number {
    const creditEnd = this.credit.keyOf(subscriber);
    if (creditEnd === undefined) return 0;
    this.credit.delete(subscriber);
    this.room.delete(subscriber);
    return creditEnd - this.publishedPayloadBytes;
  }

  /** Adds credit to a live subscriber. Returns false when it is not live (the driver credits its catch-up state). */
  addCredit(subscriber: S, bytes: number): boolean {
    const creditEnd = this.credit.keyOf(subscriber);
    if (creditEnd === undefined) return false;
    this.credit.set(subscriber, creditEnd + bytes);
    return true;
  }

  remainingCredit(subscriber: S): number {
    const creditEnd = this.credit.keyOf(subscriber);
    return creditEnd === undefined ? 0 : creditEnd - this.publishedPayloadBytes;
  }

  /** After a measurement: the socket has `roomBytes` more before the backpressure limit. */
  setRoom(subscriber: S, roomBytes: number): void {
    assert(this.room.has(subscriber), 'setRoom on a subscriber that is not live');
    this.room.set(subscriber, this.publishedWireBytes + Math.max(0, roomBytes));
  }

  /**
   * Next subscriber that cannot take a frame of `payloadBytes` / `wireBytes`,
   * or undefined when every live subscriber can. Credit evictions remove the
   * subscriber; `measure` leaves it in place until the driver calls
   * `setRoom` (enough room now) or `leave`. The driver loops until undefined.
   */
  nextAction(payloadBytes: number, wireBytes: number): LiveAction<S> | undefined {
    if (this.credit.peekKey() < this.publishedPayloadBytes + payloadBytes) {
      const subscriber = this.credit.peek() as S;
      const remainingCredit = this.leave(subscriber);
      return { kind: 'evictCredit', subscriber, remainingCredit };
    }
    if (this.room.peekKey() < this.publishedWireBytes + wireBytes) {
      return { kind: 'measure', subscriber: this.room.peek() as S };
    }
    return undefined;
  }

  /**
   * Records a publish. Precondition: `nextAction` returned undefined for the
   * same sizes (every live subscriber has credit and room for it).
   */
  published(payloadBytes: number, wireBytes: number, endOffset: number): void {
    assert(endOffset >= this.lastPublishedEnd, `published end ${endOffset} before ${this.lastPublishedEnd}`);
    assert(this.credit.peekKey() >= this.publishedPayloadBytes + payloadBytes, 'publish would exceed a live subscriber credit');
    this.publishedPayloadBytes += payloadBytes;
    this.publishedWireBytes += wireBytes;
    this.lastPublishedEnd = endOffset;
  }

  /** Advances the end without subscribers receiving anything (e.g. nobody live). */
  skipTo(endOffset: number): void {
    assert(this.credit.size === 0, 'skipTo with live subscribers would create a gap');
    this.lastPublishedEnd = Math.max(this.lastPublishedEnd, endOffset);
  }

  /** Removes and returns every live subscriber (teardown; not for the hot path). */
  leaveAll(): S[] {
    const out: S[] = [];
    while (this.credit.size > 0) out.push(this.credit.pop() as S);
    this.room.clear();
    return out;
  }
}
