/**
 * Loads uWebSockets.js and proves it is the native binary. The npm package
 * silently falls back to a slow `ws`-based implementation when its binary
 * does not load; Runnel refuses to pretend that is fine: `uwsIsNative` tells,
 * the broker logs it loudly at start, and tests and benchmarks fail on it.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// eslint-disable-next-line @typescript-eslint/no-require-imports
const uws: typeof import('uWebSockets.js') = require('uWebSockets.js');

function detectNative(): boolean {
  const binary = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    // Same cached module object only when the package loaded its native binary.
    return require(binary) === uws;
  } catch {
    return false;
  }
}

export const uwsIsNative: boolean = detectNative();

/** Throws when uWS runs on its fallback; used by tests, benchmarks and `--require-native-uws`. */
export function assertNativeUws(): void {
  if (!uwsIsNative) {
    throw new Error('uWebSockets.js is running on its slow JavaScript fallback (native binary failed to load); refusing to continue');
  }
}

export default uws;
