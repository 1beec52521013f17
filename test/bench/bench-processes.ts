/**
 * Process plumbing of `cluster.bench.ts` (not a benchmark itself): load
 * generator children that speak the start/stop line protocol of
 * broker-bench-client.ts and cluster-bench-client.ts, a single `runnel
 * start` broker child (the single-node baseline, launched exactly as the
 * cluster's brokers are, minus `--cluster`), page-cache settling between
 * phases, and `/metrics` counters read before and after a phase.
 *
 * Invariant: every child spawned here is SIGKILLed when this process exits,
 * so an aborted benchmark leaves no broker or load generator behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../server/src/cluster/local-cluster.ts';

export interface BenchProcessLimits {
  /** How long a load generator may take to connect and print `{"ready":true}` (tsx compiles it first; the machine is shared). */
  clientReadyTimeoutMs: number;
  /** How long a load generator may take to print its result after `stop`. */
  clientResultTimeoutMs: number;
  /** How long the single-node broker may take from spawn to `GET /readyz` 200. */
  brokerReadyTimeoutMs: number;
  /** How long a graceful stop (SIGTERM) of the single-node broker may take before SIGKILL. */
  brokerStopTimeoutMs: number;
}

export const defaultBenchProcessLimits: BenchProcessLimits = {
  clientReadyTimeoutMs: 60_000,
  clientResultTimeoutMs: 30_000,
  brokerReadyTimeoutMs: 90_000,
  brokerStopTimeoutMs: 15_000,
};

export function validateBenchProcessLimits(limits: BenchProcessLimits): BenchProcessLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`bench limit ${name} must be a positive integer, got ${value}`);
  }
  return limits;
}

const RUNNEL_BIN = fileURLToPath(new URL('../../server/bin/runnel.mjs', import.meta.url));
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export interface BenchClient {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: AsyncIterator<string>;
}

/** Spawns `script args...` under tsx and resolves once it printed `{"ready":true}`. */
export async function spawnClient(script: string, args: (string | number)[], limits = defaultBenchProcessLimits): Promise<BenchClient> {
  const name = `${script.split('/').pop()} ${args[0]}`;
  const child = track(spawn(process.execPath, ['--import', 'tsx', script, ...args.map(String)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await withTimeout(lines.next(), limits.clientReadyTimeoutMs, `${name} ready`);
  if (first.done || !(JSON.parse(first.value) as { ready?: boolean }).ready) throw new Error(`${name} did not get ready`);
  return { name, child, lines };
}

/** The next JSON line a client prints. */
export async function readResult<T>(client: BenchClient, limits = defaultBenchProcessLimits): Promise<T> {
  const line = await withTimeout(client.lines.next(), limits.clientResultTimeoutMs, `${client.name} result`);
  if (line.done) throw new Error(`${client.name} exited without a result`);
  return JSON.parse(line.value) as T;
}

/**
 * `start` to every client, `warmUpSec` later `mark` (clients that know it
 * restart their counts) and `onMeasuring()`, `durationSec` after that
 * `stop`, then each one's result line.
 */
export async function runPhase<T>(clients: BenchClient[], durationSec: number, warmUpSec = 0, onMeasuring: () => void = () => {}): Promise<T[]> {
  for (const c of clients) c.child.stdin!.write('start\n');
  if (warmUpSec > 0) {
    await new Promise((r) => setTimeout(r, warmUpSec * 1000));
    for (const c of clients) c.child.stdin!.write('mark\n');
  }
  onMeasuring();
  await new Promise((r) => setTimeout(r, durationSec * 1000));
  for (const c of clients) c.child.stdin!.write('stop\n');
  return Promise.all(clients.map((c) => readResult<T>(c)));
}

/**
 * Between phases: write back the previous phase's data, drop the page cache
 * (best effort, needs root), pause a second. broker.bench.ts measured why:
 * the kernel writing back a previous phase's gigabytes stretches every
 * fdatasync of the next one.
 */
export async function settle(): Promise<void> {
  execFileSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    console.log('bench: could not drop the page cache (not root); later phases may measure lower');
  }
  await new Promise((r) => setTimeout(r, 1000));
}

/** Counters of one broker's `/metrics` this benchmark reports per phase. */
export interface BrokerCounters {
  /** Group-commit fdatasyncs (leader and follower logs alike). */
  fsyncs: number;
  fsyncSeconds: number;
  recordsIn: number;
  bytesIn: number;
  /** Produce requests answered (each carries one batch). */
  produceRequests: number;
}

/** Sums of the named series (all label sets) in a Prometheus text exposition. */
export async function readCounters(baseUrl: string): Promise<BrokerCounters> {
  const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const sum = (name: string): number => {
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const rest = line.slice(name.length);
      if (rest[0] !== ' ' && rest[0] !== '{') continue;
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return total;
  };
  return {
    fsyncs: sum('runnel_fsync_latency_seconds_count'), fsyncSeconds: sum('runnel_fsync_latency_seconds_sum'),
    recordsIn: sum('runnel_records_in_total'), bytesIn: sum('runnel_bytes_in_total'),
    produceRequests: sum('runnel_produce_latency_seconds_count'),
  };
}

export function counterDelta(after: BrokerCounters, before: BrokerCounters): BrokerCounters {
  return {
    fsyncs: after.fsyncs - before.fsyncs, fsyncSeconds: after.fsyncSeconds - before.fsyncSeconds,
    recordsIn: after.recordsIn - before.recordsIn, bytesIn: after.bytesIn - before.bytesIn,
    produceRequests: after.produceRequests - before.produceRequests,
  };
}

/** One single-node broker child: `runnel start` without `--cluster`, on a free port and its own data dir. */
export class SingleNodeBroker {
  private constructor(readonly url: string, private readonly child: ChildProcess, private readonly exited: Promise<void>) {}

  get wsUrl(): string { return `${this.url.replace('http', 'ws')}/v1/ws`; }
  get pid(): number | undefined { return this.child.pid; }

  static async start(options: { dataDir: string; env?: Record<string, string>; limits?: BenchProcessLimits; args?: string[] }): Promise<SingleNodeBroker> {
    const limits = validateBenchProcessLimits(options.limits ?? defaultBenchProcessLimits);
    await mkdir(options.dataDir, { recursive: true });
    const port = await freePort();
    const child = track(spawn(process.execPath, [RUNNEL_BIN, 'start', '--host', '127.0.0.1', '--port', String(port), '--data', options.dataDir, ...(options.args ?? [])], {
      env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'],
    }));
    let output = '';
    const keep = (chunk: Buffer): void => { output = (output + chunk.toString()).slice(-8000); };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let exit: string | undefined;
    const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => { exit = signal ?? `code ${code}`; resolve(); }));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + limits.brokerReadyTimeoutMs;
    for (;;) {
      if (exit !== undefined) throw new Error(`single-node broker exited (${exit}) before it was ready:\n${output}`);
      try {
        const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
        await r.arrayBuffer();
        if (r.ok) return new SingleNodeBroker(url, child, exited);
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`single-node broker not ready after ${limits.brokerReadyTimeoutMs} ms:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM (graceful: a --cpu-prof profile is written), SIGKILL after brokerStopTimeoutMs. */
  async stop(limits = defaultBenchProcessLimits): Promise<void> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), limits.brokerStopTimeoutMs);
    this.child.kill('SIGTERM');
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * What the machine did during a phase, from /proc (Linux; null elsewhere):
 * CPU busy of all cores, CPU of named processes, and the data disk's
 * writes and cache flushes (each fdatasync that reaches the device is one
 * flush). These say what bounds a phase: cores, the disk, or neither (a
 * pipeline waiting on round trips).
 */
export interface MachineSample {
  atMs: number;
  cpuBusyTicks: number;
  cpuTotalTicks: number;
  processTicks: Map<string, number>;
  processWaitNs: Map<string, number>;
  disk: { sectorsWritten: number; writes: number; flushes: number; flushMs: number } | null;
}

export interface MachineUsage {
  /** Cores busy on average (0..cores). */
  coresBusy: number;
  cores: number;
  /** Cores each named process used on average. */
  processCores: Record<string, number>;
  /** Cores busy outside the named processes: others on this shared machine (and the kernel's own work). */
  otherCores: number;
  /**
   * Threads of the named processes runnable but waiting for a core, on
   * average (schedstat): well above their cores used means every hop of a
   * pipeline waits for the scheduler (a loaded machine), not for work.
   */
  processRunqueueWait: Record<string, number>;
  diskWriteMBps: number | null;
  diskFlushesPerSec: number | null;
  diskMeanFlushMs: number | null;
}

const CLOCK_TICKS_PER_SEC = 100;

/** Nanoseconds the process's threads spent runnable but waiting for a core (the 2nd field of each thread's /proc/<pid>/task/<tid>/schedstat). */
function readRunqueueWaitNs(pid: number): number {
  let total = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // the thread ended
      }
    }
  } catch {
    // the process ended, or not Linux
  }
  return total;
}

function readProcTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15 of proc(5))
  } catch {
    return 0;
  }
}

/** The block device holding `path` (its name in /proc/diskstats), or null when it cannot be told. */
export function diskOf(path: string): string | null {
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f.length > 2 && f[0].startsWith('/dev/'));
    const best = mounts.filter((f) => path === f[1] || path.startsWith(f[1].endsWith('/') ? f[1] : `${f[1]}/`)).sort((a, b) => b[1].length - a[1].length)[0];
    return best ? best[0].slice('/dev/'.length) : null;
  } catch {
    return null;
  }
}

export function sampleMachine(processes: Record<string, number | undefined>, disk: string | null): MachineSample {
  let cpuBusyTicks = 0;
  let cpuTotalTicks = 0;
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    cpuTotalTicks = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    cpuBusyTicks = cpuTotalTicks - cpu[3] - cpu[4]; // minus idle and iowait
  } catch {
    // not Linux
  }
  const processTicks = new Map<string, number>();
  const processWaitNs = new Map<string, number>();
  for (const [name, pid] of Object.entries(processes)) {
    if (pid === undefined) continue;
    processTicks.set(name, readProcTicks(pid));
    processWaitNs.set(name, readRunqueueWaitNs(pid));
  }
  let diskSample: MachineSample['disk'] = null;
  if (disk) {
    try {
      const line = readFileSync('/proc/diskstats', 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[2] === disk);
      if (line) diskSample = { writes: Number(line[7]), sectorsWritten: Number(line[9]), flushes: Number(line[18] ?? 0), flushMs: Number(line[19] ?? 0) };
    } catch {
      // no diskstats
    }
  }
  return { atMs: performance.now(), cpuBusyTicks, cpuTotalTicks, processTicks, processWaitNs, disk: diskSample };
}

export function machineUsage(before: MachineSample, after: MachineSample): MachineUsage {
  const sec = (after.atMs - before.atMs) / 1000;
  const cores = availableParallelism();
  const totalTicks = after.cpuTotalTicks - before.cpuTotalTicks;
  const processCores: Record<string, number> = {};
  for (const [name, ticks] of after.processTicks) processCores[name] = Number(((ticks - (before.processTicks.get(name) ?? ticks)) / CLOCK_TICKS_PER_SEC / sec).toFixed(2));
  const d = before.disk && after.disk ? {
    writeMBps: ((after.disk.sectorsWritten - before.disk.sectorsWritten) * 512) / 1e6 / sec,
    flushes: after.disk.flushes - before.disk.flushes, flushMs: after.disk.flushMs - before.disk.flushMs,
  } : null;
  const processRunqueueWait: Record<string, number> = {};
  for (const [name, ns] of after.processWaitNs) processRunqueueWait[name] = Number(((ns - (before.processWaitNs.get(name) ?? ns)) / 1e9 / sec).toFixed(2));
  const coresBusy = totalTicks > 0 ? Number((((after.cpuBusyTicks - before.cpuBusyTicks) / totalTicks) * cores).toFixed(2)) : 0;
  const named = Object.values(processCores).reduce((a, b) => a + b, 0);
  return {
    coresBusy, cores, processCores, otherCores: Number(Math.max(0, coresBusy - named).toFixed(2)), processRunqueueWait,
    diskWriteMBps: d ? Math.round(d.writeMBps) : null,
    diskFlushesPerSec: d ? Math.round(d.flushes / sec) : null,
    diskMeanFlushMs: d && d.flushes > 0 ? Number((d.flushMs / d.flushes).toFixed(2)) : null,
  };
}

export function formatUsage(u: MachineUsage): string {
  const procs = Object.entries(u.processCores).map(([n, c]) => `${n} ${c}`).join(', ');
  const disk = u.diskWriteMBps === null ? 'disk n/a' : `disk ${u.diskWriteMBps} MB/s written, ${u.diskFlushesPerSec} flushes/s × ${u.diskMeanFlushMs} ms`;
  const waits = Object.entries(u.processRunqueueWait).map(([n, w]) => `${n} ${w}`).join(', ');
  const busy = procs ? `${procs}, other processes ${u.otherCores}` : 'all by processes the bench does not name';
  return `machine: ${u.coresBusy}/${u.cores} cores busy (${busy}); ${waits ? `waiting for a core (${waits}); ` : ''}${disk}`;
}
