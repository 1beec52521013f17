/**
 * Loads uWebSockets.js and proves it is the native binary. The npm package
 * silently falls back to a slow `ws`-based implementation when its binary
 * does not load; Runnel refuses to pretend that is fine: `uwsIsNative` tells,
 * the broker logs it loudly at start, and tests and benchmarks fail on it.
 * `listenExclusive`: a port is one broker's alone (see there).
 */
import { createRequire } from 'node:module';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';

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

/** uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT: the listen socket is made without SO_REUSEPORT. */
const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

/** The (host, port, options, cb) form the native binary and the fallback both take; the package's typings lack it. */
type ListenWithOptions = { listen(host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void): unknown };

/**
 * Listens on `host`:`port`, or answers `false` when anything else holds the port.
 * NB: uWS's default listen sets SO_REUSEPORT, so a second broker started on a port in use did not fail: both
 * listened and the kernel spread new connections over the two, each on its own log. A client reconnecting
 * through the same URL landed on the other broker, which did not know its producer id, and failed its
 * in-flight records as outcome unknown (test/sdk/failover "URL rotation" in CI: another test's broker was
 * given the same free port).
 */
export function listenExclusive(app: TemplatedApp, host: string, port: number, cb: (socket: us_listen_socket | false) => void): void {
  (app as unknown as ListenWithOptions).listen(host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, cb);
}

export default uws;
