/**
 * The newest batches of one partition log, kept in memory as they were
 * appended (the stored bytes: base offset and leader epoch already set), so
 * the reads that follow the tail — a follower's fetch, a consumer a few
 * batches behind, a long poll woken by a write — are answered without a file
 * read (a thread-pool round trip and a copy out of the page cache each).
 * Redpanda's batch cache has the same job. docs/storage.md (Reads).
 *
 * Pure bookkeeping, no I/O. Invariants: the entries are contiguous in offset
 * order (an append that does not continue the last one starts the cache
 * afresh); the batches already written to the file (`written(end)`) take at
 * most `maxBytes`, the oldest going first. Batches still waiting for their
 * write are held regardless (the log's write queue holds them anyway, under
 * maxPendingAppends), so under a deep write queue the cache still covers
 * `maxBytes` of servable bytes: counting them would leave a follower's fetch
 * of the newest written batches to the file exactly when the broker is busiest.
 * A read the cache cannot answer exactly as the file would returns null and
 * the caller reads the file: offsets below the first entry, or a cache that
 * is empty. The answer follows log-reader.ts's rules: whole batches from the
 * one containing the offset, none with a last offset at or above `maxOffset`,
 * at most `maxBytes` except that the first batch is always whole.
 */
import { assert } from '@runnel/client/codec';

/** What a read of the cache answers (null: ask the file). */
export interface TailSlice {
  /** Whole batches, concatenated; empty when nothing at `offset` is below `maxOffset`. */
  bytes: Uint8Array;
  firstOffset: number;
  nextOffset: number;
}

interface Entry {
  baseOffset: number;
  /** lastOffset + 1. */
  nextOffset: number;
  bytes: Uint8Array;
}

const EMPTY = new Uint8Array(0);

export class TailCache {
  readonly #maxBytes: number;
  /** Oldest first from `#head`; the array is compacted when the dead prefix grows. */
  #entries: Entry[] = [];
  #head = 0;
  #bytes = 0;
  /** Entries below this index are written to the file; `#writtenBytes` is their size. */
  #writtenTo = 0;
  #writtenBytes = 0;

  constructor(maxBytes: number) {
    assert(Number.isSafeInteger(maxBytes) && maxBytes >= 0, `TailCache maxBytes must be an integer >= 0, got ${maxBytes}`);
    this.#maxBytes = maxBytes;
  }

  /** Bytes held now, written or not. */
  get bytes(): number { return this.#bytes; }
  /** Bytes held of written batches (≤ maxBytes). */
  get writtenBytes(): number { return this.#writtenBytes; }
  get size(): number { return this.#entries.length - this.#head; }

  /** Records the batch just assigned [baseOffset, lastOffset]. `bytes` must not change afterwards (it is what the file holds). */
  append(baseOffset: number, lastOffset: number, bytes: Uint8Array): void {
    if (this.#maxBytes === 0) return;
    const last = this.#last();
    if (last && last.nextOffset !== baseOffset) this.clear();
    this.#entries.push({ baseOffset, nextOffset: lastOffset + 1, bytes });
    this.#bytes += bytes.length;
  }

  /** Offsets below `writtenEnd` are now in the file: they count against maxBytes, the oldest are let go. */
  written(writtenEnd: number): void {
    while (this.#writtenTo < this.#entries.length && this.#entries[this.#writtenTo].nextOffset <= writtenEnd) {
      this.#writtenBytes += this.#entries[this.#writtenTo++].bytes.length;
    }
    while (this.#writtenBytes > this.#maxBytes) {
      const gone = this.#entries[this.#head++].bytes.length;
      this.#bytes -= gone;
      this.#writtenBytes -= gone;
    }
    if (this.#head > 64 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#writtenTo -= this.#head;
      this.#head = 0;
    }
  }

  /** Drops every batch that starts at or after `endOffset` (a truncation of the log's tail). */
  truncateFrom(endOffset: number): void {
    while (this.size > 0 && this.#last()!.baseOffset >= endOffset) this.#drop();
    // A batch straddling the new end cannot be half-kept; the log cut before it, so the cache ends before it too.
    if (this.size > 0 && this.#last()!.nextOffset > endOffset) this.clear();
  }

  clear(): void {
    this.#entries = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#writtenTo = 0;
    this.#writtenBytes = 0;
  }

  #drop(): void {
    const gone = this.#entries.pop()!.bytes.length;
    this.#bytes -= gone;
    if (this.#writtenTo > this.#entries.length) {
      this.#writtenTo = this.#entries.length;
      this.#writtenBytes -= gone;
    }
  }

  /** See the module comment; null when the file must answer. */
  read(offset: number, maxBytes: number, maxOffset: number): TailSlice | null {
    if (this.size === 0) return null;
    const first = this.#entries[this.#head];
    if (offset < first.baseOffset) return null;
    let i = this.#indexOf(offset);
    if (i < 0) return null;
    if (this.#entries[i].nextOffset - 1 >= maxOffset) return { bytes: EMPTY, firstOffset: offset, nextOffset: offset };
    const start = i;
    let total = this.#entries[i].bytes.length;
    for (i++; i < this.#entries.length && total < maxBytes; i++) {
      const e = this.#entries[i];
      if (e.nextOffset - 1 >= maxOffset || total + e.bytes.length > maxBytes) break;
      total += e.bytes.length;
    }
    const firstOffset = this.#entries[start].baseOffset;
    const nextOffset = this.#entries[i - 1].nextOffset;
    if (i - start === 1) return { bytes: this.#entries[start].bytes, firstOffset, nextOffset };
    const bytes = new Uint8Array(total);
    let at = 0;
    for (let k = start; k < i; k++) {
      bytes.set(this.#entries[k].bytes, at);
      at += this.#entries[k].bytes.length;
    }
    return { bytes, firstOffset, nextOffset };
  }

  #last(): Entry | undefined {
    return this.size > 0 ? this.#entries[this.#entries.length - 1] : undefined;
  }

  /** Index of the entry holding `offset` (binary search; entries are contiguous), -1 past the end. */
  #indexOf(offset: number): number {
    let lo = this.#head;
    let hi = this.#entries.length - 1;
    if (offset >= this.#entries[hi].nextOffset) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.#entries[mid].baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
