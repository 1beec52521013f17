/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * Kafka RecordBatch v2 (KIP-98) and of Runnel's log.
 *
 * Pure JS, slice-by-8 (Intel's "Slicing-by-8", Kounavis & Berry 2005): eight
 * 256-entry tables let the loop fold 8 bytes per iteration. It runs in
 * browsers and edge runtimes. Outside browser builds `crc32c` hands ranges of
 * 256 bytes or more to `@node-rs/crc32` when the app has it installed
 * (`#native-crc32c`); the server also injects it where it takes a `Crc32cFn`
 * (docs/protocol.md, Codec). Invariant: the result is an unsigned 32-bit integer.
 */
import { nativeCrc32c } from '#native-crc32c';

/** A CRC-32C over `bytes[start, end)`; injectable so Node can use a native one. */
export type Crc32cFn = (bytes: Uint8Array, start: number, end: number) => number;

const POLY = 0x82f63b78;

/** TABLES[k * 256 + b] = CRC of byte b followed by k zero bytes (one flat array for locality). */
const TABLES = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

/**
 * CRC-32C of `bytes[start, end)` (defaults: the whole array).
 * @example crc32c(new TextEncoder().encode('123456789')) === 0xe3069283
 */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  // Below 256 B the native call (~150 ns: a subarray and the N-API crossing) costs more than the JS loop.
  // NB: `nativeCrc32c &&`, not `!== null`: esbuild folds `null && …` in browser builds, not a comparison.
  return nativeCrc32c && end - start >= 256 ? nativeCrc32c(bytes, start, end) : ~crc32cUpdate(-1, bytes, start, end) >>> 0;
}

/**
 * Streaming form: feed the running (pre-inverted) state. Start with -1 and
 * finish with `~state >>> 0`. Lets callers checksum non-contiguous ranges.
 */
export function crc32cUpdate(state: number, bytes: Uint8Array, start: number, end: number): number {
  const t = TABLES;
  let crc = state | 0;
  let i = start;
  const end8 = start + ((end - start) & ~7);
  while (i < end8) {
    const a = crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    crc =
      t[1792 + (a & 0xff)] ^
      t[1536 + ((a >>> 8) & 0xff)] ^
      t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + bytes[i + 4]] ^
      t[512 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
    i += 8;
  }
  while (i < end) crc = t[(crc ^ bytes[i++]) & 0xff] ^ (crc >>> 8);
  return crc;
}
