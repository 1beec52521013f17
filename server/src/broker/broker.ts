/**
 * The broker service (single node): topics, produce, fetch, producer ids and
 * consumer groups over the topics' `Partition`s. Transport-free and
 * principal-free: the request layer (request/request-layer.ts) is the one
 * caller on behalf of clients; it authorizes, then calls this.
 *
 * Invariants: a batch is validated once, here (structure of every record,
 * CRC, limits), before any partition sees it; a produce resolves only after
 * the partition made it durable (fdatasync, group-committed); reads never
 * return offsets at or above the highWatermark; errors are RunnelErrors from
 * the shared error table.
 */
import { BatchAttributes, RunnelError, validateRecords, type BatchHeader } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import { nativeCrc } from '../log/partition-log.ts';
import type { ProducerEntry } from '../log/producer-state.ts';
import { GroupCoordinator } from '../groups/coordinator.ts';
import { FileOffsetStore } from '../groups/file-offset-store.ts';
import type { GroupService, GroupServiceHost } from '../groups/group-service.ts';
import type { TopicInfo, TopicSpec } from '../metadata/topic-info.ts';
import { assertTopicName } from '../metadata/topic-name.ts';
import type { Acks, AppendResult, Partition, PartitionReadResult, PartitionState } from '../partition/partition.ts';
import { ProducerIdAllocator, type IssuedProducer } from './producer-ids.ts';
import { TopicRegistry } from './topic-registry.ts';
import type { ServedPartition, ServedTopic, TopicSource, TopicSourceHooks } from './topic-source.ts';

export interface BrokerConfig {
  brokerId: number; dataDir: string; host: string; port: number;
  autoCreateTopics: boolean; defaultPartitions: number; flushIntervalMs: number; limits: Limits;
  /** Demo build served at `/`. */
  staticDir?: string;
}

/** What a cluster broker plugs in instead of the single node's files (docs/cluster.md). */
export interface BrokerSources {
  topics?: (hooks: TopicSourceHooks) => Promise<TopicSource>;
  producerIds?: Promise<ProducerIdAllocator>;
  /** The cluster's group service (replicated/group-forwarding.ts), given what groups read of the broker; default: a GroupCoordinator over the file store. */
  groups?: (host: GroupServiceHost) => GroupService;
}

export interface ProduceOptions {
  /**
   * Whether the client proved it owns a producer id (initProducer on this
   * connection, or the id's secret over HTTP); the request layer always
   * passes it. An idempotent batch of an id it does not own is refused.
   */
  ownsProducer?: (producerId: number) => boolean;
}

/** Observer of partitions opening and topics closing (the WebSocket fan-out attaches here). */
export interface PartitionWatcher {
  partitionOpened(topic: TopicInfo, partition: Partition): void;
  topicClosed(topic: TopicInfo): void;
}

export class Broker {
  readonly groups: GroupService;
  private readonly watchers = new Set<PartitionWatcher>();
  private readonly retentionTimer: NodeJS.Timeout;
  private readonly creating = new Map<string, Promise<TopicInfo>>();
  private closed = false;
  /** Batch bytes inside `produce` (accepted, not yet durable): bounded by maxPendingProduceBytes. */
  private pendingProduceBytes = 0;

  private constructor(
    readonly config: BrokerConfig,
    readonly metrics: RunnelMetrics | undefined,
    private readonly registry: TopicSource,
    private readonly producerIds: ProducerIdAllocator,
    groups: (host: GroupServiceHost) => GroupService,
  ) {
    this.groups = groups({
      limits: config.limits,
      partitionCounts: () => new Map(this.registry.list().map((t) => [t.name, t.partitions])),
      highWatermark: (topic, p) => this.registry.get(topic)?.partitions[p]?.highWatermark,
    });
    this.retentionTimer = setInterval(() => void this.registry.enforceRetention(Date.now()), config.limits.retentionCheckIntervalMs);
    this.retentionTimer.unref();
    metrics?.onCollect(() => metrics.pendingProduceBytes.set(this.pendingProduceBytes));
  }

  /**
   * Single node by default; a cluster broker passes its own `topics` (replicas driven by etcd)
   * and `producerIds` (blocks and key shared through etcd).
   */
  static async open(config: BrokerConfig, metrics?: RunnelMetrics, sources: BrokerSources = {}): Promise<Broker> {
    let broker: Broker | undefined;
    const hooks: TopicSourceHooks = {
      onPartitionOpen: (topic, p) => broker?.attachPartition(topic, p),
      onTopicClose: (topic) => broker?.detachTopic(topic),
      onTopicsChanged: () => broker?.groups.topicsChanged(),
    };
    const registry = sources.topics
      ? await sources.topics(hooks)
      : await TopicRegistry.open({ dataDir: config.dataDir, limits: config.limits, flushIntervalMs: config.flushIntervalMs, brokerId: config.brokerId, ...hooks });
    const [producerIds, groups] = await Promise.all([
      sources.producerIds ?? ProducerIdAllocator.open(config.dataDir),
      sources.groups ?? FileOffsetStore.open(config.dataDir).then((store) => (host: GroupServiceHost) => new GroupCoordinator({ ...host, store })),
    ]);
    broker = new Broker(config, metrics, registry, producerIds, groups);
    for (const topic of registry.openTopics()) for (const p of topic.partitions) broker.attachPartition(topic.info, p);
    return broker;
  }

  /** Registers a watcher; it is told about every partition already open, then about changes. */
  watchPartitions(watcher: PartitionWatcher): () => void {
    this.watchers.add(watcher);
    for (const topic of this.registry.openTopics()) for (const p of topic.partitions) watcher.partitionOpened(topic.info, p);
    return () => this.watchers.delete(watcher);
  }

  createTopic(spec: TopicSpec): Promise<TopicInfo> {
    return this.registry.create(spec).then((info) => {
      this.groups.topicsChanged();
      return info;
    });
  }

  hasTopic(name: string): boolean {
    return this.registry.get(name) !== undefined;
  }

  /** Whether the topic exists, after looking again at the source of truth when it is not served here (a cluster broker may not have seen a topic created elsewhere a moment ago). */
  async refreshTopic(name: string): Promise<boolean> {
    if (this.hasTopic(name)) return true;
    await this.registry.refresh?.(name);
    return this.hasTopic(name);
  }

  listTopics(): TopicInfo[] {
    return this.registry.list();
  }

  /** Throws UNKNOWN_TOPIC_OR_PARTITION. */
  describeTopic(name: string): { topic: TopicInfo; partitions: PartitionState[] } {
    const topic = this.openTopic(name);
    return { topic: topic.info, partitions: topic.partitions.map((p) => p.state()) };
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
    if (await this.refreshTopic(name)) return this.openTopic(name).info;
    if (!this.config.autoCreateTopics) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist and auto-creation is disabled`);
    let pending = this.creating.get(name);
    if (!pending) {
      pending = this.createTopic({ name, partitions: this.config.defaultPartitions })
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

  /** The partition (UNKNOWN_TOPIC_OR_PARTITION). */
  partition(topic: string, partition: number): Partition {
    const t = this.openTopic(topic);
    const p = Number.isInteger(partition) ? t.partitions[partition] : undefined;
    if (!p) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${topic} has no partition ${partition} (it has ${t.info.partitions})`);
    return p;
  }

  /**
   * Validates that `batch` is exactly one RecordBatch within limits (every
   * record's structure and the CRC, once for every transport) and appends it
   * durably. Takes ownership of `batch`.
   */
  async produce(topic: string, partition: number, batch: Uint8Array, acks: Acks, options: ProduceOptions = {}): Promise<AppendResult> {
    if (this.closed) throw new RunnelError('SHUTTING_DOWN');
    await this.ensureTopic(topic);
    const target = this.partition(topic, partition);
    const { limits } = this.config;
    // No subscriber is ever sent a batch it cannot decode; a batch is walked, not copied.
    const header = validateRecords(batch, 0, { maxBatchBytes: limits.maxBatchBytes, maxHeadersPerRecord: limits.maxHeadersPerRecord, crc: nativeCrc });
    if (!header.ok) throw new RunnelError(header.code, header.message);
    if (header.value.totalBytes !== batch.length) throw new RunnelError('CORRUPT_MESSAGE', `produce carries ${batch.length} bytes but the batch is ${header.value.totalBytes}: send exactly one batch`);
    if (header.value.recordCount > limits.maxRecordsPerBatch) throw new RunnelError('MESSAGE_TOO_LARGE', `batch has ${header.value.recordCount} records, limit ${limits.maxRecordsPerBatch}`);
    checkProducedHeader(header.value, limits, Date.now());
    const { producerId } = header.value;
    if (producerId >= 0 && options.ownsProducer && !options.ownsProducer(producerId)) {
      throw new RunnelError('UNKNOWN_PRODUCER_ID', `producer id ${producerId} was not issued to this client: call initProducer (with the stored id and its secret, or -1 for a new id) on this connection first`);
    }
    // Over budget is retryable, so it comes after the final refusals above. No await between the
    // check and the reservation: concurrent produces can never overshoot the budget.
    if (this.pendingProduceBytes + batch.length > limits.maxPendingProduceBytes) {
      this.metrics?.backpressureDrops.inc({ reason: 'produce_budget' });
      throw new RunnelError('LIMIT_EXCEEDED', `broker has ${this.pendingProduceBytes} produce bytes pending (maxPendingProduceBytes ${limits.maxPendingProduceBytes}); retry after a backoff`);
    }
    this.pendingProduceBytes += batch.length;
    let result: AppendResult;
    try {
      result = await target.append(batch, { acks, header: header.value });
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
  async fetch(topic: string, partition: number, offset: number, maxBytes: number): Promise<PartitionReadResult> {
    const p = this.partition(topic, partition);
    if (Number.isSafeInteger(offset) && offset > p.highWatermark && offset <= p.logEndOffset) {
      // Stored, not yet known committed (a replica whose high watermark lags its log): nothing to read yet, as Kafka answers.
      return { batches: new Uint8Array(0), firstOffset: offset, nextOffset: offset, highWatermark: p.highWatermark, logStartOffset: p.logStartOffset };
    }
    if (!Number.isSafeInteger(offset) || offset < p.logStartOffset || offset > p.highWatermark) {
      throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${p.logStartOffset}, ${p.highWatermark}]`, {
        details: { logStartOffset: p.logStartOffset, highWatermark: p.highWatermark },
      });
    }
    return p.read(offset, Math.max(1, Math.min(maxBytes, this.config.limits.maxReadBytes)));
  }

  /** Resolves once highWatermark > offset, on timeout (capped by maxLongPollMs), on abort or topic deletion (never rejects). */
  waitForRecords(topic: string, partition: number, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.partition(topic, partition).waitForVisible(offset, Math.min(timeoutMs, this.config.limits.maxLongPollMs), signal);
  }

  /** The partition's idempotent-producer state of `producerId` (Partition.producerState). */
  producerState(topic: string, partition: number, producerId: number): Promise<ProducerEntry | undefined> {
    return this.partition(topic, partition).producerState(producerId);
  }

  offsetForTimestamp(topic: string, partition: number, timestampMs: number): Promise<number | null> {
    return this.partition(topic, partition).offsetForTimestamp(timestampMs);
  }

  /** `(-1, …)` allocates; an issued id is re-claimed only with its secret by its subject (producer-ids.ts). */
  initProducer(producerId: number, producerEpoch: number, producerSecret: string, subject: string): Promise<IssuedProducer> {
    return this.producerIds.initProducer(producerId, producerEpoch, producerSecret, subject);
  }

  /** Whether `secret` proves `subject` owns `producerId` (HTTP binary produce carries it). */
  ownsProducer(producerId: number, subject: string, secret: string): boolean {
    return this.producerIds.owns(producerId, subject, secret);
  }

  /** Stops timers, ends long polls, then flushes and closes groups and partitions. Callers stop traffic first. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.retentionTimer);
    this.registry.endWaits();
    await this.groups.close();
    await this.registry.close();
  }

  private openTopic(name: string): ServedTopic {
    const topic = this.registry.get(name);
    if (!topic) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
    return topic;
  }

  private attachPartition(topic: TopicInfo, partition: ServedPartition): void {
    const metrics = this.metrics;
    if (metrics) partition.onFlush?.((durationMs) => metrics.fsyncLatency.observe(durationMs / 1000));
    for (const w of this.watchers) w.partitionOpened(topic, partition);
  }

  private detachTopic(topic: ServedTopic): void {
    // Long polls on a deleted topic end now; their handler sees the topic gone.
    for (const p of topic.partitions) p.endWaits();
    for (const w of this.watchers) w.topicClosed(topic.info);
  }
}

/**
 * What a client may not set in a produced batch, beyond its structure: an
 * offset span that differs from its record count (it would reserve offsets
 * no record holds: one 70-byte batch could move the log end by 2^31),
 * transactional or control bits (Runnel has no transactions; control
 * batches are the broker's own), and timestamps outside the skew window.
 */
export function checkProducedHeader(h: BatchHeader, limits: Limits, nowMs: number): void {
  if (h.recordCount !== h.lastOffsetDelta + 1) {
    throw new RunnelError('INVALID_RECORD', `batch has ${h.recordCount} records but lastOffsetDelta ${h.lastOffsetDelta}: a produced batch spans exactly its records (lastOffsetDelta = records - 1)`);
  }
  if ((h.attributes & (BatchAttributes.transactional | BatchAttributes.control)) !== 0) {
    throw new RunnelError('INVALID_RECORD', 'transactional and control batches cannot be produced (attributes bits 4 and 5 must be 0)');
  }
  for (const [field, ts] of [['baseTimestamp', h.baseTimestamp], ['maxTimestamp', h.maxTimestamp]] as const) {
    if (ts === -1) continue; // Kafka's NO_TIMESTAMP
    if (ts < nowMs - limits.maxTimestampBeforeMs || ts > nowMs + limits.maxTimestampAfterMs) {
      throw new RunnelError('INVALID_TIMESTAMP', `${field} ${ts} is outside [now - ${limits.maxTimestampBeforeMs} ms, now + ${limits.maxTimestampAfterMs} ms] (maxTimestampBeforeMs/maxTimestampAfterMs)`);
    }
  }
}
