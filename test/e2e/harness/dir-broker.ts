/**
 * A broker child on a given port and data dir, for failover tests: two of
 * them on one dir (one running at a time, different ports) look to a client
 * like two brokers of a cluster serving the same log — the next URL has the
 * same topics, topic ids, producer-id key and producer state. `kill()` is
 * SIGKILL. The caller owns (and removes) the dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { READY_LINE } from './broker-process.ts';
import { waitFor } from './wait-for.ts';

const root = new URL('../../..', import.meta.url).pathname;
/** Bytes of output kept for failure messages. */
const LOG_TAIL_BYTES = 16 * 1024;
/** tsx compiles the broker on start; a loaded 2-core machine needs a while. */
const READY_TIMEOUT_MS = 60_000;

const live = new Set<ChildProcess>();
process.once('exit', () => { for (const child of live) child.kill('SIGKILL'); });

/**
 * @example
 * const a = new DirBroker(await freePort(), dir), b = new DirBroker(await freePort(), dir);
 * await a.start(); await a.kill(); await b.start();
 */
export class DirBroker {
  private child: ChildProcess | undefined;
  private logTail = '';

  constructor(readonly port: number, readonly dataDir: string) {}

  get url(): string { return `http://127.0.0.1:${this.port}`; }
  get wsUrl(): string { return `ws://127.0.0.1:${this.port}/v1/ws`; }
  get isRunning(): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null; }
  log(): string { return `--- broker ${this.port} log (tail) ---\n${this.logTail.slice(-3000)}`; }

  /** Starts the broker and waits for /readyz (another one on the same dir must be stopped). */
  async start(): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'start', '--port', String(this.port), '--data', this.dataDir], {
      cwd: root, env: { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(child);
    child.once('exit', () => live.delete(child));
    let startup = ''; // this child's first output (the tail may still hold an earlier start's ready line)
    const append = (chunk: Buffer): void => {
      this.logTail = (this.logTail + chunk.toString()).slice(-LOG_TAIL_BYTES);
      if (startup.length < LOG_TAIL_BYTES) startup += chunk.toString();
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    // NB: this child's own ready line first: a /readyz answer alone may come from another process on the port.
    await waitFor(`broker ${this.port} ready`, async () => {
      if (child.exitCode !== null) throw new Error(`broker exited\n${this.log()}`);
      return startup.includes(READY_LINE) && (await fetch(`${this.url}/readyz`)).ok;
    }, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100, context: () => this.log() });
  }

  /** SIGKILL, then waits for the exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.isRunning) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
