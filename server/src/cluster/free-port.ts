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
 *
 * Checking that a port is free is not enough either: between the check and
 * the child's bind, the same port can be picked again — by this process for
 * another node of the same cluster, or by another test process running
 * concurrently (CI failed once on a replication port taken that way). So a
 * port handed out is reserved: in this process for its lifetime, and across
 * processes by a file `<tmpdir>/runnel-ports/<port>` holding the owner's pid,
 * created exclusively, removed when the owner exits and taken over when that
 * pid is gone.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert } from '@runnel/client/codec';
import { isProcessAlive } from '@runnel/client/node';

/** Lowest port `freeRestartablePort` picks (above the well-known and most registered service ports in use on dev machines). */
const RESTARTABLE_MIN = 20_000;
/** Candidates tried before falling back to the kernel's choice. */
const ATTEMPTS = 64;

/**
 * A free TCP port on 127.0.0.1 (listen on 0, read it, close), reserved like a restartable one (a port another
 * process of this project reserved is skipped); the kernel may still give it to an outgoing connection before it is used.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = await kernelPort();
    if (reserve(port)) return port;
  }
  return kernelPort();
}

function kernelPort(): Promise<number> {
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
    if (!reserve(port)) continue;
    if (await isFree(port)) return port;
    release(port);
  }
  return freePort();
}

/** Where reservations live; overridable so a test can use its own directory. */
export const reservationDir = { path: join(tmpdir(), 'runnel-ports') };
/** Ports this process reserved (kept for its lifetime: a restart binds the same port again). */
const reserved = new Set<number>();
let releaseOnExit = false;

/**
 * Reserves `port` for this process: false when this process or another live one holds it. A reservation whose
 * owner is gone (killed without its exit handler) is taken over.
 */
export function reserve(port: number): boolean {
  if (reserved.has(port)) return false;
  const file = join(reservationDir.path, String(port));
  mkdirSync(reservationDir.path, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      reserved.add(port);
      if (!releaseOnExit) {
        releaseOnExit = true;
        process.once('exit', () => { for (const p of reserved) release(p); });
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      const owner = Number(readFileSafe(file));
      // NB: an empty file is a reservation being written this instant: taken.
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && !isProcessAlive(owner)) {
        try { unlinkSync(file); } catch { /* another process took it over first */ }
        continue;
      }
      return false;
    }
  }
  return false;
}

/** Drops this process's reservation of `port` (its file too). */
export function release(port: number): void {
  if (!reserved.delete(port)) return;
  try { unlinkSync(join(reservationDir.path, String(port))); } catch { /* already gone */ }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
