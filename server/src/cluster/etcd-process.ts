/**
 * One real etcd 3.4 server as a child process: for tests (fault injection:
 * SIGKILL, SIGSTOP/SIGCONT, restart on the same data dir) and for
 * `runnel cluster --nodes N` on one machine. Single member, 127.0.0.1 only,
 * its own data dir and free client and peer ports.
 *
 * Fast settings by default (`heartbeatIntervalMs` 50, `electionTimeoutMs`
 * 500) so short lease TTLs work: etcd raises every lease TTL to
 * ceil(1.5 × electionTimeout) seconds (etcd server/lease: `minTTL =
 * (3 × electionTicks / 2) × heartbeat`), so with these settings the
 * shortest lease is 1 s; with etcd's defaults (100/1000) it is 2 s.
 *
 * Invariant: a started process is always either running (maybe stopped by
 * SIGSTOP) or awaited to its exit; `stop()` and `kill('SIGKILL')` resolve
 * only after the exit, so a `restart()` never races the old process for its
 * ports or data dir. Children are SIGKILLed when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunnelError, assert } from '@runnel/client/codec';
import { freeRestartablePort } from './free-port.ts';

export interface EtcdProcessLimits {
  /** How long `start()`/`restart()` waits for /health to answer true. Too short fails on a loaded machine. */
  startTimeoutMs: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. */
  stopTimeoutMs: number;
  /** Bytes of etcd's stderr kept for error messages (the rest is discarded, so the pipe never blocks). */
  maxLogTailBytes: number;
  /** How often readiness is polled. */
  healthPollIntervalMs: number;
}

export const defaultEtcdProcessLimits: EtcdProcessLimits = {
  startTimeoutMs: 30_000,
  stopTimeoutMs: 10_000,
  maxLogTailBytes: 16_384,
  healthPollIntervalMs: 25,
};

export function validateEtcdProcessLimits(limits: EtcdProcessLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`etcd process limit ${name} must be a positive integer, got ${value}`);
  }
  if (limits.healthPollIntervalMs >= limits.startTimeoutMs) throw new RangeError('healthPollIntervalMs must be below startTimeoutMs');
}

export interface EtcdProcessOptions {
  /** etcd binary; default `RUNNEL_ETCD_BIN` or /usr/bin/etcd. */
  bin?: string;
  /** Data dir; default a fresh tmp dir, removed by `dispose()`. A given dir is never removed. */
  dataDir?: string;
  /** Member name (etcd `--name`). */
  name?: string;
  heartbeatIntervalMs?: number;
  electionTimeoutMs?: number;
  limits?: Partial<EtcdProcessLimits>;
}

const DEFAULT_BIN = '/usr/bin/etcd';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // NB: 'exit' handlers run synchronously; a SIGKILL is all we can do there, and all that is needed.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export { freePort } from './free-port.ts';

export class EtcdProcess {
  /** Client URL, e.g. http://127.0.0.1:41234 (pass to etcd3 `hosts`). */
  readonly url: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private logTail = '';
  private isPaused = false;

  private constructor(
    private readonly bin: string,
    private readonly ownsDataDir: boolean,
    dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    private readonly name: string,
    private readonly heartbeatIntervalMs: number,
    private readonly electionTimeoutMs: number,
    private readonly limits: EtcdProcessLimits,
  ) {
    this.dataDir = dataDir;
    this.url = `http://127.0.0.1:${clientPort}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
  }

  /**
   * Starts etcd and resolves once it is healthy (has a leader and serves).
   * @example
   * const etcd = await EtcdProcess.start();
   * const client = new Etcd3({ hosts: etcd.url });
   * await etcd.dispose();
   */
  static async start(options: EtcdProcessOptions = {}): Promise<EtcdProcess> {
    const limits = { ...defaultEtcdProcessLimits, ...options.limits };
    validateEtcdProcessLimits(limits);
    const bin = options.bin ?? process.env.RUNNEL_ETCD_BIN ?? DEFAULT_BIN;
    try {
      await access(bin, constants.X_OK);
    } catch (e) {
      throw new Error(`etcd not found at ${bin}: install it (apt-get install -y etcd-server) or set RUNNEL_ETCD_BIN`, { cause: e });
    }
    const ownsDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? await mkdtemp(join(tmpdir(), 'runnel-etcd-'));
    // NB: a port picked here can be taken by someone else before etcd binds it; retry with new ports.
    for (let attempt = 1; ; attempt++) {
      const etcd = new EtcdProcess(bin, ownsDataDir, dataDir, await freeRestartablePort(), await freeRestartablePort(), options.name ?? 'runnel-etcd',
        options.heartbeatIntervalMs ?? 50, options.electionTimeoutMs ?? 500, limits);
      try {
        await etcd.launch();
        return etcd;
      } catch (e) {
        await etcd.stop().catch(() => undefined);
        const portTaken = /address already in use/.test(etcd.logTail);
        if (!portTaken || attempt >= 3) {
          if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
          throw e;
        }
      }
    }
  }

  /** OS pid of the running etcd, undefined when it is not running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get isRunning(): boolean {
    return this.child !== undefined;
  }

  /** The last bytes etcd wrote to stderr (for failure messages). */
  get log(): string {
    return this.logTail;
  }

  /** SIGTERM and wait for the exit (SIGKILL after `stopTimeoutMs`). Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (this.isPaused) this.signal('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), this.limits.stopTimeoutMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends a signal for fault tests. SIGKILL/SIGTERM/SIGINT resolve after the
   * exit; SIGSTOP freezes etcd (clients time out), SIGCONT resumes it.
   */
  async kill(signal: 'SIGKILL' | 'SIGTERM' | 'SIGINT' | 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    if (!this.child) throw new Error(`etcd (${this.url}) is not running; cannot send ${signal}`);
    this.signal(signal);
    // NB: kill(2) returns before the target stops; a request sent right after SIGSTOP could still be answered.
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') await this.awaitStopped(signal === 'SIGSTOP');
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') {
      // A stopped process does not act on SIGTERM until continued.
      if (this.isPaused && signal !== 'SIGKILL') this.signal('SIGCONT');
      await this.exited;
    }
  }

  /** Stops etcd if it runs, then starts it again on the same data dir and ports; resolves once healthy. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops etcd and removes its data dir if `start()` created it. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  /** Waits until /proc shows the process stopped (or running again). Where there is no /proc, returns at once. */
  private async awaitStopped(stopped: boolean): Promise<void> {
    const pid = this.child?.pid;
    const deadline = Date.now() + this.limits.stopTimeoutMs;
    while (pid !== undefined && Date.now() < deadline) {
      let state: string;
      try {
        // The state is the field after the parenthesised command name: "123 (etcd) T ...".
        state = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.[0] ?? '';
      } catch {
        return; // no /proc (not Linux) or the process is gone
      }
      if ((state === 'T' || state === 't') === stopped) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  private signal(signal: NodeJS.Signals): void {
    const child = this.child;
    assert(child !== undefined, 'signal only a running etcd');
    child.kill(signal);
    if (signal === 'SIGSTOP') this.isPaused = true;
    if (signal === 'SIGCONT') this.isPaused = false;
  }

  private args(): string[] {
    return [
      '--name', this.name,
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.url,
      '--advertise-client-urls', this.url,
      '--listen-peer-urls', this.peerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', `${this.name}=${this.peerUrl}`,
      '--initial-cluster-state', 'new',
      '--heartbeat-interval', String(this.heartbeatIntervalMs),
      '--election-timeout', String(this.electionTimeoutMs),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', 'warn',
    ];
  }

  private async launch(): Promise<void> {
    assert(this.child === undefined, 'launch only a stopped etcd');
    installExitHook();
    const child = spawn(this.bin, this.args(), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.isPaused = false;
    live.add(child);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.logTail = (this.logTail + chunk).slice(-this.limits.maxLogTailBytes);
    });
    let exitCode: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        exitCode = signal ?? String(code);
        live.delete(child);
        if (this.child === child) this.child = undefined;
        resolve();
      };
      child.once('exit', done);
      child.once('error', (e) => {
        this.logTail += `\nspawn error: ${e.message}`;
        done(null, null);
      });
    });
    await this.awaitHealthy(() => exitCode);
  }

  private async awaitHealthy(exitCode: () => string | undefined): Promise<void> {
    const deadline = Date.now() + this.limits.startTimeoutMs;
    for (;;) {
      const code = exitCode();
      if (code !== undefined) throw new Error(`etcd exited (${code}) while starting:\n${this.logTail.slice(-4000)}`);
      if (await this.isHealthy()) return;
      if (Date.now() > deadline) {
        throw new RunnelError('REQUEST_TIMED_OUT', `etcd at ${this.url} not healthy after ${this.limits.startTimeoutMs} ms:\n${this.logTail.slice(-4000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.limits.healthPollIntervalMs));
    }
  }

  private async isHealthy(): Promise<boolean> {
    try {
      const response = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await response.json()) as { health?: string };
      return response.ok && body.health === 'true';
    } catch {
      return false; // not listening yet
    }
  }
}
