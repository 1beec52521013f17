/**
 * `#native-utf8` outside browser builds (package.json "imports"): Node's own
 * UTF-8 decoder for a range of any Uint8Array (Buffer.prototype.utf8Slice, the
 * one `buf.toString()` uses), without the view a TextDecoder call needs: a
 * subarray per value was a sixth of the consumer's allocation (8 Dec,
 * test/bench/sdk-consumers-decode.ts: 720–803 → 615–629 ns per record). It
 * replaces invalid sequences as TextDecoder does (codec/utf8.test.ts) but keeps
 * a leading BOM, which the caller handles. Null where there is no such Buffer
 * (Deno, edge runtimes): the caller uses TextDecoder.
 */
type Slice = (this: Uint8Array, start: number, end: number) => string;
const slice = (globalThis as { Buffer?: { prototype: { utf8Slice?: Slice } } }).Buffer?.prototype.utf8Slice;

export const utf8Slice: ((b: Uint8Array, start: number, end: number) => string) | null =
  typeof slice === 'function' ? (b, start, end) => slice.call(b, start, end) : null;
