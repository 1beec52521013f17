/**
 * Test double: an in-memory `HttpBrokerApi` for the HTTP route unit tests
 * (single-module tests; integration tests use the real broker over sockets).
 * It runs the same contract suite as the real request layer
 * (request/http-broker-api.contract.ts), so the two cannot drift: topic
 * name rules (the one `topicNameProblem`), partition errors, CRC-checked
 * batches, contiguous offsets assigned at append, fetch from the batch
 * containing the offset, waitForRecords resolving on new data.
 */
import { batchLastOffset, RunnelError, setBaseOffset, validateRecords, type CommittedOffset } from '@runnel/client/codec';
import { defaultLimits } from '../../limits.ts';
import { assertTopicName } from '../../metadata/topic-name.ts';
import { topicPartitionKey } from '../../metadata/topic-info.ts';
import type { Authentication, ConsumerLag, ProducerProof, FetchResult, GroupDescription, GroupSummary, HttpBrokerApi, PartitionInfo, ProduceResult, TopicInfo, TopicSpec } from '../../request/broker-api.ts';
import { ANONYMOUS, type RequestContext } from '../../request/request-context.ts';

interface MemoryPartition { batches: Uint8Array[]; baseOffsets: number[]; logEndOffset: number }
interface Waiter { topic: string; partition: number; offset: number; wake: () => void }

export class MemoryBroker implements HttpBrokerApi {
  readonly config = { defaultPartitions: 3, autoCreateTopics: true };
  readonly requiresToken = false;

  /** Every client is anonymous, so admin too. */
  checkAdmin(): void {}

  /** No auth in the double: every client is anonymous. */
  async authenticate(): Promise<Authentication> {
    return { ok: true, principal: ANONYMOUS };
  }
  private readonly topics = new Map<string, { info: TopicInfo; partitions: MemoryPartition[] }>();
  private readonly waiters = new Set<Waiter>();
  private readonly committed = new Map<string, Map<string, CommittedOffset>>();
  private nextTopicId = 1;

  async createTopic(_ctx: RequestContext, spec: TopicSpec): Promise<TopicInfo> {
    assertTopicName(spec.name, defaultLimits.maxTopicNameLength);
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > defaultLimits.maxPartitionsPerTopic) throw new RunnelError('INVALID_PARTITIONS');
    if (this.topics.has(spec.name)) throw new RunnelError('TOPIC_ALREADY_EXISTS', `topic ${spec.name} already exists`);
    if (spec.replicationFactor !== undefined && spec.replicationFactor !== -1 && spec.replicationFactor !== 1) throw new RunnelError('INVALID_REPLICATION_FACTOR', 'single node: replicationFactor must be 1');
    const info: TopicInfo = {
      name: spec.name, topicId: `topic-${this.nextTopicId++}`, partitions: spec.partitions, replicationFactor: 1,
      retentionMs: spec.retentionMs ?? 604_800_000, retentionBytes: spec.retentionBytes ?? -1, createdAtMs: 1_700_000_000_000,
    };
    this.topics.set(spec.name, { info, partitions: Array.from({ length: spec.partitions }, () => ({ batches: [], baseOffsets: [], logEndOffset: 0 })) });
    return info;
  }

  listTopics(_ctx: RequestContext): TopicInfo[] {
    return [...this.topics.values()].map((t) => t.info);
  }

  private topic(name: string) {
    const t = this.topics.get(name);
    if (!t) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
    return t;
  }

  private partition(name: string, partition: number): MemoryPartition {
    const p = this.topic(name).partitions[partition];
    if (!p) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `${name}/${partition} does not exist`);
    return p;
  }

  describeTopic(_ctx: RequestContext, name: string): { topic: TopicInfo; partitions: PartitionInfo[] } {
    const t = this.topic(name);
    return {
      topic: t.info,
      partitions: t.partitions.map((p, i) => ({ partition: i, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0], logStartOffset: 0, highWatermark: p.logEndOffset, logEndOffset: p.logEndOffset })),
    };
  }

  async deleteTopic(_ctx: RequestContext, name: string): Promise<void> {
    this.topic(name);
    this.topics.delete(name);
    // As the real broker: long polls on a deleted topic end now.
    for (const w of [...this.waiters]) if (w.topic === name) w.wake();
  }

  /** One process holds every topic: nothing to look up again. */
  async refreshTopic(_ctx: RequestContext, _name: string): Promise<void> {}

  async ensureTopic(ctx: RequestContext, name: string): Promise<TopicInfo> {
    return this.topics.get(name)?.info ?? this.createTopic(ctx, { name, partitions: this.config.defaultPartitions, replicationFactor: 1 });
  }

  async produce(_ctx: RequestContext, topic: string, partition: number, batch: Uint8Array, _acks: -1 | 0 | 1, _producer?: ProducerProof): Promise<ProduceResult> {
    const p = this.partition(topic, partition);
    const checked = validateRecords(batch, 0, { maxBatchBytes: defaultLimits.maxBatchBytes, maxHeadersPerRecord: defaultLimits.maxHeadersPerRecord });
    if (!checked.ok) throw new RunnelError(checked.code, checked.message);
    if (checked.value.totalBytes !== batch.length) throw new RunnelError('CORRUPT_MESSAGE', `${batch.length} bytes but the batch is ${checked.value.totalBytes}: send exactly one batch`);
    const baseOffset = p.logEndOffset;
    setBaseOffset(batch, 0, baseOffset);
    p.batches.push(batch);
    p.baseOffsets.push(baseOffset);
    p.logEndOffset = baseOffset + checked.value.lastOffsetDelta + 1;
    for (const w of [...this.waiters]) if (w.topic === topic && w.partition === partition && p.logEndOffset > w.offset) w.wake();
    return { baseOffset, lastOffset: batchLastOffset({ ...checked.value, baseOffset }), logAppendTimeMs: -1, duplicate: false, logStartOffset: 0 };
  }

  /** This double does not de-duplicate idempotent batches: it holds no producer state. */
  async producerState(_ctx: RequestContext, topic: string, partition: number, _producerId: number): Promise<undefined> {
    this.partition(topic, partition);
    return undefined;
  }

  async produceAll(ctx: RequestContext, topic: string, batches: readonly { partition: number; batch: Uint8Array }[], acks: -1 | 0 | 1): Promise<ProduceResult[]> {
    return Promise.all(batches.map((b) => this.produce(ctx, topic, b.partition, b.batch, acks)));
  }

  async fetch(_ctx: RequestContext, topic: string, partition: number, offset: number, maxBytes: number): Promise<FetchResult> {
    const p = this.partition(topic, partition);
    if (offset < 0 || offset > p.logEndOffset) throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [0, ${p.logEndOffset}]`);
    const picked: Uint8Array[] = [];
    let bytes = 0;
    let nextOffset = offset;
    for (let i = 0; i < p.batches.length; i++) {
      const end = i + 1 < p.baseOffsets.length ? p.baseOffsets[i + 1] : p.logEndOffset;
      if (end <= offset) continue;
      if (picked.length > 0 && bytes + p.batches[i].byteLength > maxBytes) break;
      picked.push(p.batches[i]);
      bytes += p.batches[i].byteLength;
      nextOffset = end;
    }
    const batches = new Uint8Array(bytes);
    let at = 0;
    for (const b of picked) {
      batches.set(b, at);
      at += b.byteLength;
    }
    return { batches, firstOffset: picked.length > 0 ? p.baseOffsets[p.batches.indexOf(picked[0])] : offset, nextOffset, highWatermark: p.logEndOffset, logStartOffset: 0 };
  }

  waitForRecords(_ctx: RequestContext, topic: string, partition: number, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const p = this.partition(topic, partition);
    if (p.logEndOffset > offset || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = { topic, partition, offset, wake: () => done() };
      const timer = setTimeout(() => done(), timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      signal?.addEventListener('abort', done);
      this.waiters.add(waiter);
    });
  }

  /** Open long-poll/SSE waits (tests assert they are released). */
  get pendingWaits(): number {
    return this.waiters.size;
  }

  private offsetsOf(group: string, topics?: string[]): CommittedOffset[] {
    return [...(this.committed.get(group)?.values() ?? [])].filter((o) => topics === undefined || topics.includes(o.topic));
  }

  async commitOffsets(_ctx: RequestContext, group: string, generationId: number, memberId: string, offsets: CommittedOffset[], rewind?: boolean): Promise<void> {
    if (generationId !== -1 || memberId !== '') throw new RunnelError('UNKNOWN_MEMBER_ID');
    for (const o of offsets) this.partition(o.topic, o.partition);
    const map = this.committed.get(group) ?? new Map<string, CommittedOffset>();
    if (!rewind && offsets.some((o) => o.offset < (map.get(topicPartitionKey(o.topic, o.partition))?.offset ?? 0))) throw new RunnelError('OFFSET_COMMIT_BACKWARDS');
    for (const o of offsets) map.set(topicPartitionKey(o.topic, o.partition), { ...o, metadata: o.metadata ?? '' });
    this.committed.set(group, map);
  }

  async fetchOffsets(_ctx: RequestContext, group: string, topics?: string[]): Promise<CommittedOffset[]> {
    return this.offsetsOf(group, topics);
  }

  async describeGroup(_ctx: RequestContext, group: string): Promise<GroupDescription> {
    const offsets = this.offsetsOf(group);
    if (offsets.length === 0) throw new RunnelError('UNKNOWN_GROUP', `group ${group} has no members and no committed offsets`);
    return {
      group, state: 'Empty', generationId: 0, protocol: 'range', members: [],
      offsets: offsets.map((o) => {
        const hw = this.topics.get(o.topic)?.partitions[o.partition]?.logEndOffset;
        return { ...o, highWatermark: hw ?? null, lag: hw === undefined ? null : Math.max(0, hw - o.offset) };
      }),
    };
  }

  async listGroups(_ctx: RequestContext): Promise<GroupSummary[]> {
    return [...this.committed.keys()].sort().map((group) => ({ group, state: 'Empty' as const, members: 0, generationId: 0 }));
  }

  consumerLag(): ConsumerLag[] {
    return [...this.committed].flatMap(([group, map]) => [...map.values()].map((o) => ({
      group, topic: o.topic, partition: o.partition,
      lag: Math.max(0, (this.topics.get(o.topic)?.partitions[o.partition]?.logEndOffset ?? o.offset) - o.offset),
    })));
  }
}
