/**
 * Fixed-width big-endian integers over a Uint8Array (Kafka and Runnel frames
 * are network byte order). int64 values are JS numbers: reads return NaN when
 * the value is outside ±(2^53 − 1), so callers reject it instead of silently
 * losing precision. Callers bounds-check before reading; these never allocate.
 */

const TWO_32 = 0x1_0000_0000;

export function readInt16(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16)) >> 16;
}

export function readUint16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

export function readInt32(b: Uint8Array, at: number): number {
  return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
}

export function readUint32(b: Uint8Array, at: number): number {
  return readInt32(b, at) >>> 0;
}

/** int64 as a number, or NaN if it is not a safe integer. */
export function readInt64(b: Uint8Array, at: number): number {
  const hi = readInt32(b, at);
  // |hi| < 2^21 keeps hi * 2^32 + lo inside the safe range (2^53).
  if (hi >= 0x20_0000 || hi < -0x20_0000) return Number.NaN;
  const value = hi * TWO_32 + readUint32(b, at + 4);
  return Number.isSafeInteger(value) ? value : Number.NaN;
}

export function writeInt16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}

export function writeInt32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** Writes a safe integer as int64 (two's complement). Callers assert `Number.isSafeInteger(v)`. */
export function writeInt64(b: Uint8Array, at: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  writeInt32(b, at, hi);
  writeInt32(b, at + 4, v - hi * TWO_32);
}
