/**
 * Group commit bookkeeping (pure): three offsets that only move forward,
 *   durableEnd <= writtenEnd <= assignedEnd,
 * and at most one write and one fdatasync in flight. Appends that arrive
 * while a write or fdatasync runs are queued and go out together in the next
 * vectored write, then share the next fdatasync: throughput follows disk
 * bandwidth, not the fsync rate. The driver (partition-log.ts) performs the
 * effects and reports back.
 *
 * Ordering contract:
 * - `startWrite()` true: write every assigned-but-unwritten batch, in offset
 *   order, then call `onWritten(end)`.
 * - `startSync()` returns T: fdatasync the file(s) holding offsets < T, then
 *   `onSynced()`. Acknowledge a durable append only once durableEnd > its lastOffset.
 */
export class GroupCommit {
  #assignedEnd: number;
  #writtenEnd: number;
  #durableEnd: number;
  #isWriting = false;
  #syncTarget: number | null = null;

  constructor(endOffset: number) {
    this.#assignedEnd = endOffset;
    this.#writtenEnd = endOffset;
    this.#durableEnd = endOffset;
  }

  get assignedEnd(): number { return this.#assignedEnd; }
  get writtenEnd(): number { return this.#writtenEnd; }
  /** Offsets below it are covered by a completed fdatasync. */
  get durableEnd(): number { return this.#durableEnd; }
  get isWriting(): boolean { return this.#isWriting; }
  get isSyncing(): boolean { return this.#syncTarget !== null; }
  get isIdle(): boolean { return !this.#isWriting && this.#syncTarget === null && this.#durableEnd === this.#assignedEnd; }

  onAssigned(endOffset: number): void {
    if (endOffset < this.#assignedEnd) throw new RangeError(`assigned end went back from ${this.#assignedEnd} to ${endOffset}`);
    this.#assignedEnd = endOffset;
  }

  /** True when a write should start now (none in flight and unwritten batches queued). */
  startWrite(): boolean {
    if (this.#isWriting || this.#writtenEnd === this.#assignedEnd) return false;
    this.#isWriting = true;
    return true;
  }

  onWritten(endOffset: number): void {
    if (!this.#isWriting || endOffset < this.#writtenEnd || endOffset > this.#assignedEnd) throw new RangeError(`bad write completion ${endOffset}`);
    this.#writtenEnd = endOffset;
    this.#isWriting = false;
  }

  /** Releases the write slot after a failed write (the log then fails as a whole). */
  onWriteFailed(): void {
    this.#isWriting = false;
  }

  /** Target of an fdatasync to start now, or null (one in flight, or nothing unsynced). */
  startSync(): number | null {
    if (this.#syncTarget !== null || this.#writtenEnd === this.#durableEnd) return null;
    this.#syncTarget = this.#writtenEnd;
    return this.#syncTarget;
  }

  /** The fdatasync started by `startSync` completed. Returns the new durableEnd. */
  onSynced(): number {
    if (this.#syncTarget === null) throw new RangeError('no fdatasync in flight');
    this.#durableEnd = Math.max(this.#durableEnd, this.#syncTarget);
    this.#syncTarget = null;
    return this.#durableEnd;
  }

  onSyncFailed(): void {
    this.#syncTarget = null;
  }

  /** Everything written so far was made durable outside the pipeline (segment roll, flush). */
  markDurable(endOffset: number): void {
    if (endOffset > this.#writtenEnd) throw new RangeError(`cannot mark ${endOffset} durable, written end is ${this.#writtenEnd}`);
    this.#durableEnd = Math.max(this.#durableEnd, endOffset);
  }

  /** After truncation: every end moves back to `endOffset`. Only when idle. */
  reset(endOffset: number): void {
    if (this.#isWriting || this.#syncTarget !== null) throw new RangeError('reset while a write or fdatasync is in flight');
    this.#assignedEnd = endOffset;
    this.#writtenEnd = endOffset;
    this.#durableEnd = endOffset;
  }
}
