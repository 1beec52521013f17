/**
 * The topics of a cluster broker (`TopicSource` over etcd): every topic in
 * the cluster store, each partition a `ClusterPartition` — with a local
 * replica (a `PartitionLog` in `<data>/topics/<topicId>/<p>/`) when this
 * broker is in the partition's replica set, read through the leader when
 * it is not. Leadership changes from etcd are passed to the partitions in
 * the order etcd reports them.
 *
 * Invariants: a topic is served only once its metadata is in etcd (creation
 * is a transaction there; the local replicas open after it); a deleted
 * topic's partitions close before its directory is removed; local changes
 * are serialised (one sync at a time), so a create racing a watch event opens
 * each partition once.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RunnelError } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import { PartitionLog } from '../log/partition-log.ts';
import { DEFAULT_RETENTION_BYTES, DEFAULT_RETENTION_MS, type TopicInfo, type TopicSpec } from '../metadata/topic-info.ts';
import { assertTopicName } from '../metadata/topic-name.ts';
import type { ServedTopic, TopicSource, TopicSourceHooks } from '../broker/topic-source.ts';
import type { PartitionLeadership, VersionedLeadership } from '../cluster/cluster-state.ts';
import { assignReplicas, defaultMinInsyncReplicas, defaultReplicationFactor } from '../cluster/replica-assignment.ts';
import { ClusterPartition, type ClusterPartitionLimits, type LeaderForwarder, type LocalReplica } from './cluster-partition.ts';

/** What the registry needs of the cluster store (server/src/cluster/cluster-store.ts). */
export interface TopicStore {
  /** The watch-fed cache (may lag etcd by a few ms). */
  topics(): TopicInfo[];
  /** A linearizable read of every topic in etcd. */
  load(): Promise<TopicInfo[]>;
  leadership(topicId: string, partition: number): VersionedLeadership | undefined;
  liveBrokerIds(): number[];
  createTopicWithAssignment(info: TopicInfo, assignment: number[][]): Promise<void>;
  deleteTopic(name: string, topicId: string): Promise<void>;
}

export interface ReplicatedRegistryOptions {
  brokerId: number;
  dataDir: string;
  limits: Limits;
  flushIntervalMs: number;
  store: TopicStore;
  forwarder: LeaderForwarder;
  /** Builds this broker's replica of a partition over its opened log (server/src/replication/replica-partition.ts). */
  replica: (topic: TopicInfo, partition: number, log: PartitionLog) => LocalReplica;
  partitionLimits: ClusterPartitionLimits;
  defaultReplicationFactor?: number;
  minInsyncReplicas?: number;
  hooks: TopicSourceHooks;
  /** Called when a partition with a local replica opens or closes (the replication server registers it). */
  onReplicaOpen?: (topic: TopicInfo, partition: number, replica: LocalReplica) => void;
  onReplicaClose?: (topic: TopicInfo, partition: number) => void;
  warn?: (line: string) => void;
}

interface ServedClusterTopic extends ServedTopic {
  partitions: ClusterPartition[];
  logs: (PartitionLog | undefined)[];
}

/** Longest wait for the etcd watch to bring a topic this broker just created or read (it takes milliseconds; bounded for a stalled watch). */
const TOPIC_CACHE_WAIT_MS = 5000;

const OFFLINE: PartitionLeadership = { leader: -1, leaderEpoch: 0, isr: [], replicas: [] };

export class ReplicatedRegistry implements TopicSource {
  private readonly topics = new Map<string, ServedClusterTopic>();
  private readonly byId = new Map<string, ServedClusterTopic>();
  private syncing: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(private readonly options: ReplicatedRegistryOptions) {}

  static async open(options: ReplicatedRegistryOptions): Promise<ReplicatedRegistry> {
    const registry = new ReplicatedRegistry(options);
    await registry.sync();
    await registry.removeOrphanDirs();
    return registry;
  }

  get(name: string): ServedClusterTopic | undefined {
    return this.topics.get(name);
  }

  list(): TopicInfo[] {
    return [...this.topics.values()].map((t) => t.info).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  openTopics(): ServedClusterTopic[] {
    return [...this.topics.values()];
  }

  /**
   * Broker ids registered now (`live`), and every broker the cluster has shown (`known`): those and each
   * partition's replicas. A broker that missed its lease for a moment is still known (ensureOffsetsTopic).
   */
  brokerIds(): { live: number[]; known: number[] } {
    const live = this.options.store.liveBrokerIds();
    const known = new Set(live);
    for (const topic of this.topics.values()) for (const p of topic.partitions) for (const id of p.state().replicas) known.add(id);
    return { live, known: [...known].sort((a, b) => a - b) };
  }

  /** The partition of a topic id (forwarded requests name topics by id). */
  partitionById(topicId: string, partition: number): ClusterPartition | undefined {
    return this.byId.get(topicId)?.partitions[partition];
  }

  async create(spec: TopicSpec): Promise<TopicInfo> {
    const { limits } = this.options;
    assertTopicName(spec.name, limits.maxTopicNameLength);
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > limits.maxPartitionsPerTopic) {
      throw new RunnelError('INVALID_PARTITIONS', `partitions must be an integer in 1..${limits.maxPartitionsPerTopic}, got ${spec.partitions}`);
    }
    for (const [field, v] of [['retentionMs', spec.retentionMs], ['retentionBytes', spec.retentionBytes]] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || (v < 0 && v !== -1))) throw new RunnelError('INVALID_REQUEST', `${field} must be -1 (unlimited) or a non-negative integer`);
    }
    if (this.options.store.topics().some((t) => t.name === spec.name)) throw new RunnelError('TOPIC_ALREADY_EXISTS', `topic ${spec.name} already exists`);
    if (this.options.store.topics().length >= limits.maxTopics) throw new RunnelError('LIMIT_EXCEEDED', `the cluster already holds maxTopics (${limits.maxTopics}) topics`);
    const brokers = this.options.store.liveBrokerIds();
    const rf = spec.replicationFactor !== undefined && spec.replicationFactor !== -1
      ? spec.replicationFactor
      : Math.min(this.options.defaultReplicationFactor ?? defaultReplicationFactor(brokers.length), brokers.length);
    const minIsr = spec.minInsyncReplicas !== undefined && spec.minInsyncReplicas !== -1
      ? spec.minInsyncReplicas
      : Math.min(this.options.minInsyncReplicas ?? defaultMinInsyncReplicas(rf), rf);
    if (!Number.isInteger(minIsr) || minIsr < 1 || minIsr > rf) {
      throw new RunnelError('INVALID_REPLICATION_FACTOR', `minInsyncReplicas must be an integer in 1..${rf} (the replication factor), got ${minIsr}`);
    }
    const assignment = assignReplicas({ partitions: spec.partitions, replicationFactor: rf, brokerIds: brokers, startIndex: randomInt(1 << 30), replicaShift: randomInt(1 << 30) });
    const info: TopicInfo = {
      name: spec.name, topicId: randomBytes(16).toString('base64url'), partitions: spec.partitions, replicationFactor: rf, minInsyncReplicas: minIsr,
      retentionMs: spec.retentionMs ?? DEFAULT_RETENTION_MS, retentionBytes: spec.retentionBytes ?? DEFAULT_RETENTION_BYTES, createdAtMs: Date.now(),
    };
    try {
      await this.options.store.createTopicWithAssignment(info, assignment);
    } catch (e) {
      // A racing broker's topic is then served here before the caller looks again.
      if (e instanceof RunnelError && e.errorName === 'TOPIC_ALREADY_EXISTS') await this.refresh(spec.name);
      throw e;
    }
    // Read our own write: served here before the creation is answered.
    await this.waitForCache(info.topicId);
    await this.sync();
    return info;
  }

  async delete(name: string): Promise<TopicInfo> {
    const info = this.options.store.topics().find((t) => t.name === name) ?? this.topics.get(name)?.info;
    if (!info) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
    await this.options.store.deleteTopic(name, info.topicId);
    await this.sync();
    return info;
  }

  /**
   * A topic asked for by name that this broker does not serve (yet): if etcd has it (a linearizable read),
   * wait for the watch to bring it and open it, so a topic created through another broker a moment ago is
   * found, not refused UNKNOWN_TOPIC_OR_PARTITION.
   */
  async refresh(name: string): Promise<void> {
    if (this.topics.has(name)) return;
    const stored = (await this.options.store.load()).find((t) => t.name === name);
    if (!stored) return;
    await this.waitForCache(stored.topicId);
    await this.sync();
  }

  /** Until the watch-fed cache holds topic `topicId` (bounded: TOPIC_CACHE_WAIT_MS). */
  private async waitForCache(topicId: string): Promise<void> {
    const deadline = Date.now() + TOPIC_CACHE_WAIT_MS;
    while (!this.options.store.topics().some((t) => t.topicId === topicId) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The store's topics changed (watch, resync): open what is new, close what is gone. Serialised. */
  sync(): Promise<void> {
    const run = this.syncing.then(() => this.syncNow());
    this.syncing = run.catch((e: unknown) => this.options.warn?.(`runnel: cluster: topic sync failed: ${(e as Error).message}`));
    return run;
  }

  /** A partition's leadership changed in etcd. */
  leadershipChanged(l: VersionedLeadership): void {
    const p = this.byId.get(l.topicId)?.partitions[l.partition];
    if (p) void p.applyLeadership(l).catch((e: unknown) => this.options.warn?.(`runnel: cluster: ${p.topic.name}/${l.partition}: leadership epoch ${l.leaderEpoch} not applied: ${(e as Error).message}`));
  }

  async enforceRetention(nowMs: number): Promise<void> {
    for (const topic of [...this.topics.values()]) {
      for (const log of topic.logs) {
        await log?.enforceRetention({ retentionMs: topic.info.retentionMs, retentionBytes: topic.info.retentionBytes, nowMs }).catch(() => undefined);
      }
    }
  }

  endWaits(): void {
    for (const topic of this.topics.values()) for (const p of topic.partitions) p.endWaits();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.syncing.catch(() => undefined);
    for (const topic of this.topics.values()) await Promise.allSettled(topic.partitions.map((p) => p.close()));
    this.topics.clear();
    this.byId.clear();
  }

  private async syncNow(): Promise<void> {
    if (this.closed) return;
    const wanted = new Map(this.options.store.topics().map((t) => [t.topicId, t]));
    let changed = false;
    for (const topic of [...this.byId.values()]) {
      if (!wanted.has(topic.info.topicId)) {
        await this.closeTopic(topic);
        changed = true;
      }
    }
    for (const info of wanted.values()) {
      if (this.byId.has(info.topicId)) continue;
      const stale = this.topics.get(info.name);
      if (stale) await this.closeTopic(stale); // the name was re-created with a new id
      await this.openTopic(info);
      changed = true;
    }
    if (changed) this.options.hooks.onTopicsChanged?.();
  }

  private async openTopic(info: TopicInfo): Promise<void> {
    const { brokerId, store } = this.options;
    const logs: (PartitionLog | undefined)[] = [];
    const partitions: ClusterPartition[] = [];
    try {
      for (let p = 0; p < info.partitions; p++) {
        const leadership = store.leadership(info.topicId, p);
        const local = leadership?.replicas.includes(brokerId) ?? false;
        let log: PartitionLog | undefined;
        let replica: LocalReplica | undefined;
        if (local) {
          const dir = join(this.options.dataDir, 'topics', info.topicId, String(p));
          await mkdir(dir, { recursive: true });
          log = await PartitionLog.open(dir, {
            limits: this.options.limits, flushIntervalMs: this.options.flushIntervalMs, retentionMs: info.retentionMs, retentionBytes: info.retentionBytes, isReplicated: true,
          });
          replica = this.options.replica(info, p, log);
        }
        logs.push(log);
        const partition = new ClusterPartition(info, p, brokerId, replica, this.options.forwarder, this.options.partitionLimits, leadership ?? OFFLINE);
        partitions.push(partition);
        if (replica) this.options.onReplicaOpen?.(info, p, replica);
        if (leadership) await partition.applyLeadership(leadership);
      }
    } catch (e) {
      await Promise.allSettled(partitions.map((p) => p.close()));
      await Promise.allSettled(logs.map((l) => l?.close()));
      throw new RunnelError('KAFKA_STORAGE_ERROR', `could not open replicas of topic ${info.name}: ${(e as Error).message}`, { cause: e });
    }
    const topic: ServedClusterTopic = { info, partitions, logs };
    this.topics.set(info.name, topic);
    this.byId.set(info.topicId, topic);
    // A change the watch brought while the later partitions opened found no topic here (leadershipChanged): each
    // partition takes the cache's leadership again (applying one is idempotent; an older one is ignored).
    for (const [p, partition] of partitions.entries()) {
      const now = store.leadership(info.topicId, p);
      if (now) await partition.applyLeadership(now);
    }
    for (const p of partitions) this.options.hooks.onPartitionOpen?.(info, p);
  }

  private async closeTopic(topic: ServedClusterTopic): Promise<void> {
    this.topics.delete(topic.info.name);
    this.byId.delete(topic.info.topicId);
    this.options.hooks.onTopicClose?.(topic);
    for (let p = 0; p < topic.partitions.length; p++) if (topic.logs[p]) this.options.onReplicaClose?.(topic.info, p);
    await Promise.allSettled(topic.partitions.map((p) => p.close()));
    await rm(join(this.options.dataDir, 'topics', topic.info.topicId), { recursive: true, force: true });
  }

  /** Replica directories of topics the cluster no longer has (deleted while this broker was down). */
  private async removeOrphanDirs(): Promise<void> {
    const root = join(this.options.dataDir, 'topics');
    const ids = new Set(this.options.store.topics().map((t) => t.topicId));
    for (const entry of await readdir(root).catch(() => [] as string[])) if (!ids.has(entry)) await rm(join(root, entry), { recursive: true, force: true });
  }
}
