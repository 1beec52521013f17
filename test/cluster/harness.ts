/**
 * The fault-injection cluster: one real etcd and N real brokers (default 3),
 * every link between them through a `FaultProxy` — each broker's etcd
 * connection (`--cluster` names its own proxy) and each directed broker→broker
 * replication link (`--peer-address` names the proxy). Clients (the SDK, HTTP)
 * reach brokers directly, so "isolated from etcd" or "cut from its peers"
 * never means "cut from clients".
 *
 * Fault operations: SIGKILL / restart / SIGSTOP / SIGCONT a broker, cut or
 * heal links (blackhole or reset), SIGKILL / restart etcd, truncate or flip a
 * bit in the tail segment of a stopped broker, SIGKILL and restart it all.
 * Observations: `/v1/cluster` views, leaders, controller, health, and each
 * replica's stored batches read from its segment files.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterPartitionView, ClusterView } from '../../server/src/cluster/cluster-state.ts';
import { EtcdProcess } from '../../server/src/cluster/etcd-process.ts';
import { BrokerNode, planNodes } from '../../server/src/cluster/local-cluster.ts';
import { FaultProxy } from './fault-proxy.ts';
import type { LinkMode } from './fault-schedule.ts';
import type { StoredBatch } from './history.ts';
import { flipTailBit, readStoredBatches, segmentFiles, tailSegment, truncateTail } from './segment-files.ts';

export interface ClusterHarnessLimits {
  /** How long `waitHealthy` waits for every partition to have a leader and a full ISR (the cluster heals after each fault). */
  healthyTimeoutMs: number;
  /** How long one `/v1/cluster` request may take (a paused broker never answers). */
  viewRequestTimeoutMs: number;
  pollIntervalMs: number;
  /** Bytes read from the end of a segment when choosing where to truncate or flip. */
  tailCorruptionWindowBytes: number;
}

export const defaultClusterHarnessLimits: ClusterHarnessLimits = {
  healthyTimeoutMs: 60_000,
  viewRequestTimeoutMs: 2_000,
  pollIntervalMs: 100,
  tailCorruptionWindowBytes: 8_192,
};

export interface ClusterHarnessOptions {
  brokers?: number;
  minInsyncReplicas?: number;
  /** Broker limits (`--limit`), e.g. short leases so faults are detected fast. */
  brokerLimits?: Record<string, string | number>;
  limits?: Partial<ClusterHarnessLimits>;
  /** Progress lines (the fault runner prints them). */
  log?: (line: string) => void;
}

/** The short timeouts the suite runs with (the defaults are for production). */
export const FAULT_BROKER_LIMITS = { replicaLagTimeMs: 2_000, brokerLeaseTtlMs: 2_000 } as const;

const linkKey = (from: number, to: number): string => `${from}->${to}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ClusterHarness {
  readonly #links = new Map<string, FaultProxy>();
  readonly #etcdLinks = new Map<number, FaultProxy>();
  readonly #limits: ClusterHarnessLimits;

  private constructor(
    readonly rootDir: string,
    readonly etcd: EtcdProcess,
    readonly nodes: BrokerNode[],
    links: Map<string, FaultProxy>,
    etcdLinks: Map<number, FaultProxy>,
    limits: ClusterHarnessLimits,
    private readonly log: (line: string) => void,
  ) {
    this.#links = links;
    this.#etcdLinks = etcdLinks;
    this.#limits = limits;
  }

  /**
   * @example
   * const cluster = await ClusterHarness.start();
   * try { await cluster.killBroker(await cluster.leaderOf('t', 0)); } finally { await cluster.stop(); }
   */
  static async start(options: ClusterHarnessOptions = {}): Promise<ClusterHarness> {
    // The planned ports are free when planned, not when bound: an ephemeral port of another connection on this
    // machine can take one meanwhile ("could not listen ... in use"). A fresh plan, not a failed run.
    for (let attempt = 1; ; attempt++) {
      try {
        return await ClusterHarness.startOnce(options);
      } catch (error) {
        if (attempt >= 3 || !/could not listen/.test(String((error as Error)?.message))) throw error;
        (options.log ?? (() => {}))(`cluster: a planned port was taken before a broker bound it; planning again (attempt ${attempt + 1})`);
      }
    }
  }

  private static async startOnce(options: ClusterHarnessOptions): Promise<ClusterHarness> {
    const limits = { ...defaultClusterHarnessLimits, ...options.limits };
    const log = options.log ?? (() => {});
    const rootDir = await mkdtemp(join(tmpdir(), 'runnel-faults-'));
    const plans = await planNodes({ nodes: options.brokers ?? 3, rootDir });
    const links = new Map<string, FaultProxy>();
    const etcdLinks = new Map<number, FaultProxy>();
    let etcd: EtcdProcess | undefined;
    const nodes: BrokerNode[] = [];
    try {
      etcd = await EtcdProcess.start({ dataDir: join(rootDir, 'etcd') });
      for (const from of plans) {
        etcdLinks.set(from.id, await FaultProxy.start({ name: `${from.id}->etcd`, targetPort: etcd.clientPort }));
        for (const to of plans) {
          if (to.id !== from.id) links.set(linkKey(from.id, to.id), await FaultProxy.start({ name: linkKey(from.id, to.id), targetPort: to.replicationPort }));
        }
      }
      for (const plan of plans) {
        const peerAddresses = new Map(plans.filter((p) => p.id !== plan.id).map((p) => [p.id, { host: '127.0.0.1', port: links.get(linkKey(plan.id, p.id))!.port }]));
        nodes.push(new BrokerNode({
          ...plan, clusterUrls: [`http://127.0.0.1:${etcdLinks.get(plan.id)!.port}`], peerAddresses,
          minInsyncReplicas: options.minInsyncReplicas ?? 2, brokerLimits: { ...FAULT_BROKER_LIMITS, ...options.brokerLimits },
          env: { RUNNEL_REQUIRE_NATIVE_UWS: '1' },
        }));
      }
      const harness = new ClusterHarness(rootDir, etcd, nodes, links, etcdLinks, limits, log);
      await Promise.all(nodes.map((n) => n.start()));
      await harness.waitFormed();
      log(`cluster: etcd ${etcd.url}; ${nodes.map((n) => `node ${n.id} ${n.url} (replication ${n.replicationPort})`).join(', ')}; data ${rootDir}`);
      return harness;
    } catch (error) {
      await Promise.all(nodes.map((n) => n.kill()));
      await etcd?.stop();
      for (const p of [...links.values(), ...etcdLinks.values()]) await p.close();
      await rm(rootDir, { recursive: true, force: true });
      throw error;
    }
  }

  node(id: number): BrokerNode {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  get ids(): number[] {
    return this.nodes.map((n) => n.id);
  }

  get wsUrls(): string[] {
    return this.nodes.map((n) => n.wsUrl);
  }

  get httpUrls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** The proxy of the connections `from` opens to `to`'s replication port. */
  link(from: number, to: number): FaultProxy {
    const proxy = this.#links.get(linkKey(from, to));
    if (!proxy) throw new Error(`no link ${linkKey(from, to)}`);
    return proxy;
  }

  /** The proxy of `id`'s etcd connection. */
  etcdLink(id: number): FaultProxy {
    const proxy = this.#etcdLinks.get(id);
    if (!proxy) throw new Error(`no etcd link for ${id}`);
    return proxy;
  }

  /** Every broker's log tail and etcd's, for failure messages. */
  logs(): string {
    return [...this.nodes.map((n) => n.log()), `--- etcd log (tail) ---\n${this.etcd.log.slice(-3000)}`].join('\n');
  }

  // ---- observations ----

  /**
   * The cluster as a broker that is up, not paused and connected to etcd sees
   * it (`prefer` first, e.g. a broker not involved in the current fault).
   */
  async view(prefer: number[] = [], topic?: string): Promise<ClusterView> {
    const order = [...prefer, ...this.ids.filter((id) => !prefer.includes(id))];
    let fallback: ClusterView | undefined;
    let last: unknown;
    for (const id of order) {
      const node = this.node(id);
      if (!node.isRunning || node.isPaused) continue;
      try {
        const view = await node.clusterView(this.#limits.viewRequestTimeoutMs, topic);
        if (view.etcdConnected) return view;
        fallback ??= view;
      } catch (error) {
        last = error;
      }
    }
    if (fallback) return fallback;
    throw new Error(`no broker answered GET /v1/cluster${last instanceof Error ? `: ${last.message}` : ''}`);
  }

  /** Partitions of `topic` as the view shows them. */
  async partitions(topic: string, prefer: number[] = []): Promise<ClusterPartitionView[]> {
    return (await this.view(prefer, topic)).partitions.filter((p) => p.topic === topic).sort((a, b) => a.partition - b.partition);
  }

  async leaderOf(topic: string, partition: number): Promise<number> {
    const p = (await this.partitions(topic)).find((x) => x.partition === partition);
    if (!p) throw new Error(`no partition ${topic}/${partition} in the cluster view`);
    return p.leader;
  }

  async controller(): Promise<number | null> {
    return (await this.view()).controller;
  }

  /** Why `view` does not show a formed cluster (no controller, a running broker unregistered), or null. */
  private formedProblem(view: ClusterView): string | null {
    const registered = new Set(view.brokers.map((b) => b.id));
    const missing = this.nodes.filter((n) => n.isRunning && !registered.has(n.id)).map((n) => n.id);
    if (view.controller === null) return 'no controller';
    if (missing.length > 0) return `brokers ${missing.join(', ')} not registered`;
    return null;
  }

  /** Resolves once a controller is elected and every running broker is registered. */
  async waitFormed(timeoutMs = this.#limits.healthyTimeoutMs): Promise<ClusterView> {
    return this.poll('the cluster to form', timeoutMs, async () => {
      const view = await this.view();
      const problem = this.formedProblem(view);
      return problem ? { done: false, why: problem } : { done: true, value: view };
    });
  }

  /**
   * Resolves once every broker runs and every partition of `topic` has a
   * leader whose own view says so, an ISR of all its replicas and (with
   * `caughtUp`) every follower at the leader's log end and the high watermark
   * there too.
   */
  async waitHealthy(topic: string, options: { caughtUp?: boolean; timeoutMs?: number } = {}): Promise<ClusterPartitionView[]> {
    return this.poll(`partitions of ${topic} healthy${options.caughtUp ? ' and caught up' : ''}`, options.timeoutMs ?? this.#limits.healthyTimeoutMs, async () => {
      if (this.nodes.some((n) => !n.isRunning || n.isPaused)) return { done: false, why: 'a broker is down' };
      const view = await this.view([], topic);
      const problem = this.formedProblem(view);
      if (problem) return { done: false, why: problem };
      const out: ClusterPartitionView[] = [];
      for (const p of view.partitions.filter((x) => x.topic === topic)) {
        const where = `${p.topic}/${p.partition}`;
        if (p.leader < 0) return { done: false, why: `${where} offline` };
        if (p.isr.length !== p.replicas.length) return { done: false, why: `${where} ISR [${p.isr}] of replicas [${p.replicas}]` };
        const own = (await this.node(p.leader).clusterView(this.#limits.viewRequestTimeoutMs, topic)).partitions.find((x) => x.topic === p.topic && x.partition === p.partition);
        if (!own || own.role !== 'leader' || own.leaderEpoch !== p.leaderEpoch) return { done: false, why: `${where}: broker ${p.leader} does not lead epoch ${p.leaderEpoch} yet` };
        if (options.caughtUp) {
          if (own.highWatermark !== own.logEndOffset) return { done: false, why: `${where}: high watermark ${own.highWatermark} below log end ${own.logEndOffset}` };
          const behind = (own.followers ?? []).filter((f) => f.lagRecords > 0 || !f.inIsr);
          if (behind.length > 0) return { done: false, why: `${where}: followers ${behind.map((f) => `${f.brokerId} (${f.lagRecords} behind)`).join(', ')}` };
        }
        out.push(own);
      }
      if (out.length === 0) return { done: false, why: `no partitions of ${topic} in the view` };
      return { done: true, value: out.sort((a, b) => a.partition - b.partition) };
    });
  }

  private async poll<T>(what: string, timeoutMs: number, probe: () => Promise<{ done: true; value: T } | { done: false; why: string }>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let why = '';
    for (;;) {
      try {
        const r = await probe();
        if (r.done) return r.value;
        why = r.why;
      } catch (error) {
        why = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${why}\n${this.logs()}`);
      await sleep(this.#limits.pollIntervalMs);
    }
  }

  /** The topic id (`GET /v1/topics/:topic` of any running broker): partition dirs are keyed by it. */
  async topicId(topic: string): Promise<string> {
    for (const node of this.nodes) {
      if (!node.isRunning || node.isPaused) continue;
      const response = await fetch(`${node.url}/v1/topics/${encodeURIComponent(topic)}`, { signal: AbortSignal.timeout(this.#limits.viewRequestTimeoutMs) }).catch(() => undefined);
      if (response?.ok) return ((await response.json()) as { topic: { topicId: string } }).topic.topicId;
    }
    throw new Error(`no broker described topic ${topic}`);
  }

  /** Segment files of one replica, oldest first. */
  async segmentFiles(id: number, topicId: string, partition: number): Promise<string[]> {
    return segmentFiles(join(this.node(id).dataDir, 'topics', topicId, String(partition)));
  }

  /** The batches a replica stores (segment-files.ts), read while the broker is idle, after quiescing. */
  async readReplica(id: number, topicId: string, partition: number): Promise<StoredBatch[]> {
    return readStoredBatches(await this.segmentFiles(id, topicId, partition));
  }

  // ---- faults ----

  async killBroker(id: number): Promise<void> {
    this.log(`fault: SIGKILL node ${id}`);
    await this.node(id).kill('SIGKILL');
  }

  async startBroker(id: number): Promise<void> {
    this.log(`heal: start node ${id}`);
    await this.node(id).start();
  }

  pauseBroker(id: number): void {
    this.log(`fault: SIGSTOP node ${id}`);
    this.node(id).pause();
  }

  resumeBroker(id: number): void {
    this.log(`heal: SIGCONT node ${id}`);
    this.node(id).resume();
  }

  /** Cuts both directions between `a` and `b` (their replication links), as a network partition would. */
  cutLinks(a: number, b: number, mode: LinkMode): void {
    this.log(`fault: ${mode} ${a}<->${b}`);
    for (const proxy of [this.link(a, b), this.link(b, a)]) mode === 'blackhole' ? proxy.blackhole() : proxy.reset();
  }

  /** Cuts `id` from every other broker (both directions); it keeps etcd and its clients. */
  cutFromPeers(id: number, mode: LinkMode): void {
    for (const other of this.ids) if (other !== id) this.cutLinks(id, other, mode);
  }

  /** Cuts `id`'s etcd connection; it keeps its peers and its clients. */
  cutFromEtcd(id: number, mode: LinkMode): void {
    this.log(`fault: ${mode} ${id}->etcd`);
    const proxy = this.etcdLink(id);
    mode === 'blackhole' ? proxy.blackhole() : proxy.reset();
  }

  /** Every link back to pass. */
  healNetwork(): void {
    this.log('heal: network');
    for (const proxy of [...this.#links.values(), ...this.#etcdLinks.values()]) proxy.heal();
  }

  async killEtcd(): Promise<void> {
    this.log('fault: SIGKILL etcd');
    await this.etcd.kill('SIGKILL');
  }

  async restartEtcd(): Promise<void> {
    this.log('heal: start etcd');
    await this.etcd.restart();
  }

  /**
   * Truncates the tail segment of a stopped broker's replica at a byte within
   * the last `tailCorruptionWindowBytes` (`pick` in [0, 1) chooses where):
   * a torn write, as after a power loss below what was fsynced.
   */
  async truncateTail(id: number, topicId: string, partition: number, pick: number): Promise<string> {
    const file = await this.tailSegment(id, topicId, partition);
    if (!file) return `node ${id} has no segment for ${topicId}/${partition}`;
    const { from, to } = await truncateTail(file, pick, this.#limits.tailCorruptionWindowBytes);
    const what = `truncated ${file.slice(this.rootDir.length + 1)} from ${from} to ${to} bytes`;
    this.log(`fault: ${what}`);
    return what;
  }

  /** Flips one bit of the tail segment of a stopped broker's replica, within its last `tailCorruptionWindowBytes`. */
  async flipTailBit(id: number, topicId: string, partition: number, pick: number): Promise<string> {
    const file = await this.tailSegment(id, topicId, partition);
    if (!file) return `node ${id} has no segment for ${topicId}/${partition}`;
    const { position, bit, size } = await flipTailBit(file, pick, this.#limits.tailCorruptionWindowBytes);
    const what = `flipped bit ${bit} of byte ${position}/${size} of ${file.slice(this.rootDir.length + 1)}`;
    this.log(`fault: ${what}`);
    return what;
  }

  private async tailSegment(id: number, topicId: string, partition: number): Promise<string | undefined> {
    if (this.node(id).isRunning) throw new Error(`node ${id} is running: stop it before corrupting its files`);
    return tailSegment(await this.segmentFiles(id, topicId, partition));
  }

  /** SIGKILL of every broker and etcd at once (a power loss). */
  async killAll(): Promise<void> {
    this.log('fault: SIGKILL every broker and etcd');
    await Promise.all([...this.nodes.map((n) => n.kill('SIGKILL')), this.etcd.kill('SIGKILL')]);
  }

  async startAll(): Promise<void> {
    this.log('heal: start etcd and every broker');
    if (!this.etcd.isRunning) await this.etcd.restart();
    await Promise.all(this.nodes.filter((n) => !n.isRunning).map((n) => n.start()));
  }

  /** Stops every broker gracefully, then etcd and the proxies; removes the data. */
  async stop(): Promise<void> {
    for (const node of this.nodes) if (node.isPaused) node.resume();
    this.healNetwork();
    await Promise.all(this.nodes.map((n) => n.stop()));
    await this.etcd.stop();
    for (const proxy of [...this.#links.values(), ...this.#etcdLinks.values()]) await proxy.close();
    await rm(this.rootDir, { recursive: true, force: true });
  }
}
