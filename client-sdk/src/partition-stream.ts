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
 * Credit-based flow control: the broker may send `credit` more bytes; the
 * stream keeps received-but-unreleased bytes plus that credit at its
 * window, topping the credit up once every reader has released frames worth
 * half the window. The broker never sends past it, and parks a batch larger
 * than the credit left: since the window is at least two of the broker's
 * largest batches (ConsumerClient), more than half of it is always granted
 * or held, so a parked batch always fits once the readers release theirs.
 * NB: not a grant per released frame: at the live tail a frame is one small
 * batch, and a credit frame for each (100 subscribers × ~1,000 batches/s)
 * cost the client and the broker more than the records (issue 13 latency).
 *
 * The window adapts (per stream, between the base window and
 * maxCreditWindowBytes): it doubles, at most once per window released, when
 * the readers ran dry while catching up (they waited on a credit round trip,
 * not on their handler: with the
 * default 2 MiB base, 2 × the broker's 1 MiB maxBatchBytes, its catch-up
 * reads came as two ~990 KB frames per window, just under the half-window
 * top-up, so stop-and-wait; test/bench/client.bench.ts), and halves when a
 * full window sits unhandled
 * for many windows (a slow handler: more would only buffer). Growth beyond the base comes from
 * one client-wide budget (maxCreditTotalBytes), so many partitions cannot
 * each buffer the maximum: that bounds the page's memory.
 *
 * With a `PageVisibility` (ClientOptions.pauseWhenHidden) no credit is
 * granted while the page is hidden: the broker sends what it already may
 * (at most one window), then stops; visible again, the credit owed is
 * granted and delivery continues on the same subscription (no gap, no
 * duplicate).
 */
import { ErrorCode, errorNameOf, isRetryable } from './codec/error-codes.ts';
import { readBatchHeader } from './codec/record-batch.ts';
import type { BrokerFrame, RecordsFrame, StartPosition, SubscribedFrame } from './codec/protocol.ts';
import type { Connection } from './connection.ts';
import { CREDIT_GROWTH_FACTOR, CREDIT_SHRINK_AFTER_WINDOWS, defaultClientLimits, LAGGING_BROKER_WAIT_MS, SUBSCRIBE_REFUSED_RETRY_MS, SUBSCRIBE_RETRY_MS } from './limits.ts';
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
  /** A frame's batches; call `held.release()` once handled (credit). False = the frame skips offsets the reader needs (resubscribe). */
  deliver(frame: RecordsFrame, firstOffset: number, lastOffset: number, held: { release(): void }): boolean;
}

/** Whether the page is hidden, and a way to hear when that changes; see documentVisibility. */
export interface PageVisibility {
  readonly hidden: boolean;
  /** Calls `listener` on every change; returns the function that removes it. */
  onChange(listener: () => void): () => void;
}

/** The part of `document` the visibility needs (structural: no DOM type in a worker or Node build). */
interface VisibilityDocument {
  readonly visibilityState: string;
  addEventListener(type: 'visibilitychange', listener: () => void): void;
  removeEventListener(type: 'visibilitychange', listener: () => void): void;
}

/** The page's visibility from `document.visibilityState`; undefined where there is no document (workers, Node). */
export function documentVisibility(doc: VisibilityDocument | undefined = (globalThis as { document?: VisibilityDocument }).document): PageVisibility | undefined {
  if (!doc || typeof doc.addEventListener !== 'function') return undefined;
  return {
    get hidden() { return doc.visibilityState === 'hidden'; },
    onChange(listener) {
      doc.addEventListener('visibilitychange', listener);
      return () => doc.removeEventListener('visibilitychange', listener);
    },
  };
}

/** How the streams of one connection size their credit, besides the base window. */
export interface CreditOptions {
  /** Ceiling of one stream's window (client limit maxCreditWindowBytes; never below the base). */
  maxWindowBytes: number;
  /** Growth of every stream's window above its base, together, stays within this (client limit maxCreditTotalBytes). */
  maxGrowthBytes: number;
  /** Grant nothing while this says hidden (ClientOptions.pauseWhenHidden). */
  visibility?: PageVisibility;
}

/** The window growth shared by the streams of one connection (bounded by CreditOptions.maxGrowthBytes). */
class CreditBudget {
  grownBytes = 0;
  constructor(readonly windowBytes: () => number, readonly options: CreditOptions) {}
  get isHidden(): boolean { return this.options.visibility?.hidden === true; }
}

export class PartitionStream {
  readonly readers = new Set<StreamReader>();
  #pending = false;
  #again = false;
  #active = false;
  #generation = 0;
  /** Next offset the broker will send on this subscription. */
  #position = 0;
  /** Bytes received and not yet released by every reader. */
  #outstandingBytes = 0;
  /** Bytes the broker may still send on this subscription (granted minus received; it may overdraw by a batch). */
  #creditBytes = 0;
  /** This stream's window above its base (taken from the shared budget). Kept across resubscribes. */
  #growthBytes = 0;
  /** Bytes released since the readers last ran dry: a full window that never runs dry is more than needed. */
  #releasedSinceDryBytes = 0;
  /** Bytes released since the window last grew: it grows at most once per window (a read sent as several frames runs the readers dry between two). */
  #releasedSinceGrowthBytes = 0;
  /** Highest high watermark seen on this stream. */
  #seenHighWatermark = 0;
  /** When a broker first answered OFFSET_OUT_OF_RANGE below what we saw (−1: not now). */
  #laggingSinceMs = -1;

  readonly #conn: Connection;
  readonly #budget: CreditBudget;

  constructor(conn: Connection, readonly topic: string, readonly partition: number, budget: CreditBudget) {
    this.#conn = conn;
    this.#budget = budget;
  }

  /** The current window (bytes): what the broker may send ahead of the readers. */
  get windowBytes(): number {
    return this.#budget.windowBytes() + this.#growthBytes;
  }

  add(reader: StreamReader): void {
    this.readers.add(reader);
    const needed = reader.neededOffset;
    if (!this.#active || needed === null || needed < this.#position) this.resubscribe();
  }

  remove(reader: StreamReader): void {
    this.readers.delete(reader);
    if (this.readers.size > 0) return;
    this.#resize(0);
    this.#active = false;
    this.#generation++;
    this.#conn.send({ type: 'unsubscribe', requestId: 0, topic: this.topic, partition: this.partition });
  }

  /** The connection dropped: everything in flight is void. */
  reset(): void {
    this.#pending = false;
    this.#active = false;
    this.#generation++;
  }

  /** (Re)subscribes at what the readers need; at most one subscribe in flight. */
  resubscribe(): void {
    if (this.readers.size === 0 || this.#conn.state !== 'connected') return;
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
    this.#creditBytes = this.windowBytes;
    const onAnswer = (answer: SubscribedFrame): void => { if (generation === this.#generation) this.#handleAnswer(answer, symbolic); };
    this.#conn.request<SubscribedFrame>({ type: 'subscribe', topic: this.topic, partition: this.partition, topicId, from, creditBytes: this.#creditBytes }, undefined, onAnswer)
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
    this.#creditBytes -= size;
    this.#maybeShrink();
    const generation = this.#generation;
    let waiting = this.readers.size;
    const held = { release: (): void => { if (--waiting <= 0) this.#handleReleased(size, generation); } };
    if (waiting === 0) return held.release();
    let gap = false;
    for (const r of [...this.readers]) if (!r.deliver(frame, firstOffset, lastOffset, held)) gap = true;
    // NB: defensive — offsets are contiguous on the wire; a gap means a lost frame, so re-read from the readers' positions.
    if (gap) this.resubscribe();
  }

  /** Every reader released a frame of `size` bytes received in `generation`: its credit comes back. */
  #handleReleased(size: number, generation: number): void {
    if (generation !== this.#generation) return;
    this.#outstandingBytes -= size;
    this.#releasedSinceDryBytes += size;
    this.#releasedSinceGrowthBytes += size;
    this.#maybeGrow();
    this.maybeGrant();
  }

  /**
   * The readers ran dry while the broker still had records for them (a catch-up): what they waited for was a
   * round trip, credit out and frames back, so a larger window would have had the next frames here already.
   * Doubles the window. NB: a link limited by bandwidth, not latency, also grows it, to no gain; the ceiling
   * and the shared budget bound what that costs.
   */
  #maybeGrow(): void {
    if (this.#outstandingBytes !== 0) return;
    this.#releasedSinceDryBytes = 0;
    if (this.#position >= this.#seenHighWatermark || this.#releasedSinceGrowthBytes < this.windowBytes) return;
    this.#releasedSinceGrowthBytes = 0;
    this.#resize(CREDIT_GROWTH_FACTOR * this.windowBytes - this.#budget.windowBytes());
  }

  /**
   * A slow handler: a whole window waits unhandled (the broker is out of credit) and the readers have not run dry
   * for CREDIT_SHRINK_AFTER_WINDOWS windows: a larger window only buffers more. Halves the window.
   */
  #maybeShrink(): void {
    if (this.#growthBytes === 0 || this.#outstandingBytes < this.windowBytes || this.#releasedSinceDryBytes < CREDIT_SHRINK_AFTER_WINDOWS * this.windowBytes) return;
    this.#releasedSinceDryBytes = 0;
    this.#resize(Math.floor(this.windowBytes / CREDIT_GROWTH_FACTOR) - this.#budget.windowBytes());
  }

  /** Sets this stream's growth above its base, within maxWindowBytes and what the shared budget has left. */
  #resize(wantedGrowthBytes: number): void {
    const { maxWindowBytes, maxGrowthBytes } = this.#budget.options, { windowBytes } = this.#budget;
    const room = maxGrowthBytes - this.#budget.grownBytes + this.#growthBytes;
    const growth = Math.max(0, Math.min(wantedGrowthBytes, maxWindowBytes - windowBytes(), room));
    this.#budget.grownBytes += growth - this.#growthBytes;
    this.#growthBytes = growth;
  }

  /** Tops the broker's credit up to the window once half of it is missing (not while the page is hidden); see the file header. */
  maybeGrant(): void {
    if (!this.#active || this.#pending || this.#budget.isHidden) return;
    const missing = this.windowBytes - this.#outstandingBytes - this.#creditBytes;
    if (missing <= 0 || missing < this.windowBytes / 2) return;
    if (this.#conn.send({ type: 'credit', topic: this.topic, partition: this.partition, bytes: missing })) this.#creditBytes += missing;
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
  readonly #budget: CreditBudget;
  #stopWatchingVisibility: (() => void) | null = null;

  /** `windowBytes`: the base (and starting) window of a stream (creditWindowBytes, at least two of the broker's largest batches). */
  readonly #conn: Connection;

  constructor(conn: Connection, windowBytes: () => number, credit: Partial<CreditOptions> = {}) {
    this.#conn = conn;
    this.#budget = new CreditBudget(windowBytes, {
      maxWindowBytes: credit.maxWindowBytes ?? defaultClientLimits.maxCreditWindowBytes,
      maxGrowthBytes: credit.maxGrowthBytes ?? defaultClientLimits.maxCreditTotalBytes,
      visibility: credit.visibility,
    });
    conn.onFrame((frame) => {
      if ('topic' in frame && 'partition' in frame) this.#streams.get(tpKey(frame.topic, frame.partition))?.handleFrame(frame);
    });
    conn.on('disconnected', () => { for (const s of this.#streams.values()) s.reset(); });
    conn.on('connected', () => { for (const s of this.#streams.values()) { s.reset(); s.resubscribe(); } });
  }

  attach(topic: string, partition: number, reader: StreamReader): void {
    const key = tpKey(topic, partition);
    let stream = this.#streams.get(key);
    if (!stream) this.#streams.set(key, (stream = new PartitionStream(this.#conn, topic, partition, this.#budget)));
    // The visibility listener lives while some stream does (a closed client leaves none behind on `document`).
    const visibility = this.#budget.options.visibility;
    if (visibility && !this.#stopWatchingVisibility) this.#stopWatchingVisibility = visibility.onChange(() => { for (const s of this.#streams.values()) s.maybeGrant(); });
    stream.add(reader);
  }

  detach(topic: string, partition: number, reader: StreamReader): void {
    const key = tpKey(topic, partition);
    const stream = this.#streams.get(key);
    if (!stream) return;
    stream.remove(reader);
    if (stream.readers.size === 0) this.#streams.delete(key);
    if (this.#streams.size === 0) {
      this.#stopWatchingVisibility?.();
      this.#stopWatchingVisibility = null;
    }
  }
}
