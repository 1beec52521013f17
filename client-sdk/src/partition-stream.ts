/**
 * Partition streams: the one WebSocket subscription per topic-partition per
 * connection (protocol rule), shared by every local reader of that
 * partition. The stream subscribes at the lowest offset any reader needs
 * (or probes a reader's symbolic start — earliest/latest/timestamp — and
 * then moves back down if another reader needs less); each reader drops
 * offsets it already handled. Frames that arrive while a (re)subscribe is
 * pending belong to the old position and are dropped: the answer restarts
 * the stream where it must be.
 *
 * Credit-based flow control: each subscribe grants `windowBytes`; bytes are
 * re-granted once every reader has released a frame, in chunks of half the
 * window, or all at once when nothing is outstanding (so a batch larger than
 * half the window never deadlocks). The broker never sends past the credit.
 */
import { ErrorCode, errorNameOf, isRetryable } from './codec/error-codes.ts';
import { readBatchHeader } from './codec/record-batch.ts';
import type { BrokerFrame, RecordsFrame, StartPosition, SubscribedFrame } from './codec/protocol.ts';
import type { Connection } from './connection.ts';
import { LAGGING_BROKER_WAIT_MS, SUBSCRIBE_REFUSED_RETRY_MS, SUBSCRIBE_RETRY_MS } from './limits.ts';
import { tpKey } from './outbox.ts';

/** A local consumer of one partition. */
export interface StreamReader {
  /** Next offset this reader needs, or null while its symbolic `start` is unresolved. */
  readonly neededOffset: number | null;
  readonly start: StartPosition;
  /** Topic id the reader's stored offset belongs to ('' = any). */
  readonly topicId: string;
  /** The stream is subscribed; a reader without an offset adopts `answer.startOffset` if `adopt`. */
  subscribed(answer: SubscribedFrame, adopt: boolean): void;
  /** The broker cannot serve the stream's position; the reader resets itself (or fails). */
  rejected(answer: SubscribedFrame): void;
  /** A frame's batches; call `release` once handled (credit). False = the frame skips offsets the reader needs (resubscribe). */
  deliver(frame: RecordsFrame, firstOffset: number, lastOffset: number, release: () => void): boolean;
}

export class PartitionStream {
  readonly readers = new Set<StreamReader>();
  #pending = false;
  #again = false;
  #active = false;
  #generation = 0;
  /** Next offset the broker will send on this subscription. */
  #position = 0;
  #outstandingBytes = 0;
  #releasedBytes = 0;
  /** Highest high watermark seen on this stream. */
  #seenHighWatermark = 0;
  /** When a broker first answered OFFSET_OUT_OF_RANGE below what we saw (−1: not now). */
  #laggingSinceMs = -1;

  constructor(private readonly conn: Connection, readonly topic: string, readonly partition: number, private readonly windowBytes: () => number) {}

  add(reader: StreamReader): void {
    this.readers.add(reader);
    const needed = reader.neededOffset;
    if (!this.#active || needed === null || needed < this.#position) this.resubscribe();
  }

  remove(reader: StreamReader): void {
    this.readers.delete(reader);
    if (this.readers.size > 0) return;
    this.#active = false;
    this.#generation++;
    this.conn.send({ type: 'unsubscribe', requestId: 0, topic: this.topic, partition: this.partition });
  }

  /** The connection dropped: everything in flight is void. */
  reset(): void {
    this.#pending = false;
    this.#active = false;
    this.#generation++;
  }

  /** (Re)subscribes at what the readers need; at most one subscribe in flight. */
  resubscribe(): void {
    if (this.readers.size === 0 || this.conn.state !== 'connected') return;
    if (this.#pending) {
      this.#again = true;
      return;
    }
    const readers = [...this.readers];
    const symbolic = readers.find((r) => r.neededOffset === null);
    const offsets = readers.map((r) => r.neededOffset ?? Infinity);
    const from: StartPosition = symbolic ? symbolic.start : { kind: 'offset', offset: Math.min(...offsets) };
    const ids = new Set(readers.map((r) => r.topicId).filter((id) => id !== ''));
    const topicId = symbolic ? symbolic.topicId : ids.size === 1 ? [...ids][0] : '';
    this.#pending = true;
    this.#again = false;
    this.#active = false;
    const generation = ++this.#generation;
    this.#outstandingBytes = 0;
    this.#releasedBytes = 0;
    const onAnswer = (answer: SubscribedFrame): void => { if (generation === this.#generation) this.#handleAnswer(answer, symbolic); };
    this.conn.request<SubscribedFrame>({ type: 'subscribe', topic: this.topic, partition: this.partition, topicId, from, creditBytes: this.windowBytes() }, undefined, onAnswer)
      .then(undefined, (error) => {
        if (generation !== this.#generation) return;
        this.#pending = false;
        if (error?.errorName !== 'NOT_CONNECTED') setTimeout(() => this.resubscribe(), SUBSCRIBE_RETRY_MS); // timed out: try again
      });
  }

  #handleAnswer(answer: SubscribedFrame, symbolic: StreamReader | undefined): void {
    this.#pending = false;
    if (answer.errorCode !== 0) return this.#handleRejection(answer);
    this.#active = true;
    this.#laggingSinceMs = -1;
    this.#position = answer.startOffset;
    this.#saw(answer.highWatermark);
    for (const r of [...this.readers]) r.subscribed(answer, r === symbolic);
    const needsLower = [...this.readers].some((r) => r.neededOffset === null || r.neededOffset < this.#position);
    if (this.#again || needsLower) this.resubscribe();
  }

  #saw(highWatermark: number): void {
    if (highWatermark > this.#seenHighWatermark) this.#seenHighWatermark = highWatermark;
  }

  /**
   * Failover: a broker that just became leader, or a follower, or one restarted (its replica opens at its
   * checkpointed high watermark, its log may be behind after a whole-cluster crash), may not have learned the
   * high watermark we were shown, and answers OFFSET_OUT_OF_RANGE above its own. An offset at most the highest
   * high watermark we saw is asked again for up to LAGGING_BROKER_WAIT_MS before the readers take it as lost.
   */
  #isLagging(answer: SubscribedFrame): boolean {
    const needed = Math.min(...[...this.readers].map((r) => r.neededOffset ?? Infinity)), now = Date.now();
    if (answer.errorCode !== ErrorCode.OFFSET_OUT_OF_RANGE || needed <= answer.highWatermark || needed > this.#seenHighWatermark) return false;
    if (this.#laggingSinceMs < 0) this.#laggingSinceMs = now;
    return now - this.#laggingSinceMs < LAGGING_BROKER_WAIT_MS;
  }

  #handleRejection(answer: SubscribedFrame): void {
    this.#active = false;
    if (this.#isLagging(answer)) return void setTimeout(() => this.resubscribe(), SUBSCRIBE_REFUSED_RETRY_MS);
    const before = [...this.readers].map((r) => `${r.neededOffset}/${r.topicId}`).join();
    for (const r of [...this.readers]) r.rejected(answer);
    const after = [...this.readers].map((r) => `${r.neededOffset}/${r.topicId}`).join();
    // Retryable: a leader election, an unreachable etcd, a busy broker; the cause is usually gone soon.
    const retryable = isRetryable(errorNameOf(answer.errorCode));
    if (before !== after || this.#again) this.resubscribe();
    else if (retryable && this.readers.size > 0) setTimeout(() => this.resubscribe(), SUBSCRIBE_REFUSED_RETRY_MS);
  }

  /** Unsolicited frames for this partition (records; `subscribed` with requestId 0 = the broker ended it). */
  handleFrame(frame: BrokerFrame): void {
    if (frame.type === 'subscribed') {
      if (frame.errorCode !== 0 && !this.#pending) {
        this.#generation++;
        this.#handleRejection(frame);
      }
      return;
    }
    if (frame.type !== 'records' || !this.#active || this.#pending) return;
    const size = frame.batches.length;
    const [firstOffset, lastOffset] = offsetRange(frame.batches);
    this.#saw(frame.highWatermark);
    this.#position = Math.max(this.#position, lastOffset + 1);
    this.#outstandingBytes += size;
    const generation = this.#generation;
    let waiting = this.readers.size;
    const release = (): void => {
      if (--waiting !== 0 || generation !== this.#generation) return;
      this.#outstandingBytes -= size;
      this.#releasedBytes += size;
      this.#maybeGrant();
    };
    if (waiting === 0) return release();
    let gap = false;
    for (const r of [...this.readers]) if (!r.deliver(frame, firstOffset, lastOffset, release)) gap = true;
    // NB: defensive — offsets are contiguous on the wire; a gap means a lost frame, so re-read from the readers' positions.
    if (gap) this.resubscribe();
  }

  #maybeGrant(): void {
    if (this.#releasedBytes === 0) return;
    if (this.#releasedBytes < this.windowBytes() / 2 && this.#outstandingBytes > 0) return;
    if (this.conn.send({ type: 'credit', topic: this.topic, partition: this.partition, bytes: this.#releasedBytes })) this.#releasedBytes = 0;
  }
}

/** First base offset and last offset of concatenated batches (headers only, one read per batch). */
function offsetRange(batches: Uint8Array): [number, number] {
  let at = 0, last = -1, first = -1;
  while (at < batches.length) {
    const h = readBatchHeader(batches, at);
    if (!h.ok) break;
    if (first < 0) first = h.value.baseOffset;
    last = h.value.baseOffset + h.value.lastOffsetDelta;
    at += h.value.totalBytes;
  }
  return [first, last];
}

/** All partition streams of one connection, re-subscribed after every reconnect. */
export class StreamRegistry {
  readonly #streams = new Map<string, PartitionStream>();

  constructor(private readonly conn: Connection, private readonly windowBytes: () => number) {
    conn.onFrame((frame) => {
      if ('topic' in frame && 'partition' in frame) this.#streams.get(tpKey(frame.topic, frame.partition))?.handleFrame(frame);
    });
    conn.on('disconnected', () => { for (const s of this.#streams.values()) s.reset(); });
    conn.on('connected', () => { for (const s of this.#streams.values()) { s.reset(); s.resubscribe(); } });
  }

  attach(topic: string, partition: number, reader: StreamReader): void {
    const key = tpKey(topic, partition);
    let stream = this.#streams.get(key);
    if (!stream) this.#streams.set(key, (stream = new PartitionStream(this.conn, topic, partition, this.windowBytes)));
    stream.add(reader);
  }

  detach(topic: string, partition: number, reader: StreamReader): void {
    const key = tpKey(topic, partition);
    const stream = this.#streams.get(key);
    if (!stream) return;
    stream.remove(reader);
    if (stream.readers.size === 0) this.#streams.delete(key);
  }
}
