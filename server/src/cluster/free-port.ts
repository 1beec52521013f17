/**
 * Free TCP ports on 127.0.0.1 for processes this project starts (etcd, local
 * brokers, test brokers). `freePort` asks the kernel (listen on 0): fine for a
 * port bound once, at once. A port bound AGAIN after its process is killed
 * (a broker or etcd restarted on the same address, as the fault schedules and
 * crash tests do) must not be one the kernel hands out meanwhile: a listen on
 * 0 elsewhere or an outgoing connection's source port (both come from the
 * local port range, net.ipv4.ip_local_port_range) could take it, and the
 * restart would fail with EADDRINUSE. `freeRestartablePort` picks one below
 * that range, which the kernel never assigns by itself.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { assert } from '@runnel/client/codec';

/** Lowest port `freeRestartablePort` picks (above the well-known and most registered service ports in use on dev machines). */
const RESTARTABLE_MIN = 20_000;
/** Candidates tried before falling back to the kernel's choice. */
const ATTEMPTS = 64;

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close): another process may take it before it is used. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      assert(address !== null && typeof address === 'object', 'listening server has an address');
      server.close(() => resolve(address.port));
    });
  });
}

/**
 * The ports `freeRestartablePort` may pick, given the kernel's local port range: [RESTARTABLE_MIN, rangeLow).
 * Null when there is no room below the range (or it is unknown): then only the kernel's choice is left.
 */
export function restartablePortSpan(localPortRange: string | null): { min: number; max: number } | null {
  const match = localPortRange?.trim().match(/^(\d+)\s+(\d+)$/);
  if (!match) return null;
  const low = Number(match[1]);
  return low - 1 > RESTARTABLE_MIN ? { min: RESTARTABLE_MIN, max: low - 1 } : null;
}

/** A free port below the kernel's local port range (see the header); `freePort()` where that range is unknown or leaves no room. */
export async function freeRestartablePort(random: () => number = Math.random): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => null);
  const span = restartablePortSpan(range);
  if (span === null) return freePort();
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = span.min + Math.floor(random() * (span.max - span.min + 1));
    if (await isFree(port)) return port;
  }
  return freePort();
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
