/**
 * Sparse offset index of one segment (Kafka's `.index`): entries map a
 * batch's base offset, stored relative to the segment's base offset, to the
 * batch's byte position in the `.log` file. One entry is added per
 * `indexIntervalBytes` of log, so a lookup costs a binary search plus a scan
 * of at most that many bytes. Pure: no I/O.
 *
 * File format: 8 bytes per entry, big-endian uint32 relativeOffset, uint32 position.
 * Invariant: relative offsets and positions strictly increase.
 */
import type { Decoded } from '@runnel/client/codec';

export const OFFSET_INDEX_ENTRY_BYTES = 8;
/** Byte position of `position` inside an entry (`relativeOffset` is at 0). */
const POSITION_FIELD = 4;
/** Relative offsets and positions are uint32 on disk; segments roll before passing this. */
export const MAX_RELATIVE_VALUE = 0xffff_ffff;
/** Entries allocated up front per index (doubles when full): a segment's first 64 × indexIntervalBytes need no growth. */
export const INITIAL_INDEX_ENTRIES = 64;

export interface IndexPosition {
  offset: number;
  position: number;
}

export class OffsetIndex {
  #relOffsets: Uint32Array;
  #positions: Uint32Array;
  #count = 0;

  constructor(readonly baseOffset: number, capacity = INITIAL_INDEX_ENTRIES) {
    this.#relOffsets = new Uint32Array(capacity);
    this.#positions = new Uint32Array(capacity);
  }

  get entryCount(): number {
    return this.#count;
  }

  /** Adds an entry for the batch starting at `offset`, `position`. Programmer error if not increasing. */
  append(offset: number, position: number): void {
    const rel = offset - this.baseOffset;
    if (!(rel >= 0 && rel <= MAX_RELATIVE_VALUE && position >= 0 && position <= MAX_RELATIVE_VALUE)) {
      throw new RangeError(`offset index entry (${offset}, ${position}) outside segment ${this.baseOffset}`);
    }
    const n = this.#count;
    if (n > 0 && (rel <= this.#relOffsets[n - 1] || position <= this.#positions[n - 1])) {
      throw new RangeError(`offset index entries must increase: (${offset}, ${position}) after (${this.baseOffset + this.#relOffsets[n - 1]}, ${this.#positions[n - 1]})`);
    }
    if (n === this.#relOffsets.length) this.grow();
    this.#relOffsets[n] = rel;
    this.#positions[n] = position;
    this.#count = n + 1;
  }

  /** Largest entry with offset <= `offset`; the segment start when none. Scan forward from its position. */
  lookup(offset: number): IndexPosition {
    const rel = offset - this.baseOffset;
    let lo = 0;
    let hi = this.#count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#relOffsets[mid] <= rel) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return { offset: this.baseOffset, position: 0 };
    return { offset: this.baseOffset + this.#relOffsets[found], position: this.#positions[found] };
  }

  /** Drops entries with offset >= `offset` (log truncation). */
  truncateToOffset(offset: number): void {
    const rel = offset - this.baseOffset;
    while (this.#count > 0 && this.#relOffsets[this.#count - 1] >= rel) this.#count--;
  }

  encode(): Uint8Array {
    const out = new Uint8Array(this.#count * OFFSET_INDEX_ENTRY_BYTES);
    const view = new DataView(out.buffer);
    for (let i = 0; i < this.#count; i++) {
      view.setUint32(i * OFFSET_INDEX_ENTRY_BYTES, this.#relOffsets[i]);
      view.setUint32(i * OFFSET_INDEX_ENTRY_BYTES + POSITION_FIELD, this.#positions[i]);
    }
    return out;
  }

  /** Parses an index file; rejects one that is torn, unordered or points past `segmentBytes` (rebuild instead). */
  static decode(bytes: Uint8Array, baseOffset: number, segmentBytes: number): Decoded<OffsetIndex> {
    if (bytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0) {
      return { ok: false, code: 'CORRUPT_MESSAGE', message: `offset index of ${bytes.length} bytes is not a multiple of ${OFFSET_INDEX_ENTRY_BYTES}` };
    }
    const n = bytes.length / OFFSET_INDEX_ENTRY_BYTES;
    const index = new OffsetIndex(baseOffset, Math.max(n, INITIAL_INDEX_ENTRIES));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) {
      const rel = view.getUint32(i * OFFSET_INDEX_ENTRY_BYTES);
      const position = view.getUint32(i * OFFSET_INDEX_ENTRY_BYTES + POSITION_FIELD);
      const last = index.#count - 1;
      if (position >= segmentBytes || (last >= 0 && (rel <= index.#relOffsets[last] || position <= index.#positions[last]))) {
        return { ok: false, code: 'CORRUPT_MESSAGE', message: `offset index entry ${i} (${rel}, ${position}) is out of order or past the segment end` };
      }
      index.#relOffsets[i] = rel;
      index.#positions[i] = position;
      index.#count = i + 1;
    }
    return { ok: true, value: index };
  }

  private grow(): void {
    const rel = new Uint32Array(this.#relOffsets.length * 2);
    const pos = new Uint32Array(this.#positions.length * 2);
    rel.set(this.#relOffsets);
    pos.set(this.#positions);
    this.#relOffsets = rel;
    this.#positions = pos;
  }
}
