/**
 * Sparse time index of one segment (Kafka's `.timeindex`): entries
 * (maxTimestampSoFar, offset of the batch that reached it). Timestamps in a
 * log are not monotonic, so the entry records the running maximum.
 *
 * Invariant: for entry (T, O), every batch with base offset < O has
 * maxTimestamp <= T, and entries strictly increase in both T and O.
 * Hence for a target ts, every batch before the last entry with T < ts has
 * maxTimestamp < ts, and the search may start at that entry's offset.
 *
 * File format: 12 bytes per entry, big-endian int64 timestamp, uint32 relativeOffset.
 */
import type { Decoded } from '@runnel/client/codec';
import { INITIAL_INDEX_ENTRIES } from './offset-index.ts';

export const TIME_INDEX_ENTRY_BYTES = 12;
/** Byte position of `relativeOffset` inside an entry (the timestamp is at 0). */
const RELATIVE_OFFSET_FIELD = 8;

export class TimeIndex {
  #timestamps: Float64Array;
  #relOffsets: Uint32Array;
  #count = 0;

  constructor(readonly baseOffset: number, capacity = INITIAL_INDEX_ENTRIES) {
    this.#timestamps = new Float64Array(capacity);
    this.#relOffsets = new Uint32Array(capacity);
  }

  get entryCount(): number {
    return this.#count;
  }

  /** Largest timestamp recorded, or -Infinity when empty. */
  get lastTimestamp(): number {
    return this.#count === 0 ? -Infinity : this.#timestamps[this.#count - 1];
  }

  /** Records (maxTimestampSoFar, offsetOfIt) when both advance; otherwise does nothing. */
  maybeAppend(maxTimestampSoFar: number, offset: number): void {
    const rel = offset - this.baseOffset;
    const n = this.#count;
    if (n > 0 && (maxTimestampSoFar <= this.#timestamps[n - 1] || rel <= this.#relOffsets[n - 1])) return;
    if (n === this.#timestamps.length) this.grow();
    this.#timestamps[n] = maxTimestampSoFar;
    this.#relOffsets[n] = rel;
    this.#count = n + 1;
  }

  /** Offset to start scanning for the first batch with maxTimestamp >= `timestampMs`. */
  lookup(timestampMs: number): number {
    let lo = 0;
    let hi = this.#count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#timestamps[mid] < timestampMs) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? this.baseOffset : this.baseOffset + this.#relOffsets[found];
  }

  /** Drops entries with offset >= `offset`. */
  truncateToOffset(offset: number): void {
    const rel = offset - this.baseOffset;
    while (this.#count > 0 && this.#relOffsets[this.#count - 1] >= rel) this.#count--;
  }

  encode(): Uint8Array {
    const out = new Uint8Array(this.#count * TIME_INDEX_ENTRY_BYTES);
    const view = new DataView(out.buffer);
    for (let i = 0; i < this.#count; i++) {
      view.setBigInt64(i * TIME_INDEX_ENTRY_BYTES, BigInt(this.#timestamps[i]));
      view.setUint32(i * TIME_INDEX_ENTRY_BYTES + RELATIVE_OFFSET_FIELD, this.#relOffsets[i]);
    }
    return out;
  }

  /** Parses a time index file; rejects a torn or unordered one (rebuild instead). */
  static decode(bytes: Uint8Array, baseOffset: number, maxRelativeOffset: number): Decoded<TimeIndex> {
    if (bytes.length % TIME_INDEX_ENTRY_BYTES !== 0) {
      return { ok: false, code: 'CORRUPT_MESSAGE', message: `time index of ${bytes.length} bytes is not a multiple of ${TIME_INDEX_ENTRY_BYTES}` };
    }
    const n = bytes.length / TIME_INDEX_ENTRY_BYTES;
    const index = new TimeIndex(baseOffset, Math.max(n, INITIAL_INDEX_ENTRIES));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) {
      const ts = Number(view.getBigInt64(i * TIME_INDEX_ENTRY_BYTES));
      const rel = view.getUint32(i * TIME_INDEX_ENTRY_BYTES + RELATIVE_OFFSET_FIELD);
      const before = index.#count;
      index.maybeAppend(ts, baseOffset + rel);
      if (index.#count === before || rel > maxRelativeOffset) {
        return { ok: false, code: 'CORRUPT_MESSAGE', message: `time index entry ${i} (${ts}, ${rel}) is out of order or past the segment end` };
      }
    }
    return { ok: true, value: index };
  }

  private grow(): void {
    const ts = new Float64Array(this.#timestamps.length * 2);
    const rel = new Uint32Array(this.#relOffsets.length * 2);
    ts.set(this.#timestamps);
    rel.set(this.#relOffsets);
    this.#timestamps = ts;
    this.#relOffsets = rel;
  }
}
