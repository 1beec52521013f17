/**
 * A real broker as a child process (`node --import tsx server/src/cli.ts
 * start`), on a free port with a temp data dir, for browser and
 * fault-injection tests. `kill()` is SIGKILL (no graceful shutdown: the
 * log must recover on its own), `restart()` starts it again on the same
 * port and dir. Every broker and temp dir is cleaned up by `stop()` and,
 * as a last resort, when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { freeRestartablePort } from '../../../server/src/cluster/free-port.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait-for.ts';

const root = new URL('../../..', import.meta.url).pathname;
/** Bytes of broker stdout+stderr kept for failure messages. */
const LOG_TAIL_BYTES = 64 * 1024;
/** tsx compiles the broker on start; a loaded 2-core machine needs a while. */
const READY_TIMEOUT_MS = 60_000;
/** Free ports tried by `start` when the one it got was taken before the broker listened. */
const PORT_ATTEMPTS = 3;
/** What the broker prints when its port is held by another process (server.ts). */
const PORT_TAKEN = 'could not listen on';
/** What the broker prints once it listens (cli/start.ts): only then is the port ours, not another broker's. */
export const READY_LINE = 'runnel: ready at ';

const live = new Set<BrokerProcess>();
process.once('exit', () => {
  for (const broker of live) broker.killNow();
});
// NB: 'exit' does not run when the test process is killed by a signal (e.g. a
// runner timeout); a broker child would then outlive it, holding its port.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const broker of live) broker.killNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

/** A free TCP port on 127.0.0.1 that a restart can bind again (below the kernel's local port range: server/src/cluster/free-port.ts). */
export const freePort = (): Promise<number> => freeRestartablePort();

export interface BrokerProcessOptions {
  /** Extra environment (e.g. RUNNEL_STATIC_DIR). RUNNEL_REQUIRE_NATIVE_UWS=1 is always set. */
  env?: Record<string, string>;
  /** Extra CLI flags after `start --port P --data D`. */
  args?: string[];
  /** Extra node flags before the script (e.g. `--cpu-prof`, written on a graceful `stop()`). */
  nodeArgs?: string[];
}

/**
 * @example
 * const broker = await BrokerProcess.start();
 * try { await fetch(`${broker.url}/v1/topics`); await broker.kill(); await broker.restart(); }
 * finally { await broker.stop(); }
 */
export class BrokerProcess {
  private child: ChildProcess | undefined;
  private logTail = '';
  /** How many times the process was started (1 after `start`). */
  starts = 0;

  private constructor(readonly port: number, readonly dataDir: string, private readonly options: BrokerProcessOptions) {}

  /** The running process's pid (undefined when stopped). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts a broker on a free port with a fresh temp data dir and waits until it is ready. A port taken
   * between freePort() and the broker's listen (another test's broker got it too) is given up for another.
   */
  static async start(options: BrokerProcessOptions = {}): Promise<BrokerProcess> {
    for (let attempt = 1; ; attempt++) {
      const broker = new BrokerProcess(await freePort(), mkdtempSync(join(tmpdir(), 'runnel-e2e-broker-')), options);
      live.add(broker);
      try {
        await broker.spawnAndWait();
        return broker;
      } catch (error) {
        await broker.stop();
        if (attempt === PORT_ATTEMPTS || !broker.logTail.includes(PORT_TAKEN)) throw error;
      }
    }
  }

  get url(): string { return `http://127.0.0.1:${this.port}`; }
  get wsUrl(): string { return `ws://127.0.0.1:${this.port}/v1/ws`; }
  get isRunning(): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null; }
  /** The last bytes the broker printed, for failure messages. */
  log(): string { return `--- broker log (tail) ---\n${this.logTail.slice(-4000)}`; }

  /** SIGKILL, then waits for the exit. The data dir stays for `restart()`. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts the broker again on the same port and data dir; waits for /readyz. */
  async restart(): Promise<void> {
    if (this.isRunning) await this.kill();
    await this.spawnAndWait();
  }

  /** Kills the broker (SIGTERM, SIGKILL after 5 s) and removes its data dir. Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    live.delete(this);
  }

  /** Synchronous last resort for process exit. */
  killNow(): void {
    try { this.child?.kill('SIGKILL'); } catch { /* gone */ }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async spawnAndWait(): Promise<void> {
    const child = spawn(process.execPath, [...(this.options.nodeArgs ?? []), '--import', 'tsx', 'server/src/cli.ts', 'start', '--port', String(this.port), '--data', this.dataDir, ...(this.options.args ?? [])], {
      cwd: root,
      env: { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1', ...this.options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts++;
    let startup = ''; // this child's first output (the tail may still hold an earlier start's ready line)
    const append = (chunk: Buffer): void => {
      this.logTail = (this.logTail + chunk.toString()).slice(-LOG_TAIL_BYTES);
      if (startup.length < LOG_TAIL_BYTES) startup += chunk.toString();
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    child.once('exit', (code, signal) => append(Buffer.from(`\n[broker exited: code ${code} signal ${signal}]\n`)));
    // NB: this child's own ready line first: a /readyz answer alone may come from another process on the port.
    const outcome = await waitFor(`broker on port ${this.port} to be ready`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) return 'exited' as const;
      return startup.includes(READY_LINE) && (await fetch(`${this.url}/readyz`)).ok && ('ready' as const);
    }, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 150, context: () => this.log() });
    if (outcome === 'exited') throw new Error(`broker exited before it was ready\n${this.log()}`);
  }
}
