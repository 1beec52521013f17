/**
 * `#native-crc32c` outside browser builds (package.json "imports"): the SSE4.2
 * CRC-32C of `@node-rs/crc32` when the app has it installed (an optional peer
 * dependency: Runnel's server depends on it), else null and the caller keeps
 * the pure-JS slice-by-8. Why: verifying each received batch's CRC was 15–24 %
 * of a Node consumer's CPU per record (test/bench/sdk-consumers-decode.ts,
 * MODE=offset); the native one is ~14× faster past its ~150 ns call cost.
 */
import { createRequire } from 'node:module';

type Native = (input: Uint8Array, initialState?: number) => number;

function load(): Native | null {
  try {
    const fn = (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: Native }).crc32c;
    return typeof fn === 'function' ? fn : null;
  } catch {
    return null; // not installed, or no binary for this platform
  }
}

const native = load();

/** CRC-32C of `bytes[start, end)`, unsigned; null without the native module. */
export const nativeCrc32c: ((bytes: Uint8Array, start: number, end: number) => number) | null =
  native === null ? null : (bytes, start, end) => native(bytes.subarray(start, end)) >>> 0;
