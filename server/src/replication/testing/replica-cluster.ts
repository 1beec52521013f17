/**
 * A three-replica partition in one process for tests (not a fake: real
 * ReplicaPartitions on real logs in a tmp dir, each behind its own
 * ReplicationServer and PeerLinks over real TCP on 127.0.0.1), with an
 * in-memory IsrStore that does compare-and-swap, plays etcd's watch (every
 * change is applied to every live replica, asynchronously) and lets tests act
 * as the controller (`elect`). Nodes stop and start like broker processes
 * (their replica, links and port go away; the data directory stays).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch, RunnelError, validateRecords, type BatchHeader } from '@runnel/client/codec';
import type { AlterIsrResult, IsrStore, PeerDirectory, VersionedLeadership } from '../../cluster/cluster-state.ts';
import { PartitionLog, type LogOpenOptions } from '../../log/partition-log.ts';
import type { TopicInfo } from '../../metadata/topic-info.ts';
import type { AppendResult } from '../../partition/partition.ts';
import type { ReplicationLimits } from '../limits.ts';
import { PeerLinks } from '../peer-links.ts';
import { ReplicaPartition } from '../replica-partition.ts';
import { ReplicationServer } from '../replication-server.ts';
import { TEST_LINK_KEY } from './link-key.ts';

export const topic: TopicInfo = { name: 'orders', topicId: 'tid-orders', partitions: 1, replicationFactor: 3, retentionMs: -1, retentionBytes: -1, createdAtMs: 0 };
/** Fast test timings (lag 1.5 s, ticks 50 ms). */
export const testLimits: Partial<ReplicationLimits> = {
  replicaLagTimeMs: 1500, replicationTickMs: 50, replicaFetchMaxWaitMs: 300, replicaFetchTimeoutMs: 3000, replicaFetchBackoffMs: 30,
  reconnectBackoffMs: 20, reconnectBackoffMaxMs: 200, connectTimeoutMs: 1000, replicationTimeoutMs: 15_000, highWatermarkCheckpointMs: 200, alterIsrRetryMs: 100,
};
export const quiet = () => {};


/** etcd stand-in for one partition: compare-and-swap on a revision, and a watch that applies each change to every live replica. */
export class MemoryIsrStore implements IsrStore {
  current: VersionedLeadership;
  #revision = 100;
  isUnavailable = false;
  readonly changes: VersionedLeadership[] = [];
  constructor(readonly cluster: Cluster, leader: number, isr: number[], replicas: number[]) {
    this.current = { topicId: topic.topicId, partition: 0, leader, leaderEpoch: 1, isr, replicas, revision: String(this.#revision) };
  }

  /** While true, writes reach no replica by the watch (a lost watch event); readLeadership still sees them. */
  isWatchLost = false;

  async readLeadership(): Promise<VersionedLeadership | undefined> {
    await new Promise((r) => setImmediate(r));
    if (this.isUnavailable) throw new RunnelError('CLUSTER_UNAVAILABLE', 'the store is unavailable');
    return this.current;
  }

  /** The controller: a new revision of the same leadership (as when it drops a dead follower from the ISR). */
  touch(): VersionedLeadership {
    this.#write({ ...this.current });
    return this.current;
  }

  async alterIsr(expected: VersionedLeadership, isr: number[]): Promise<AlterIsrResult> {
    // A round trip, as etcd's: never answered within the caller's microtasks.
    await new Promise((r) => setImmediate(r));
    if (this.isUnavailable) return { ok: false, reason: 'unavailable' };
    if (expected.revision !== this.current.revision) return { ok: false, reason: 'fenced' };
    this.#write({ ...this.current, isr: [...isr] });
    return { ok: true, leadership: this.current };
  }

  /** The controller: a new leader, epoch + 1. */
  elect(leader: number, isr: number[]): VersionedLeadership {
    this.#write({ ...this.current, leader, isr, leaderEpoch: this.current.leaderEpoch + 1 });
    return this.current;
  }

  #write(l: Omit<VersionedLeadership, 'revision'>): void {
    this.current = { ...l, revision: String(++this.#revision) };
    this.changes.push(this.current);
    const published = this.current;
    if (this.isWatchLost) return;
    // The watch: delivered asynchronously, as etcd's would be.
    setImmediate(() => {
      for (const n of this.cluster.nodes.values()) n.replica?.applyLeadership(published).catch(quiet);
    });
  }
}

export class Node {
  server: ReplicationServer | null = null;
  links: PeerLinks | null = null;
  replica: ReplicaPartition | null = null;
  port = 0;
  constructor(readonly id: number, readonly dir: string, readonly cluster: Cluster, readonly limits: Partial<ReplicationLimits>) {}

  get log(): PartitionLog {
    return this.replica!.log;
  }

  async start(): Promise<void> {
    const limits = this.limits;
    this.server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: this.id, port: this.port, limits, warn: quiet });
    this.port = (await this.server.listen()).port;
    this.links = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: this.id, directory: this.cluster.directory, limits });
    const log = await PartitionLog.open(this.dir, { isReplicated: true, ...this.cluster.logOptions });
    this.replica = new ReplicaPartition({
      topic, partition: 0, minInsyncReplicas: 2, log, brokerId: this.id, links: this.links, isrStore: this.cluster.store, server: this.server, limits,
      warn: (m) => this.cluster.warnings.push(`${this.id}: ${m}`),
    });
    await this.replica.applyLeadership(this.cluster.store.current);
  }

  /** As a dead broker: its replica, its links and its port go away. */
  async stop(): Promise<void> {
    const { replica, links, server } = this;
    this.replica = null;
    this.links = null;
    this.server = null;
    await server?.close();
    links?.close();
    await replica?.close();
  }
}

export class Cluster {
  readonly nodes = new Map<number, Node>();
  readonly warnings: string[] = [];
  store!: MemoryIsrStore;
  logOptions: LogOpenOptions = {};
  root = '';
  readonly directory: PeerDirectory = {
    replicationAddress: (id) => {
      const n = this.nodes.get(id);
      return n?.server ? { host: '127.0.0.1', port: n.port } : n?.port ? { host: '127.0.0.1', port: n.port } : undefined;
    },
  };

  static async start(ids = [1, 2, 3], overrides: Partial<ReplicationLimits> = {}, logOptions: LogOpenOptions = {}): Promise<Cluster> {
    const c = new Cluster();
    c.logOptions = logOptions;
    const root = await mkdtemp(join(tmpdir(), 'runnel-replication-'));
    c.root = root;
    c.store = new MemoryIsrStore(c, ids[0], [...ids], [...ids]);
    for (const id of ids) c.nodes.set(id, new Node(id, join(root, `broker-${id}`), c, { ...testLimits, ...overrides }));
    for (const n of c.nodes.values()) await n.start();
    return c;
  }

  node(id: number): Node {
    return this.nodes.get(id)!;
  }

  /** Stops every node; the data directories stay. */
  async stopAll(): Promise<void> {
    for (const n of this.nodes.values()) await n.stop();
  }

  /** Stops every node and removes the data directories. */
  async close(): Promise<void> {
    for (const n of this.nodes.values()) await n.stop();
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}

export function batch(records: number, opts: { producerId?: number; producerEpoch?: number; baseSequence?: number; tag?: number } = {}): { bytes: Uint8Array; header: BatchHeader } {
  const value = new Uint8Array(100).fill(opts.tag ?? 1);
  const bytes = encodeRecordBatch({
    producerId: opts.producerId, producerEpoch: opts.producerEpoch, baseSequence: opts.baseSequence,
    records: Array.from({ length: records }, (_, i) => ({ value, key: new Uint8Array([i]), timestampMs: 1_700_000_000_000 })),
  });
  const header = validateRecords(bytes);
  assert.ok(header.ok);
  return { bytes, header: header.value };
}

export function produce(node: Node, records: number, acks: -1 | 0 | 1 = -1, opts: Parameters<typeof batch>[1] = {}): Promise<AppendResult> {
  const b = batch(records, opts);
  return node.replica!.append(b.bytes, { acks, header: b.header });
}

/** Polls `check` (a state of other processes' making) every 10 ms until true or the deadline. */
export async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every stored byte of the log (up to its end, not just the high watermark). */
export async function logBytes(log: PartitionLog): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for (let offset = log.logStartOffset; offset < log.logEndOffset;) {
    const r = await log.read(offset, 1 << 20, { maxOffset: log.logEndOffset });
    if (r.batches.length === 0) break;
    parts.push(r.batches);
    offset = r.nextOffset;
  }
  return Buffer.concat(parts);
}

export async function segmentFiles(dir: string): Promise<Buffer> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
  return Buffer.concat(await Promise.all(names.map((n) => readFile(join(dir, n)))));
}

export const isCode = (name: string) => (e: unknown) => e instanceof RunnelError && e.errorName === name;

