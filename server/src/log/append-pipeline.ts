/**
 * The append pipeline's bookkeeping (pure, sans-IO): the appends between
 * offset assignment and acknowledgement, the group-commit offsets
 * (group-commit.ts) and the high watermark. The driver (log-writer.ts) asks
 * what to do, performs it, and reports back, as with etcd raft's
 * `Ready()` → persist / send / apply → `Advance()`:
 *
 *   nextWrite(writeSegment) → WriteReady → roll, or one vectored write → onWritten()
 *   startSync()             → target     → fdatasync                   → onSynced()
 *   ready()                 → AckReady   → listeners, then acks        → advance(ack)
 *
 * Invariants: highWatermark <= ackEnd <= writtenEnd <= assignedEnd; appends
 * are written, made visible and acknowledged in offset order; an entry
 * leaves the queue only once written, acknowledged and delivered.
 * Hot path: per batch, never per record; no allocation per batch (one
 * `WriteReady`/`AckReady` per write or fdatasync, shared by every batch in it).
 */
import { assert } from '@runnel/client/codec';
import { AppendQueue } from './append-queue.ts';
import { GroupCommit } from './group-commit.ts';

/** Largest number of batches in one vectored write (bounds the iovec array and one write's latency). */
export const MAX_WRITE_BATCHES = 4096;
/** Largest number of bytes in one vectored write; a bigger backlog goes out in several writes. */
export const MAX_WRITE_BYTES = 64 * 1024 * 1024;

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  logAppendTimeMs: number;
  /** A retry of an already stored idempotent batch: nothing was appended, these are its original offsets. */
  duplicate: boolean;
}

/** One assigned append. `S` is the driver's segment, opaque here (compared by identity only). */
export interface PendingAppend<S> {
  /** Stored bytes, offsets assigned. */
  batch: Uint8Array;
  /** The segment the batch was assigned to (a roll was decided when it differs from the previous one's). */
  segment: S;
  result: AppendResult;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** The writer's next step. Perform it, then ask again; at most one write in flight. */
export type WriteReady<S> =
  | {
      kind: 'roll';
      /**
       * The next batches belong to `segment`. BEFORE writing any of them:
       * fdatasync the write segment, then `markWrittenDurable()` (its batches may
       * now be acknowledged), then seal it and make `segment` the write segment.
       */
      segment: S;
    }
  | {
      kind: 'write';
      /** The write segment: every chunk belongs to it. */
      segment: S;
      /**
       * Append these batches to `segment`'s file in this order in ONE vectored
       * write, then call `onWritten()` (or `onWriteFailed()`). Nothing here is
       * acknowledged by the write alone in durable mode.
       */
      chunks: Uint8Array[];
      /** Offsets below it are written once the write resolves (`onWritten` moves writtenEnd here). */
      endOffset: number;
    };

/**
 * What the last write, fdatasync or `setHighWatermarkLimit` made true.
 * Perform the fields in order, then `advance(ack)`.
 */
export interface AckReady {
  /** Consumers never see offsets >= highWatermark. Already current (reads see it) when `ready()` returns. */
  readonly highWatermark: number;
  /**
   * Queue positions [visibleFrom, visibleTo) (`at(i)`): batches now wholly
   * below highWatermark, in offset order. Hand each to the onAppend listeners
   * exactly once, BEFORE resolving the appends of [ackedFrom, ackedTo).
   */
  readonly visibleFrom: number;
  readonly visibleTo: number;
  /**
   * Queue positions [ackedFrom, ackedTo): appends whose lastOffset < ackEnd.
   * Resolve them in order. Durable mode: only reached once an fdatasync
   * covered their lastOffset; flushIntervalMs > 0: once written.
   */
  readonly ackedFrom: number;
  readonly ackedTo: number;
  /** Offset waits for an end <= ackEnd may resolve. */
  readonly ackEnd: number;
  /** Waits for durability (`flush`) for an end <= durableEnd may resolve. */
  readonly durableEnd: number;
}

export class AppendPipeline<S> {
  readonly #queue = new AppendQueue<PendingAppend<S>>();
  #commit: GroupCommit;
  /** Queue position of the first unwritten append; the one after the in-flight write's last while a write runs. */
  #writeHead = 0;
  #writingHead = 0;
  #visibleHead = 0;
  #ackHead = 0;
  #highWatermark: number;
  #highWatermarkLimit: number | null = null;
  /** An fdatasync was asked for (flush, flush interval) up to this offset, whatever the mode. */
  #flushTarget = 0;

  /**
   * `isDurable`: acknowledge after fdatasync (flushIntervalMs 0), else after the write.
   * `highWatermark` (replication): the starting high watermark, <= endOffset, which is
   * also its limit (it then moves only by `setHighWatermarkLimit`); default endOffset, no limit.
   */
  constructor(endOffset: number, readonly isDurable: boolean, highWatermark?: number) {
    this.#commit = new GroupCommit(endOffset);
    this.#highWatermark = endOffset;
    if (highWatermark !== undefined) {
      assert(highWatermark >= 0 && highWatermark <= endOffset, `initial high watermark ${highWatermark} must lie in [0, ${endOffset}]`);
      this.#highWatermark = highWatermark;
      this.#highWatermarkLimit = highWatermark;
    }
  }

  /** Next offset to assign. */
  get assignedEnd(): number { return this.#commit.assignedEnd; }
  get writtenEnd(): number { return this.#commit.writtenEnd; }
  /** Offsets below it are covered by a completed fdatasync. */
  get durableEnd(): number { return this.#commit.durableEnd; }
  /** Offsets below it are acknowledged: the durable end, or the written end when not `isDurable`. */
  get ackEnd(): number { return this.isDurable ? this.#commit.durableEnd : this.#commit.writtenEnd; }
  get highWatermark(): number { return this.#highWatermark; }
  /** Appends assigned but not yet acknowledged (bounded by maxPendingAppends). */
  get pendingCount(): number { return this.#queue.end - this.#ackHead; }
  get isWriting(): boolean { return this.#commit.isWriting; }

  /** Queue entry at absolute position `index` (a position from `AckReady`). */
  at(index: number): PendingAppend<S> {
    return this.#queue.at(index);
  }

  /** Queues an append whose offsets start at `assignedEnd` (the caller assigned them). */
  assign(p: PendingAppend<S>): void {
    // NB: the message is built only on failure (this runs per batch).
    if (p.result.baseOffset !== this.#commit.assignedEnd) assert(false, `append assigned ${p.result.baseOffset}, expected ${this.#commit.assignedEnd} (contiguous offsets)`);
    this.#commit.onAssigned(p.result.lastOffset + 1);
    this.#queue.push(p);
  }

  /** What the writer does next; null when every assigned append is written (or a write is in flight). */
  nextWrite(writeSegment: S): WriteReady<S> | null {
    if (this.#commit.isWriting || this.#writeHead >= this.#queue.end) return null;
    const first = this.#queue.at(this.#writeHead);
    if (first.segment !== writeSegment) return { kind: 'roll', segment: first.segment };
    const chunks: Uint8Array[] = [];
    let end = this.#writeHead;
    let bytes = 0;
    while (end < this.#queue.end && chunks.length < MAX_WRITE_BATCHES && bytes < MAX_WRITE_BYTES) {
      const p = this.#queue.at(end);
      if (p.segment !== writeSegment) break;
      chunks.push(p.batch);
      bytes += p.batch.length;
      end++;
    }
    assert(this.#commit.startWrite(), 'a write started while another is in flight');
    this.#writingHead = end;
    return { kind: 'write', segment: writeSegment, chunks, endOffset: this.#queue.at(end - 1).result.lastOffset + 1 };
  }

  onWritten(): void {
    this.#writeHead = this.#writingHead;
    this.#commit.onWritten(this.#queue.at(this.#writeHead - 1).result.lastOffset + 1);
  }

  /** Releases the write slot after a failed write (the log then fails as a whole). */
  onWriteFailed(): void {
    this.#commit.onWriteFailed();
  }

  /** After a write: true when the syncer must run (durable mode, or an fdatasync was asked past the durable end). */
  get needsSync(): boolean {
    return this.isDurable || this.#flushTarget > this.#commit.durableEnd;
  }

  /** Asks for an fdatasync covering offsets below `end`, whatever the mode (flush, flush interval). */
  requestSync(end: number): void {
    this.#flushTarget = Math.max(this.#flushTarget, end);
  }

  /** Target T of an fdatasync to start now (then `onSynced`), or null (one in flight, or nothing unsynced). */
  startSync(): number | null {
    return this.#commit.startSync();
  }

  onSynced(): void {
    this.#commit.onSynced();
  }

  onSyncFailed(): void {
    this.#commit.onSyncFailed();
  }

  /** Everything written was fdatasync'ed outside the syncer (segment roll). */
  markWrittenDurable(): void {
    this.#commit.markDurable(this.#commit.writtenEnd);
  }

  /** Replication: from now on highWatermark <= `offset` too. Monotonic. */
  setHighWatermarkLimit(offset: number): void {
    this.#highWatermarkLimit = Math.max(this.#highWatermarkLimit ?? 0, offset);
  }

  /** Moves the high watermark and says which appends became visible and which acknowledged. */
  ready(): AckReady {
    const ackEnd = this.ackEnd;
    const hw = this.#highWatermarkLimit === null ? ackEnd : Math.min(ackEnd, this.#highWatermarkLimit);
    if (hw > this.#highWatermark) this.#highWatermark = hw;
    let visibleTo = this.#visibleHead;
    while (visibleTo < this.#writeHead && this.#queue.at(visibleTo).result.lastOffset < this.#highWatermark) visibleTo++;
    let ackedTo = this.#ackHead;
    while (ackedTo < this.#writeHead && this.#queue.at(ackedTo).result.lastOffset < ackEnd) ackedTo++;
    return {
      highWatermark: this.#highWatermark, visibleFrom: this.#visibleHead, visibleTo,
      ackedFrom: this.#ackHead, ackedTo, ackEnd, durableEnd: this.#commit.durableEnd,
    };
  }

  /** The driver performed `ack`: its entries are delivered and resolved; drops what nothing needs any more. */
  advance(ack: AckReady): void {
    assert(ack.visibleFrom === this.#visibleHead && ack.ackedFrom === this.#ackHead, 'advance() of a stale AckReady (one ready/advance at a time)');
    this.#visibleHead = ack.visibleTo;
    this.#ackHead = ack.ackedTo;
    this.#queue.trimBefore(Math.min(this.#ackHead, this.#visibleHead));
  }

  /** The log failed: returns the queue positions [from, to) of every unacknowledged append, to reject; none is acknowledged later. */
  failPending(): { from: number; to: number } {
    const pending = { from: this.#ackHead, to: this.#queue.end };
    this.#ackHead = this.#queue.end;
    return pending;
  }

  /**
   * After truncation (idle pipeline): every end moves back to `endOffset`, the high watermark (and its limit) at most there.
   * Entries of batches at or past `endOffset` leave the queue: acknowledged but not yet visible (above the high
   * watermark), they must never reach the onAppend listeners (a deposed leader's divergent tail).
   */
  reset(endOffset: number): void {
    this.#commit.reset(endOffset);
    let cut = this.#visibleHead;
    while (cut < this.#queue.end && this.#queue.at(cut).result.baseOffset < endOffset) cut++;
    this.#queue.truncateFrom(cut);
    this.#writeHead = Math.min(this.#writeHead, cut);
    this.#writingHead = Math.min(this.#writingHead, cut);
    this.#ackHead = Math.min(this.#ackHead, cut);
    this.#highWatermark = Math.min(this.#highWatermark, endOffset);
    if (this.#highWatermarkLimit !== null) this.#highWatermarkLimit = Math.min(this.#highWatermarkLimit, endOffset);
  }

  /**
   * After a full truncation (idle pipeline): the log restarts empty at `offset`, which may lie past the old end.
   * Every queued entry leaves (none reaches the listeners); the high watermark (and its limit) is `offset`.
   */
  restartAt(offset: number): void {
    this.#commit.reset(offset);
    this.#queue.truncateFrom(this.#visibleHead);
    this.#writeHead = this.#writingHead = this.#ackHead = this.#visibleHead;
    this.#highWatermark = offset;
    if (this.#highWatermarkLimit !== null) this.#highWatermarkLimit = offset;
  }
}
