/**
 * The broker service (single node): topics, produce, fetch, producer ids and
 * consumer groups over the partition logs. Transport-free: the WebSocket
 * endpoint and the HTTP app both call it (docs/http.md).
 *
 * Invariants: a produce resolves only after the log made the batch durable
 * (fdatasync, group-committed); reads never return offsets at or above the
 * highWatermark; errors are RunnelErrors from the shared error table.
 */
import { BatchField, RunnelError, validateRecords } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import { nativeCrc, type PartitionLog } from '../log/partition-log.ts';
import { GroupCoordinator } from '../groups/coordinator.ts';
import { OffsetStore } from '../groups/offset-store.ts';
import { ProducerIdAllocator } from './producer-ids.ts';
import { TopicRegistry, type OpenTopic, type TopicInfo, type TopicSpec } from './topic-registry.ts';
import { assertTopicName } from './topic-name.ts';

export type { TopicInfo, TopicSpec } from './topic-registry.ts';

export interface BrokerConfig {
  brokerId: number; dataDir: string; host: string; port: number;
  autoCreateTopics: boolean; defaultPartitions: number; flushIntervalMs: number; limits: Limits;
  /** Demo build served at `/`. */
  staticDir?: string;
}

export interface PartitionInfo {
  partition: number; leader: number; replicas: number[]; isr: number[];
  logStartOffset: number; highWatermark: number; logEndOffset: number;
}

export interface ProduceResult { baseOffset: number; lastOffset: number; logAppendTimeMs: number; duplicate: boolean }
export interface FetchResult { batches: Uint8Array; firstOffset: number; nextOffset: number; highWatermark: number; logStartOffset: number }

/** Observer of partition logs opening/closing (the WebSocket fan-out attaches here). */
export interface PartitionWatcher {
  partitionOpened(topic: TopicInfo, partition: number, log: PartitionLog): void;
  topicClosed(topic: TopicInfo): void;
}

export class Broker {
  readonly groups: GroupCoordinator;
  private readonly waiters = new Map<PartitionLog, Set<(force?: boolean) => void>>();
  private readonly watchers = new Set<PartitionWatcher>();
  private readonly retentionTimer: NodeJS.Timeout;
  private readonly creating = new Map<string, Promise<TopicInfo>>();
  private closed = false;
  /** Batch bytes inside `produce` (accepted, not yet durable): bounded by maxPendingProduceBytes. */
  private pendingProduceBytes = 0;

  private constructor(
    readonly config: BrokerConfig,
    readonly metrics: RunnelMetrics | undefined,
    private readonly registry: TopicRegistry,
    private readonly producerIds: ProducerIdAllocator,
    store: OffsetStore,
  ) {
    this.groups = new GroupCoordinator({
      store, limits: config.limits,
      partitionCounts: () => new Map(this.registry.list().map((t) => [t.name, t.partitions])),
      highWatermark: (topic, p) => this.registry.get(topic)?.logs[p]?.highWatermark,
    });
    this.retentionTimer = setInterval(() => void this.registry.enforceRetention(Date.now()), config.limits.retentionCheckIntervalMs);
    this.retentionTimer.unref();
    metrics?.onCollect(() => {
      metrics.pendingProduceBytes.set(this.pendingProduceBytes);
      for (const l of this.groups.lag()) metrics.consumerLag.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.lag);
    });
  }

  static async open(config: BrokerConfig, metrics?: RunnelMetrics): Promise<Broker> {
    let broker: Broker | undefined;
    const registry = await TopicRegistry.open({
      dataDir: config.dataDir, limits: config.limits, flushIntervalMs: config.flushIntervalMs,
      onPartitionOpen: (topic, p, log) => broker?.attachPartition(topic, p, log),
      onTopicClose: (topic) => broker?.detachTopic(topic),
    });
    const [producerIds, store] = await Promise.all([ProducerIdAllocator.open(config.dataDir), OffsetStore.open(config.dataDir)]);
    broker = new Broker(config, metrics, registry, producerIds, store);
    for (const info of registry.list()) {
      registry.get(info.name)?.logs.forEach((log, p) => broker?.attachPartition(info, p, log));
    }
    return broker;
  }

  /** Registers a watcher; it is told about every partition already open, then about changes. */
  watchPartitions(watcher: PartitionWatcher): () => void {
    this.watchers.add(watcher);
    for (const info of this.registry.list()) this.registry.get(info.name)?.logs.forEach((log, p) => watcher.partitionOpened(info, p, log));
    return () => this.watchers.delete(watcher);
  }

  createTopic(spec: TopicSpec): Promise<TopicInfo> {
    return this.registry.create(spec).then((info) => {
      this.groups.topicsChanged();
      return info;
    });
  }

  listTopics(): TopicInfo[] {
    return this.registry.list();
  }

  describeTopic(name: string): { topic: TopicInfo; partitions: PartitionInfo[] } {
    const topic = this.openTopic(name);
    return {
      topic: topic.info,
      partitions: topic.logs.map((log, partition) => ({
        partition, leader: this.config.brokerId, replicas: [this.config.brokerId], isr: [this.config.brokerId],
        logStartOffset: log.logStartOffset, highWatermark: log.highWatermark, logEndOffset: log.logEndOffset,
      })),
    };
  }

  async deleteTopic(name: string): Promise<void> {
    await this.registry.delete(name);
    await this.groups.deleteTopic(name);
  }

  /** Existing topic, or auto-created with defaultPartitions when enabled (concurrent callers share one creation). */
  async ensureTopic(name: string): Promise<TopicInfo> {
    const existing = this.registry.get(name);
    if (existing) return existing.info;
    assertTopicName(name, this.config.limits.maxTopicNameLength);
    if (!this.config.autoCreateTopics) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist and auto-creation is disabled`);
    let pending = this.creating.get(name);
    if (!pending) {
      pending = this.createTopic({ name, partitions: this.config.defaultPartitions, replicationFactor: 1 })
        .catch((e: unknown) => {
          const now = this.registry.get(name);
          if (now) return now.info; // lost a race with an explicit create
          throw e;
        })
        .finally(() => this.creating.delete(name));
      this.creating.set(name, pending);
    }
    return pending;
  }

  /** Log of a partition (UNKNOWN_TOPIC_OR_PARTITION). */
  partitionLog(topic: string, partition: number): PartitionLog {
    const t = this.openTopic(topic);
    const log = Number.isInteger(partition) ? t.logs[partition] : undefined;
    if (!log) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${topic} has no partition ${partition} (it has ${t.info.partitions})`);
    return log;
  }

  /**
   * Checks that `batch` is exactly one RecordBatch within limits and appends
   * it durably (the log verifies the CRC). Takes ownership of `batch`.
   */
  async produce(topic: string, partition: number, batch: Uint8Array, acks: -1 | 0 | 1): Promise<ProduceResult> {
    void acks; // single node: leader durable == all in-sync replicas
    if (this.closed) throw new RunnelError('SHUTTING_DOWN');
    await this.ensureTopic(topic);
    const log = this.partitionLog(topic, partition);
    const { limits } = this.config;
    // Every record's structure is checked once here (WS and HTTP share this path), so no
    // subscriber is ever sent a batch it cannot decode; a batch is walked, not copied.
    const header = validateRecords(batch, 0, { maxBatchBytes: limits.maxBatchBytes, maxHeadersPerRecord: limits.maxHeadersPerRecord, crc: nativeCrc });
    if (!header.ok) throw new RunnelError(header.code, header.message);
    if (header.value.totalBytes !== batch.length) throw new RunnelError('CORRUPT_MESSAGE', `produce carries ${batch.length} bytes but the batch is ${header.value.totalBytes}: send exactly one batch`);
    if (header.value.recordCount > limits.maxRecordsPerBatch) throw new RunnelError('MESSAGE_TOO_LARGE', `batch has ${header.value.recordCount} records, limit ${limits.maxRecordsPerBatch}`);
    // Over budget is retryable, so it comes after the final refusals above. No await between the
    // check and the reservation: concurrent produces can never overshoot the budget.
    if (this.pendingProduceBytes + batch.length > limits.maxPendingProduceBytes) {
      this.metrics?.backpressureDrops.inc({ reason: 'produce_budget' });
      throw new RunnelError('LIMIT_EXCEEDED', `broker has ${this.pendingProduceBytes} produce bytes pending (maxPendingProduceBytes ${limits.maxPendingProduceBytes}); retry after a backoff`);
    }
    this.pendingProduceBytes += batch.length;
    let result: ProduceResult;
    try {
      result = await log.append(batch, { leaderEpoch: 0 });
    } finally {
      this.pendingProduceBytes -= batch.length;
    }
    if (!result.duplicate) {
      this.metrics?.recordsIn.inc({ topic }, header.value.recordCount);
      this.metrics?.bytesIn.inc({ topic }, batch.length);
    }
    return result;
  }

  /** Stored batches from the batch containing `offset`, below the highWatermark, up to ~maxBytes (at least one batch). */
  async fetch(topic: string, partition: number, offset: number, maxBytes: number): Promise<FetchResult> {
    const log = this.partitionLog(topic, partition);
    if (!Number.isSafeInteger(offset) || offset < log.logStartOffset || offset > log.highWatermark) {
      throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${log.logStartOffset}, ${log.highWatermark}]`, {
        details: { logStartOffset: log.logStartOffset, highWatermark: log.highWatermark },
      });
    }
    const bytes = Math.max(1, Math.min(maxBytes, this.config.limits.maxReadBytes));
    return log.read(offset, bytes, { maxOffset: log.highWatermark });
  }

  /** Resolves once highWatermark > offset, on timeout, or on abort (never rejects). */
  waitForRecords(topic: string, partition: number, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const log = this.partitionLog(topic, partition);
    if (log.highWatermark > offset || signal?.aborted || timeoutMs <= 0) return Promise.resolve();
    const set = this.waiters.get(log);
    if (!set) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        set.delete(check);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const check = (force?: boolean): void => {
        if (force || log.highWatermark > offset) done();
      };
      const timer = setTimeout(done, Math.min(timeoutMs, this.config.limits.maxLongPollMs));
      set.add(check);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async offsetForTimestamp(topic: string, partition: number, timestampMs: number): Promise<number | null> {
    return this.partitionLog(topic, partition).offsetForTimestamp(timestampMs);
  }

  initProducer(producerId: number, producerEpoch: number): Promise<{ producerId: number; producerEpoch: number }> {
    return this.producerIds.initProducer(producerId, producerEpoch);
  }

  /** Stops timers, then flushes and closes groups and logs. Callers stop traffic first. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.retentionTimer);
    for (const set of this.waiters.values()) for (const wake of [...set]) wake(true);
    await this.groups.close();
    await this.registry.close();
  }

  private openTopic(name: string): OpenTopic {
    const topic = this.registry.get(name);
    if (!topic) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
    return topic;
  }

  private attachPartition(topic: TopicInfo, partition: number, log: PartitionLog): void {
    const set = new Set<(force?: boolean) => void>();
    this.waiters.set(log, set);
    log.onAppend(() => {
      for (const wake of [...set]) wake();
    });
    const metrics = this.metrics;
    if (metrics) log.onFlush((durationMs) => metrics.fsyncLatency.observe(durationMs / 1000));
    for (const w of this.watchers) w.partitionOpened(topic, partition, log);
  }

  private detachTopic(topic: OpenTopic): void {
    for (const log of topic.logs) {
      const set = this.waiters.get(log);
      this.waiters.delete(log);
      // Long polls on a deleted topic end now; their handler sees the topic gone.
      for (const wake of [...(set ?? [])]) wake(true);
    }
    for (const w of this.watchers) w.topicClosed(topic.info);
  }
}

/** Record count of the batch at the start of `batch` (header field; no decoding). */
export function batchRecordCount(batch: Uint8Array, at = 0): number {
  const i = at + BatchField.recordCount;
  return ((batch[i] << 24) | (batch[i + 1] << 16) | (batch[i + 2] << 8) | batch[i + 3]) >>> 0;
}
