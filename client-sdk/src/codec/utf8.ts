/**
 * UTF-8 for the codec's short strings (topic names, header keys, ids).
 * ASCII fast paths avoid TextEncoder/TextDecoder call overhead on the tiny
 * strings that dominate frames; longer or non-ASCII strings use the platform
 * codecs. Decoding is strict: invalid UTF-8 returns `null` (callers map it to
 * a coded error) instead of inventing U+FFFD characters.
 */

import { utf8Slice } from '#native-utf8';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder();

/** Strings up to this many chars are handled by the hand-written loops. */
const SHORT_STRING = 32;

/** Number of UTF-8 bytes `s` encodes to (lone surrogates count as U+FFFD, 3 bytes, like TextEncoder). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Writes `s` at `pos` (room for `utf8Length(s)` bytes must exist); returns the position after it. */
export function writeUtf8(b: Uint8Array, pos: number, s: string): number {
  if (s.length <= SHORT_STRING) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[pos + i] = c;
    }
    if (i === s.length) return pos + i;
  }
  return pos + encoder.encodeInto(s, b.subarray(pos)).written;
}

/** Decodes `b[start, end)`; `null` if it is not valid UTF-8. */
export function readUtf8(b: Uint8Array, start: number, end: number): string | null {
  if (end - start <= SHORT_STRING) {
    let s = '';
    let i = start;
    for (; i < end; i++) {
      const c = b[i];
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === end) return s;
  }
  try {
    return decoder.decode(b.subarray(start, end));
  } catch {
    return null; // NB: fatal TextDecoder throws TypeError on invalid UTF-8; that is the only failure here.
  }
}

/**
 * Ranges up to this many bytes take the ASCII loop in `readUtf8Lenient`:
 * keys and ids. Longer ones (values) go to the shared TextDecoder, which in
 * Node 20 decodes a 100-byte ASCII value in ~170 ns of CPU against ~400 ns
 * for the loop (measured with process.cpuUsage on the 2-core dev VM); below
 * a few dozen bytes the loop wins (no call into the platform, no view).
 */
const SHORT_TEXT = 24;
/** Reused char-code arrays of the ASCII path, one per length: no allocation and no array resize per call. */
const charCodes: number[][] = Array.from({ length: SHORT_TEXT + 1 }, (_, n) => new Array<number>(n).fill(0));

/**
 * Decodes `b[start, end)` like `new TextDecoder().decode(...)` (invalid
 * sequences become U+FFFD, a leading BOM is dropped). Hot path of the
 * consumer (one call per record key or value read): a short ASCII range
 * becomes a string with one `String.fromCharCode.apply` and no view
 * allocated; anything else goes to Node's utf8Slice (`#native-utf8`) or, in
 * browsers, the one shared TextDecoder.
 */
export function readUtf8Lenient(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  // NB: a leading 0xEF may start a BOM, which TextDecoder drops and utf8Slice keeps.
  if (n > SHORT_TEXT) return utf8Slice && b[start] !== 0xef ? utf8Slice(b, start, end) : lenientDecoder.decode(b.subarray(start, end));
  const codes = charCodes[n];
  for (let i = 0; i < n; i++) {
    const c = b[start + i];
    if (c >= 0x80) return lenientDecoder.decode(b.subarray(start, end));
    codes[i] = c;
  }
  return String.fromCharCode.apply(null, codes);
}
