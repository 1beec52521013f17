/**
 * A whole cluster on this machine (`runnel cluster --nodes 3`, `npm run
 * cluster`, and the fault-injection suite's processes): one real etcd
 * (`EtcdProcess`) and N broker child processes, each `runnel start --cluster
 * <etcd> --node-id <n>` with its own data dir and ports.
 *
 * `BrokerNode` is one broker process with the fault operations tests need
 * (SIGKILL, SIGSTOP/SIGCONT, restart on the same ports and data); the test
 * harness builds its proxied cluster from it. `LocalCluster` starts etcd and
 * the nodes and resolves once every broker is ready and `/v1/cluster` shows a
 * controller and every broker registered.
 *
 * Invariant: a started child is either running (maybe stopped by SIGSTOP) or
 * awaited to its exit; `kill()`/`stop()` resolve only after the exit, so a
 * restart never races the old process for its ports or data dir. Every child
 * is SIGKILLed when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunnelError, assert } from '@runnel/client/codec';
import type { ClusterView } from './cluster-state.ts';
import { EtcdProcess } from './etcd-process.ts';
import { freePort, freeRestartablePort } from './free-port.ts';

export interface LocalClusterLimits {
  /** How long a broker may take from spawn to `GET /readyz` 200. tsx compiles the sources on start; a loaded 2-core machine needs a while. */
  brokerReadyTimeoutMs: number;
  /** How long after every broker is ready until `/v1/cluster` shows a controller and all brokers registered. */
  clusterFormedTimeoutMs: number;
  /** How long `stop()` waits after SIGTERM (graceful shutdown: in-flight appends, fsync) before SIGKILL. */
  brokerStopTimeoutMs: number;
  /** Bytes of each broker's stdout+stderr kept for failure messages. */
  maxLogTailBytes: number;
  /** How often readiness and the cluster view are polled. */
  pollIntervalMs: number;
}

export const defaultLocalClusterLimits: LocalClusterLimits = {
  brokerReadyTimeoutMs: 90_000,
  clusterFormedTimeoutMs: 60_000,
  brokerStopTimeoutMs: 10_000,
  maxLogTailBytes: 64 * 1024,
  pollIntervalMs: 100,
};

export function validateLocalClusterLimits(limits: LocalClusterLimits): LocalClusterLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`local cluster limit ${name} must be a positive integer, got ${value}`);
  }
  if (limits.pollIntervalMs >= limits.brokerReadyTimeoutMs) throw new RangeError('pollIntervalMs must be below brokerReadyTimeoutMs');
  return limits;
}

/** Most brokers `runnel cluster` starts on one machine. */
export const MAX_LOCAL_NODES = 9;

/** The `runnel` launcher (server/bin/runnel.mjs), the same from src/cluster and dist/cluster. */
const RUNNEL_BIN = fileURLToPath(new URL('../../bin/runnel.mjs', import.meta.url));

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // NB: 'exit' handlers run synchronously: a SIGKILL is all there is time for (it ends a SIGSTOPped process too).
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export { freePort };

export interface NodePlan {
  id: number;
  clientPort: number;
  replicationPort: number;
  dataDir: string;
}

/**
 * Node ids 1..N; with `basePort` B node i (0-based) listens on B + 2i and
 * replicates on B + 2i + 1 (the broker's default `--replication-port` is
 * `--port` + 1), else on free ports. Data in `<rootDir>/node-<id>`.
 * @example planNodes({ nodes: 3, basePort: 8080, rootDir: '/srv/c' }) // ports 8080/8081, 8082/8083, 8084/8085
 */
export async function planNodes(options: { nodes: number; basePort?: number; rootDir: string }): Promise<NodePlan[]> {
  const { nodes, basePort, rootDir } = options;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_LOCAL_NODES) throw new RunnelError('INVALID_REQUEST', `--nodes must be 1-${MAX_LOCAL_NODES}, got ${nodes}`);
  if (basePort !== undefined && (!Number.isInteger(basePort) || basePort < 1 || basePort + 2 * nodes - 1 > 65535)) {
    throw new RunnelError('INVALID_REQUEST', `--port must leave room for ${2 * nodes} ports below 65536, got ${basePort}`);
  }
  const plans: NodePlan[] = [];
  for (let i = 0; i < nodes; i++) {
    const id = i + 1;
    plans.push({
      id,
      clientPort: basePort === undefined ? await freeRestartablePort() : basePort + 2 * i,
      replicationPort: basePort === undefined ? await freeRestartablePort() : basePort + 2 * i + 1,
      dataDir: join(rootDir, `node-${id}`),
    });
  }
  return plans;
}

export interface BrokerNodeOptions extends NodePlan {
  /** etcd client URLs this broker is given (`--cluster`); tests give each broker its own proxy. */
  clusterUrls: string[];
  /** Dial overrides (`--peer-address id=host:port`): where this broker reaches other brokers' replication ports. */
  peerAddresses?: ReadonlyMap<number, { host: string; port: number }>;
  clusterPrefix?: string;
  minInsyncReplicas?: number;
  defaultReplicationFactor?: number;
  /** Broker limits (`--limit name=value`), e.g. replicaLagTimeMs, brokerLeaseTtlMs. */
  brokerLimits?: Readonly<Record<string, string | number>>;
  /** More `runnel start` flags, appended last. */
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Each line the broker prints (stdout and stderr). */
  onOutput?: (id: number, line: string) => void;
  limits?: Partial<LocalClusterLimits>;
}

/** The `runnel start` arguments of one broker (after the launcher path). */
export function brokerArgs(o: BrokerNodeOptions): string[] {
  const args = [
    'start', '--cluster', o.clusterUrls.join(','), '--node-id', String(o.id), '--host', '127.0.0.1',
    '--port', String(o.clientPort), '--replication-port', String(o.replicationPort), '--data', o.dataDir,
  ];
  if (o.peerAddresses && o.peerAddresses.size > 0) {
    args.push('--peer-address', [...o.peerAddresses].map(([id, a]) => `${id}=${a.host}:${a.port}`).join(','));
  }
  if (o.clusterPrefix !== undefined) args.push('--cluster-prefix', o.clusterPrefix);
  if (o.minInsyncReplicas !== undefined) args.push('--min-insync-replicas', String(o.minInsyncReplicas));
  if (o.defaultReplicationFactor !== undefined) args.push('--default-replication-factor', String(o.defaultReplicationFactor));
  for (const [name, value] of Object.entries(o.brokerLimits ?? {})) args.push('--limit', `${name}=${value}`);
  args.push(...(o.extraArgs ?? []));
  return args;
}

/**
 * Node flags a broker child inherits: the export conditions (so a cluster
 * started from the TypeScript sources runs its brokers from them too); the
 * launcher registers tsx itself when it resolves to the sources.
 */
function childNodeArgs(): string[] {
  return process.execArgv.filter((a) => a.startsWith('--conditions') || a === '-C');
}

/**
 * One broker child process.
 * @example
 * const node = new BrokerNode({ ...plan, clusterUrls: [etcd.url] });
 * await node.start(); await node.kill(); await node.start(); await node.stop();
 */
export class BrokerNode {
  readonly id: number;
  readonly clientPort: number;
  readonly replicationPort: number;
  readonly dataDir: string;
  /** Processes started so far (1 after the first `start()`). */
  starts = 0;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #paused = false;
  #logTail = '';
  readonly #limits: LocalClusterLimits;

  constructor(private readonly options: BrokerNodeOptions) {
    this.id = options.id;
    this.clientPort = options.clientPort;
    this.replicationPort = options.replicationPort;
    this.dataDir = options.dataDir;
    this.#limits = validateLocalClusterLimits({ ...defaultLocalClusterLimits, ...options.limits });
  }

  get url(): string { return `http://127.0.0.1:${this.clientPort}`; }
  get wsUrl(): string { return `ws://127.0.0.1:${this.clientPort}/v1/ws`; }
  get pid(): number | undefined { return this.#child?.pid; }
  /** A process exists (it may be stopped by SIGSTOP). */
  get isRunning(): boolean { return this.#child !== undefined; }
  get isPaused(): boolean { return this.#paused; }
  /** Resolves when the current process exits (at once when none runs). */
  get exited(): Promise<void> { return this.#exited; }

  /** The last bytes the broker printed, for failure messages. */
  log(): string {
    return `--- node ${this.id} log (tail) ---\n${this.#logTail.slice(-6000)}`;
  }

  /** Spawns the broker and resolves once `GET /readyz` answers 200; throws (with the log) if it exits first or times out. */
  async start(): Promise<void> {
    assert(this.#child === undefined, `node ${this.id} is already running`);
    installExitHook();
    await mkdir(this.dataDir, { recursive: true });
    const child = spawn(process.execPath, [...childNodeArgs(), RUNNEL_BIN, ...brokerArgs(this.options)], {
      env: { ...process.env, ...this.options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // NB: its own process group: a terminal's Ctrl-C (SIGINT to the foreground group) reaches only the launcher,
      // which stops each broker once; a broker that got the SIGINT too would take the launcher's SIGTERM as a
      // second signal and exit without its graceful shutdown.
      detached: true,
    });
    this.#child = child;
    this.#paused = false;
    this.starts++;
    live.add(child);
    let partial = '';
    const onChunk = (chunk: Buffer): void => {
      const text = chunk.toString();
      this.#logTail = (this.#logTail + text).slice(-this.#limits.maxLogTailBytes);
      if (!this.options.onOutput) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.options.onOutput(this.id, line);
    };
    child.stdout!.on('data', onChunk);
    child.stderr!.on('data', onChunk);
    let exit: string | undefined;
    this.#exited = new Promise<void>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        exit = signal ?? `code ${code}`;
        this.#logTail += `\n[node ${this.id} exited: ${exit}]\n`;
        live.delete(child);
        if (this.#child === child) this.#child = undefined;
        this.#paused = false;
        resolve();
      };
      child.once('exit', done);
      child.once('error', (e) => {
        this.#logTail += `\nspawn error: ${e.message}`;
        done(null, null);
      });
    });
    await this.awaitReady(() => exit);
  }

  private async awaitReady(exit: () => string | undefined): Promise<void> {
    const deadline = Date.now() + this.#limits.brokerReadyTimeoutMs;
    for (;;) {
      if (exit() !== undefined) throw new Error(`node ${this.id} exited (${exit()}) before it was ready\n${this.log()}`);
      try {
        const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
        await response.arrayBuffer();
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new RunnelError('REQUEST_TIMED_OUT', `node ${this.id} not ready after ${this.#limits.brokerReadyTimeoutMs} ms\n${this.log()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.#limits.pollIntervalMs));
    }
  }

  /** Sends `signal` and resolves after the exit (SIGKILL: no graceful shutdown, the log must recover on its own). No-op when not running. */
  async kill(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill(signal);
    // A stopped process acts on SIGTERM only once continued.
    if (this.#paused && signal !== 'SIGKILL') child.kill('SIGCONT');
    await this.#exited;
  }

  /** SIGSTOP: the process freezes with its sockets open (peers see silence, its lease stops being renewed). */
  pause(): void {
    assert(this.#child !== undefined, `node ${this.id} is not running`);
    this.#child.kill('SIGSTOP');
    this.#paused = true;
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    assert(this.#child !== undefined, `node ${this.id} is not running`);
    this.#child.kill('SIGCONT');
    this.#paused = false;
  }

  /** Graceful stop (SIGTERM), SIGKILL after `brokerStopTimeoutMs`; resolves after the exit. Idempotent. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), this.#limits.brokerStopTimeoutMs);
    try {
      await this.kill('SIGTERM');
    } finally {
      clearTimeout(timer);
    }
  }

  /** `GET /v1/cluster` of this broker (its own view), of one topic's partitions when `topic` is given. */
  async clusterView(timeoutMs = 2_000, topic?: string): Promise<ClusterView> {
    const query = topic === undefined ? '' : `?topic=${encodeURIComponent(topic)}`;
    const response = await fetch(`${this.url}/v1/cluster${query}`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`node ${this.id}: GET /v1/cluster answered ${response.status} ${await response.text()}`);
    return (await response.json()) as ClusterView;
  }
}

export interface LocalClusterOptions {
  nodes: number;
  /** Root of every data dir (`etcd/`, `node-<id>/`); kept by `stop()`. Default: a fresh temp dir, removed by `stop()`. */
  rootDir?: string;
  /** Client port of node 1 (see `planNodes`); default free ports. */
  basePort?: number;
  clusterPrefix?: string;
  minInsyncReplicas?: number;
  defaultReplicationFactor?: number;
  brokerLimits?: Readonly<Record<string, string | number>>;
  env?: Record<string, string>;
  onOutput?: (id: number, line: string) => void;
  limits?: Partial<LocalClusterLimits>;
}

export interface NodeRow {
  nodeId: number;
  clientUrl: string;
  wsUrl: string;
  replicationPort: number;
  dataDir: string;
  etcdUrl: string;
}

/**
 * etcd and N brokers on this machine.
 * @example
 * const cluster = await LocalCluster.start({ nodes: 3 });
 * console.log(formatNodeTable(cluster.rows()));
 * await cluster.stop();
 */
export class LocalCluster {
  private constructor(
    readonly rootDir: string,
    private readonly ownsRootDir: boolean,
    readonly etcd: EtcdProcess,
    readonly brokers: BrokerNode[],
    private readonly limits: LocalClusterLimits,
  ) {}

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const limits = validateLocalClusterLimits({ ...defaultLocalClusterLimits, ...options.limits });
    const ownsRootDir = options.rootDir === undefined;
    const rootDir = options.rootDir ?? await mkdtemp(join(tmpdir(), 'runnel-cluster-'));
    const plans = await planNodes({ nodes: options.nodes, basePort: options.basePort, rootDir });
    await mkdir(join(rootDir, 'etcd'), { recursive: true });
    let etcd: EtcdProcess | undefined;
    const brokers: BrokerNode[] = [];
    try {
      etcd = await EtcdProcess.start({ dataDir: join(rootDir, 'etcd') });
      for (const plan of plans) {
        brokers.push(new BrokerNode({
          ...plan, clusterUrls: [etcd.url], clusterPrefix: options.clusterPrefix, minInsyncReplicas: options.minInsyncReplicas,
          defaultReplicationFactor: options.defaultReplicationFactor, brokerLimits: options.brokerLimits, env: options.env,
          onOutput: options.onOutput, limits: options.limits,
        }));
      }
      // NB: started together, so the tsx compile of each overlaps the others' waits.
      await Promise.all(brokers.map((b) => b.start()));
      const cluster = new LocalCluster(rootDir, ownsRootDir, etcd, brokers, limits);
      await cluster.waitFormed();
      return cluster;
    } catch (error) {
      await Promise.all(brokers.map((b) => b.kill('SIGKILL')));
      await etcd?.stop();
      if (ownsRootDir) await rm(rootDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The cluster as the first broker that answers sees it. */
  async view(): Promise<ClusterView> {
    let last: unknown;
    for (const broker of this.brokers) {
      if (!broker.isRunning || broker.isPaused) continue;
      try {
        return await broker.clusterView();
      } catch (error) {
        last = error;
      }
    }
    throw new RunnelError('CLUSTER_UNAVAILABLE', `no broker answered GET /v1/cluster${last instanceof Error ? `: ${last.message}` : ''}`);
  }

  /** Resolves with the view once it shows a controller and every running broker registered. */
  async waitFormed(timeoutMs = this.limits.clusterFormedTimeoutMs): Promise<ClusterView> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const view = await this.view();
        const registered = new Set(view.brokers.map((b) => b.id));
        const expected = this.brokers.filter((b) => b.isRunning).map((b) => b.id);
        if (view.controller !== null && expected.every((id) => registered.has(id))) return view;
        last = new Error(`controller ${view.controller}, registered [${[...registered].join(', ')}], expected [${expected.join(', ')}]`);
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) {
        throw new RunnelError('CLUSTER_UNAVAILABLE', `cluster not formed after ${timeoutMs} ms: ${last instanceof Error ? last.message : String(last)}\n${this.brokers.map((b) => b.log()).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, this.limits.pollIntervalMs));
    }
  }

  rows(): NodeRow[] {
    return this.brokers.map((b) => ({ nodeId: b.id, clientUrl: b.url, wsUrl: b.wsUrl, replicationPort: b.replicationPort, dataDir: b.dataDir, etcdUrl: this.etcd.url }));
  }

  /** Stops every broker (gracefully, together), then etcd; removes the root dir if `start()` made it. */
  async stop(): Promise<void> {
    await Promise.all(this.brokers.map((b) => b.stop()));
    await this.etcd.stop();
    if (this.ownsRootDir) await rm(this.rootDir, { recursive: true, force: true });
  }
}

/** An aligned table of the nodes (what `runnel cluster` prints). */
export function formatNodeTable(rows: readonly NodeRow[]): string {
  const header = ['node', 'client URL', 'WebSocket', 'replication port', 'data dir', 'etcd'];
  const cells = rows.map((r) => [String(r.nodeId), r.clientUrl, r.wsUrl, String(r.replicationPort), r.dataDir, r.etcdUrl]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...cells.map(line)].join('\n');
}
