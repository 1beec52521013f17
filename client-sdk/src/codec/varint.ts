/**
 * Zig-zag varints as in Kafka RecordBatch v2 records (protobuf encoding,
 * KIP-98): `varint` is a signed int32 in at most 5 bytes, `varlong` a signed
 * int64 in at most 10 bytes, restricted here to JS safe integers.
 *
 * Decoders read through a `Cursor` and return the value, or NaN as the error
 * marker (truncated, longer than 5/10 bytes, or outside the safe range);
 * on error `cursor.pos` is left unchanged. They never read at or past
 * `cursor.end` and never allocate, so record decoding stays allocation-free.
 */

/** Read position and exclusive end bound inside a byte array. */
export interface Cursor { pos: number; end: number }

/** Error marker of the read functions; test with `Number.isNaN(v)` or `v !== v`. */
export const VARINT_ERROR = Number.NaN;

/** Largest encoded sizes (Kafka ByteUtils). */
export const MAX_VARINT_BYTES = 5;
export const MAX_VARLONG_BYTES = 10;

/** Zig-zag varint (int32). NaN if truncated, over-long or wider than 32 bits. */
export function readVarint(b: Uint8Array, cur: Cursor): number {
  let pos = cur.pos;
  const end = cur.end;
  if (pos >= end) return Number.NaN;
  let byte = b[pos++];
  if (byte < 0x80) {
    cur.pos = pos;
    return (byte >>> 1) ^ -(byte & 1);
  }
  let raw = byte & 0x7f;
  for (let shift = 7; shift <= 28; shift += 7) {
    if (pos >= end) return Number.NaN;
    byte = b[pos++];
    // NB: the 5th byte may only carry the top 4 bits of a 32-bit value.
    if (shift === 28 && byte > 0x0f) return Number.NaN;
    raw |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      cur.pos = pos;
      return (raw >>> 1) ^ -(raw & 1);
    }
  }
  return Number.NaN;
}

/** Zig-zag varlong (int64, safe-integer range). NaN if truncated, over-long or unsafe. */
export function readVarlong(b: Uint8Array, cur: Cursor): number {
  let pos = cur.pos;
  const end = cur.end;
  let lo = 0; // low 28 bits of the raw (zig-zag) value: stays inside int32 bitwise range
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) return Number.NaN;
    const byte = b[pos++];
    lo |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      cur.pos = pos;
      return (lo >>> 1) ^ -(lo & 1);
    }
  }
  let hi = 0;
  let scale = 1;
  for (let i = 4; i < MAX_VARLONG_BYTES; i++) {
    if (pos >= end) return Number.NaN;
    const byte = b[pos++];
    hi += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) {
      // raw = hi * 2^28 + lo; magnitude = floor(raw / 2), exact while it is safe.
      const magnitude = hi * 0x800_0000 + (lo >>> 1);
      if (magnitude >= Number.MAX_SAFE_INTEGER) {
        if (magnitude > Number.MAX_SAFE_INTEGER || lo & 1) return Number.NaN;
      }
      cur.pos = pos;
      return lo & 1 ? -magnitude - 1 : magnitude;
    }
  }
  return Number.NaN;
}

/** Encoded size of a zig-zag varint (v must be an int32). */
export function varintSize(v: number): number {
  const raw = ((v << 1) ^ (v >> 31)) >>> 0;
  if (raw < 0x80) return 1;
  if (raw < 0x4000) return 2;
  if (raw < 0x20_0000) return 3;
  if (raw < 0x1000_0000) return 4;
  return 5;
}

/** Writes a zig-zag varint (v must be an int32); returns the position after it. */
export function writeVarint(b: Uint8Array, pos: number, v: number): number {
  let raw = ((v << 1) ^ (v >> 31)) >>> 0;
  while (raw >= 0x80) {
    b[pos++] = (raw & 0x7f) | 0x80;
    raw >>>= 7;
  }
  b[pos++] = raw;
  return pos;
}

function isInt32(v: number): boolean {
  return (v | 0) === v;
}

/** Encoded size of a zig-zag varlong (v must be a safe integer). */
export function varlongSize(v: number): number {
  if (isInt32(v)) return varintSize(v);
  let rest = Math.floor((v >= 0 ? v : -v - 1) / 64);
  let size = 1;
  while (rest > 0) {
    size++;
    rest = Math.floor(rest / 128);
  }
  return size;
}

/**
 * Writes a zig-zag varlong (v must be a safe integer); returns the position
 * after it. Works on the magnitude, so no bit of a 53-bit value is lost
 * (zig-zag's `2n + 1` would not be exact above 2^52).
 */
export function writeVarlong(b: Uint8Array, pos: number, v: number): number {
  if (isInt32(v)) return writeVarint(b, pos, v);
  const negative = v < 0;
  const magnitude = negative ? -v - 1 : v;
  let rest = Math.floor(magnitude / 64);
  const first = ((magnitude % 64) << 1) | (negative ? 1 : 0);
  if (rest === 0) {
    b[pos++] = first;
    return pos;
  }
  b[pos++] = first | 0x80;
  while (rest >= 0x80) {
    b[pos++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  b[pos++] = rest;
  return pos;
}
