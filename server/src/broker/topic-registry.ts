/**
 * Topic registry: the topics of the `MetadataStore` and the open
 * `LocalPartition` of each of their partitions (single node: this broker
 * leads every partition).
 *
 * Layout: partition `p` of a topic lives in `<data>/topics/<topicId>/<p>/`.
 * Keying the directory by the topic id (minted at creation, KIP-516) means a
 * deleted and re-created topic can never see its predecessor's data, and
 * deletion is a metadata write followed by removing one directory.
 * Invariants: metadata is durable before a topic is visible or reported
 * created; a deleted topic's metadata is gone before its files are removed;
 * mutations are serialised (one at a time).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RunnelError } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import { PartitionLog } from '../log/partition-log.ts';
import { FileMetadataStore } from '../metadata/file-metadata-store.ts';
import type { MetadataStore } from '../metadata/metadata-store.ts';
import { DEFAULT_RETENTION_BYTES, DEFAULT_RETENTION_MS, type TopicInfo, type TopicSpec } from '../metadata/topic-info.ts';
import { assertTopicName } from '../metadata/topic-name.ts';
import { LocalPartition } from '../partition/local-partition.ts';
import type { ServedTopic, TopicSource } from './topic-source.ts';

export { DEFAULT_RETENTION_BYTES, DEFAULT_RETENTION_MS, type TopicInfo, type TopicSpec };

export interface OpenTopic extends ServedTopic {
  partitions: LocalPartition[];
  /** The log behind each partition (admin, tests). */
  logs: PartitionLog[];
}

export interface TopicRegistryOptions {
  dataDir: string;
  limits: Limits;
  flushIntervalMs: number;
  brokerId?: number;
  /** Default: the file store under `<dataDir>/meta`. */
  metadata?: MetadataStore;
  /** Called for each partition right after it opens (fan-out attaches here). */
  onPartitionOpen?: (topic: TopicInfo, partition: LocalPartition) => void;
  /** Called before a topic's partitions close on deletion (fan-out detaches here). */
  onTopicClose?: (topic: OpenTopic) => void;
}

export class TopicRegistry implements TopicSource {
  private readonly topics = new Map<string, OpenTopic>();
  private mutation: Promise<unknown> = Promise.resolve();

  private constructor(private readonly options: TopicRegistryOptions, private readonly metadata: MetadataStore) {}

  static async open(options: TopicRegistryOptions): Promise<TopicRegistry> {
    const registry = new TopicRegistry(options, options.metadata ?? (await FileMetadataStore.open(options.dataDir)));
    for (const info of await registry.metadata.load()) registry.topics.set(info.name, await registry.openTopic(info));
    await registry.removeOrphanDirs();
    return registry;
  }

  private topicDir(topicId: string): string {
    return join(this.options.dataDir, 'topics', topicId);
  }

  get(name: string): OpenTopic | undefined {
    return this.topics.get(name);
  }

  list(): TopicInfo[] {
    return [...this.topics.values()].map((t) => t.info).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Every open topic (attach watchers, retention). */
  openTopics(): OpenTopic[] {
    return [...this.topics.values()];
  }

  /** Creates a topic; TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, LIMIT_EXCEEDED. */
  create(spec: TopicSpec): Promise<TopicInfo> {
    return this.serialise(async () => {
      this.validate(spec);
      if (this.topics.has(spec.name)) throw new RunnelError('TOPIC_ALREADY_EXISTS', `topic ${spec.name} already exists`);
      const info: TopicInfo = {
        name: spec.name, topicId: randomBytes(16).toString('base64url'), partitions: spec.partitions,
        replicationFactor: 1, retentionMs: spec.retentionMs ?? DEFAULT_RETENTION_MS,
        retentionBytes: spec.retentionBytes ?? DEFAULT_RETENTION_BYTES, createdAtMs: Date.now(),
      };
      const topic = await this.openTopic(info, false);
      try {
        await this.metadata.createTopic(info);
      } catch (e) {
        await Promise.allSettled(topic.partitions.map((p) => p.close()));
        await rm(this.topicDir(info.topicId), { recursive: true, force: true });
        throw e;
      }
      this.topics.set(info.name, topic);
      this.announce(topic);
      return info;
    });
  }

  /** Deletes a topic and its data; UNKNOWN_TOPIC_OR_PARTITION. Returns the deleted topic's info. */
  delete(name: string): Promise<TopicInfo> {
    return this.serialise(async () => {
      const topic = this.topics.get(name);
      if (!topic) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
      await this.metadata.deleteTopic(name, topic.info.topicId);
      this.topics.delete(name);
      this.options.onTopicClose?.(topic);
      await Promise.allSettled(topic.partitions.map((p) => p.close()));
      await rm(this.topicDir(topic.info.topicId), { recursive: true, force: true });
      return topic.info;
    });
  }

  /** Enforces retention (time and bytes) on every partition. */
  async enforceRetention(nowMs: number): Promise<void> {
    for (const topic of [...this.topics.values()]) {
      for (const log of topic.logs) {
        await log.enforceRetention({ retentionMs: topic.info.retentionMs, retentionBytes: topic.info.retentionBytes, nowMs }).catch(() => undefined);
      }
    }
  }

  /** Ends every long poll now (shutdown, before the logs flush). */
  endWaits(): void {
    for (const topic of this.topics.values()) for (const p of topic.partitions) p.endWaits();
  }

  /** Flushes and closes every partition, then the metadata store. */
  async close(): Promise<void> {
    await this.mutation.catch(() => undefined);
    for (const topic of this.topics.values()) await Promise.allSettled(topic.partitions.map((p) => p.close()));
    this.topics.clear();
    await this.metadata.close();
  }

  private validate(spec: TopicSpec): void {
    const { limits } = this.options;
    assertTopicName(spec.name, limits.maxTopicNameLength);
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > limits.maxPartitionsPerTopic) {
      throw new RunnelError('INVALID_PARTITIONS', `partitions must be an integer in 1..${limits.maxPartitionsPerTopic}, got ${spec.partitions}`);
    }
    if (spec.replicationFactor !== undefined && spec.replicationFactor !== -1 && spec.replicationFactor !== 1) {
      throw new RunnelError('INVALID_REPLICATION_FACTOR', `replicationFactor ${spec.replicationFactor} is not available: this broker runs as a single node (start brokers with --cluster for replication, docs/cluster.md), use 1`);
    }
    if (spec.minInsyncReplicas !== undefined && spec.minInsyncReplicas !== -1 && spec.minInsyncReplicas !== 1) {
      throw new RunnelError('INVALID_REPLICATION_FACTOR', `minInsyncReplicas ${spec.minInsyncReplicas} cannot be met by a single node, use 1`);
    }
    if (this.topics.size >= limits.maxTopics) throw new RunnelError('LIMIT_EXCEEDED', `the broker already holds maxTopics (${limits.maxTopics}) topics`);
    for (const [field, v] of [['retentionMs', spec.retentionMs], ['retentionBytes', spec.retentionBytes]] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || (v < 0 && v !== -1))) throw new RunnelError('INVALID_REQUEST', `${field} must be -1 (unlimited) or a non-negative integer`);
    }
  }

  /** Opens the partitions of `info`; `announce` false defers onPartitionOpen until the topic is stored. */
  private async openTopic(info: TopicInfo, announce = true): Promise<OpenTopic> {
    const logs: PartitionLog[] = [];
    try {
      for (let p = 0; p < info.partitions; p++) {
        const dir = join(this.topicDir(info.topicId), String(p));
        await mkdir(dir, { recursive: true });
        logs.push(await PartitionLog.open(dir, {
          limits: this.options.limits, flushIntervalMs: this.options.flushIntervalMs, retentionMs: info.retentionMs, retentionBytes: info.retentionBytes,
        }));
      }
    } catch (e) {
      await Promise.allSettled(logs.map((l) => l.close()));
      throw new RunnelError('KAFKA_STORAGE_ERROR', `could not open logs of topic ${info.name}: ${(e as Error).message}`, { cause: e });
    }
    const brokerId = this.options.brokerId ?? 0;
    const topic: OpenTopic = { info, logs, partitions: logs.map((log, p) => new LocalPartition(info, p, log, brokerId)) };
    if (announce) this.announce(topic);
    return topic;
  }

  private announce(topic: OpenTopic): void {
    for (const p of topic.partitions) this.options.onPartitionOpen?.(topic.info, p);
  }

  /** Topic directories not in the metadata (a crash during delete/create) are removed. */
  private async removeOrphanDirs(): Promise<void> {
    const root = join(this.options.dataDir, 'topics');
    const ids = new Set([...this.topics.values()].map((t) => t.info.topicId));
    const entries = await readdir(root).catch(() => [] as string[]);
    for (const entry of entries) if (!ids.has(entry)) await rm(join(root, entry), { recursive: true, force: true });
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutation.then(fn, fn);
    this.mutation = run.catch(() => undefined);
    return run;
  }
}
