/**
 * The request layer: every client operation, from a WebSocket frame or an
 * HTTP route, passes here with its `RequestContext`, is authorized (the one
 * `AccessControl` check of its operation and resource), and is then served by
 * the broker. Quotas plug in at the same points (docs/architecture.md).
 *
 * Invariant: no broker state is read or changed for a request before its
 * authorization passed, so a refused client learns nothing but the refusal.
 */
import { BATCH_HEADER_BYTES, RunnelError, batchRecordCount, type CommittedOffset, type GroupAssignmentFrame } from '@runnel/client/codec';
import type { Broker } from '../broker/broker.ts';
import type { GroupMemberSink } from '../groups/coordinator.ts';
import { isInternalTopic } from '../groups/coordinator-placement.ts';
import type { TopicSpec } from '../metadata/topic-info.ts';
import { assertTopicName } from '../metadata/topic-name.ts';
import type { Acks } from '../partition/partition.ts';
import { AccessControl } from './access-control.ts';
import type { QuotaPoints } from './quota-points.ts';
import type { BrokerApi, GroupJoinRequest, ProducerProof } from './broker-api.ts';
import type { RequestContext } from './request-context.ts';

export class RequestLayer implements BrokerApi {
  readonly config: { readonly defaultPartitions: number };
  readonly brokerId: number;

  /** Subject that created each topic (topics-per-subject quota; in memory: counts restart from zero with the broker). */
  private readonly creators = new Map<string, string>();

  constructor(private readonly broker: Broker, readonly access: AccessControl = new AccessControl(), private readonly quotas?: QuotaPoints) {
    this.config = { defaultPartitions: broker.config.defaultPartitions };
    this.brokerId = broker.config.brokerId;
  }

  /** Creates through `create` within the subject's topics quota. */
  private async createCounted<T>(ctx: RequestContext, name: string, create: () => Promise<T>): Promise<T> {
    if (!this.quotas) return create();
    const subject = ctx.principal.subject;
    this.quotas.acquire('topicsPerSubject', subject);
    try {
      const result = await create();
      this.creators.set(name, subject);
      return result;
    } catch (e) {
      this.quotas.release('topicsPerSubject', subject);
      throw e;
    }
  }

  get requiresToken(): boolean {
    return this.access.requiresToken;
  }

  authenticate(token: string | undefined, remoteAddress: string) {
    return this.access.authenticate(token, remoteAddress);
  }

  checkAdmin(ctx: RequestContext): void {
    this.access.check(ctx, 'admin', { cluster: true });
  }

  createTopic(ctx: RequestContext, spec: TopicSpec) {
    this.access.check(ctx, 'createTopic', { topic: spec.name });
    refuseInternal(spec.name, 'create');
    return this.createCounted(ctx, spec.name, () => this.broker.createTopic(spec));
  }

  listTopics(ctx: RequestContext) {
    return this.broker.listTopics().filter((t) => this.access.allows(ctx, 'describe', { topic: t.name }));
  }

  describeTopic(ctx: RequestContext, name: string) {
    this.access.check(ctx, 'describe', { topic: name });
    return this.broker.describeTopic(name);
  }

  async deleteTopic(ctx: RequestContext, name: string) {
    this.access.check(ctx, 'deleteTopic', { topic: name });
    refuseInternal(name, 'delete');
    await this.broker.deleteTopic(name);
    const creator = this.creators.get(name);
    this.creators.delete(name);
    if (creator !== undefined) this.quotas?.release('topicsPerSubject', creator);
  }

  /** The topic a produce goes to; creating a missing one also needs the createTopic grant (a publish grant alone does not re-create a deleted topic). */
  async ensureTopic(ctx: RequestContext, name: string) {
    this.access.check(ctx, 'produce', { topic: name });
    refuseInternal(name, 'produce to');
    if (await this.broker.refreshTopic(name)) return this.broker.ensureTopic(name);
    this.access.check(ctx, 'createTopic', { topic: name });
    return this.createCounted(ctx, name, () => this.broker.ensureTopic(name));
  }

  async produce(ctx: RequestContext, topic: string, partition: number, batch: Uint8Array, acks: Acks, producer?: ProducerProof) {
    this.access.check(ctx, 'produce', { topic });
    refuseInternal(topic, 'produce to');
    // A produce to a missing topic creates it only as ensureTopic allows (createTopic grant, topics quota).
    if (!this.broker.hasTopic(topic)) await this.ensureTopic(ctx, topic);
    if (this.quotas) await this.quotas.throttleProduce(ctx, batch.byteLength, batch.byteLength >= BATCH_HEADER_BYTES ? batchRecordCount(batch) : 1);
    const subject = ctx.principal.subject;
    const ownsProducer = (id: number): boolean => {
      if (producer === undefined) return false;
      return 'claimed' in producer ? producer.claimed.has(id) : this.broker.ownsProducer(id, subject, producer.secret);
    };
    return this.broker.produce(topic, partition, batch, acks, { ownsProducer });
  }

  async produceAll(ctx: RequestContext, topic: string, batches: readonly { partition: number; batch: Uint8Array }[], acks: Acks) {
    this.access.check(ctx, 'produce', { topic });
    refuseInternal(topic, 'produce to');
    if (!this.broker.hasTopic(topic)) await this.ensureTopic(ctx, topic);
    if (this.quotas) {
      let bytes = 0, records = 0;
      for (const { batch } of batches) {
        bytes += batch.byteLength;
        records += batch.byteLength >= BATCH_HEADER_BYTES ? batchRecordCount(batch) : 1;
      }
      await this.quotas.throttleProduce(ctx, bytes, records);
    }
    return Promise.all(batches.map(({ partition, batch }) => this.broker.produce(topic, partition, batch, acks, { ownsProducer: () => false })));
  }

  async fetch(ctx: RequestContext, topic: string, partition: number, offset: number, maxBytes: number) {
    this.access.check(ctx, 'fetch', { topic });
    this.quotas?.checkFetch(ctx, 1);
    const read = await this.broker.fetch(topic, partition, offset, maxBytes);
    this.quotas?.chargeFetch(ctx, read.batches.byteLength);
    return read;
  }

  async waitForRecords(ctx: RequestContext, topic: string, partition: number, offset: number, timeoutMs: number, signal?: AbortSignal) {
    this.access.check(ctx, 'fetch', { topic });
    return this.broker.waitForRecords(topic, partition, offset, timeoutMs, signal);
  }

  async commitOffsets(ctx: RequestContext, group: string, generationId: number, memberId: string, offsets: CommittedOffset[], rewind?: boolean) {
    this.access.check(ctx, 'groupCommit', { group });
    for (const topic of new Set(offsets.map((o) => o.topic))) this.access.check(ctx, 'groupCommit', { group, topic });
    return this.broker.groups.commitOffsets(group, generationId, memberId, offsets, { signal: ctx.signal, rewind });
  }

  /** Offsets of topics the principal may not see are left out (a fetch of all topics is filtered, not refused). */
  async fetchOffsets(ctx: RequestContext, group: string, topics?: string[]) {
    this.access.check(ctx, 'groupFetch', { group });
    for (const topic of topics ?? []) this.access.check(ctx, 'groupFetch', { group, topic });
    const offsets = await this.broker.groups.fetchOffsets(group, topics);
    return offsets.filter((o) => this.access.allows(ctx, 'groupFetch', { group, topic: o.topic }));
  }

  async describeGroup(ctx: RequestContext, group: string) {
    this.access.check(ctx, 'groupDescribe', { group });
    const described = await this.broker.groups.describeGroup(group);
    return { ...described, offsets: described.offsets.filter((o) => this.access.allows(ctx, 'groupFetch', { group, topic: o.topic })) };
  }

  async listGroups(ctx: RequestContext) {
    return (await this.broker.groups.listGroups()).filter((g) => this.access.allows(ctx, 'groupDescribe', { group: g.group }));
  }

  consumerLag() {
    return this.broker.groups.lag();
  }

  async initProducer(ctx: RequestContext, producerId: number, producerEpoch: number, producerSecret: string) {
    this.access.check(ctx, 'initProducer', { cluster: true });
    return this.broker.initProducer(producerId, producerEpoch, producerSecret, ctx.principal.subject);
  }

  /** Never creates the topic (issue 11 finding 5): a subscriber of a missing topic gets UNKNOWN_TOPIC_OR_PARTITION and waits. */
  async subscribe(ctx: RequestContext, topic: string, partition: number) {
    assertTopicName(topic, this.broker.config.limits.maxTopicNameLength);
    this.access.check(ctx, 'subscribe', { topic });
    await this.broker.refreshTopic(topic);
    return this.broker.partition(topic, partition).topic; // UNKNOWN_TOPIC_OR_PARTITION for a topic or partition it does not have
  }

  async refreshTopic(ctx: RequestContext, name: string): Promise<void> {
    assertTopicName(name, this.broker.config.limits.maxTopicNameLength);
    await this.broker.refreshTopic(name);
  }

  /** Read by a producer about to append (the Durable Streams endpoint): the produce grant. */
  async producerState(ctx: RequestContext, topic: string, partition: number, producerId: number) {
    this.access.check(ctx, 'produce', { topic });
    refuseInternal(topic, 'produce to');
    return this.broker.producerState(topic, partition, producerId);
  }

  async offsetForTimestamp(ctx: RequestContext, topic: string, partition: number, timestampMs: number) {
    this.access.check(ctx, 'fetch', { topic });
    return this.broker.offsetForTimestamp(topic, partition, timestampMs);
  }

  creditDelayMs(ctx: RequestContext, topic: string, _partition: number, bytes: number): number {
    this.access.check(ctx, 'fetch', { topic });
    return this.quotas?.creditDelayMs(ctx, bytes) ?? 0;
  }

  admitConnection(ip: string): boolean {
    return this.quotas?.tryAcquire('connectionsPerIp', ip) ?? true;
  }

  releaseConnection(ip: string): void {
    this.quotas?.release('connectionsPerIp', ip);
  }

  /** A member is assigned partitions of its topics: it needs subscribe on each, not only the group grant. */
  async joinGroup(ctx: RequestContext, request: GroupJoinRequest, sink: GroupMemberSink): Promise<GroupAssignmentFrame> {
    this.access.check(ctx, 'groupJoin', { group: request.group });
    for (const topic of new Set(request.topics)) this.access.check(ctx, 'subscribe', { topic });
    return this.broker.groups.join({ ...request, clientId: ctx.clientId }, sink);
  }

  async heartbeat(ctx: RequestContext, group: string, memberId: string, generationId: number) {
    this.access.check(ctx, 'groupJoin', { group });
    return this.broker.groups.heartbeat(group, memberId, generationId);
  }

  async leaveGroup(ctx: RequestContext, group: string, memberId: string): Promise<void> {
    this.access.check(ctx, 'groupJoin', { group });
    await this.broker.groups.leave(group, memberId);
  }

  leaveAll(sink: GroupMemberSink): void {
    this.broker.groups.leaveAll(sink);
  }
}

/**
 * `__consumer_offsets` is written only by group coordinators (groups/partition-offset-store.ts): a
 * client's record there would be replayed as a commit no generation check saw, so no grant lets a
 * client produce to, create or delete it. Reading it is allowed, as in Kafka.
 */
function refuseInternal(topic: string, verb: string): void {
  if (isInternalTopic(topic)) throw new RunnelError('TOPIC_AUTHORIZATION_FAILED', `${topic} is internal (consumer group offsets); clients cannot ${verb} it`);
}
