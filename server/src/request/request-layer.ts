/**
 * The request layer: every client operation, from a WebSocket frame or an
 * HTTP route, passes here with its `RequestContext`, is authorized (the one
 * `AccessControl` check of its operation and resource), and is then served by
 * the broker. Quotas plug in at the same points (docs/architecture.md).
 *
 * Invariant: no broker state is read or changed for a request before its
 * authorization passed, so a refused client learns nothing but the refusal.
 */
import type { CommittedOffset, GroupAssignmentFrame } from '@runnel/client/codec';
import type { Broker } from '../broker/broker.ts';
import type { GroupMemberSink } from '../groups/coordinator.ts';
import type { TopicSpec } from '../metadata/topic-info.ts';
import { assertTopicName } from '../metadata/topic-name.ts';
import type { Acks } from '../partition/partition.ts';
import { AccessControl } from './access-control.ts';
import type { BrokerApi, GroupJoinRequest } from './broker-api.ts';
import type { RequestContext } from './request-context.ts';

export class RequestLayer implements BrokerApi {
  readonly config: { readonly defaultPartitions: number };
  readonly brokerId: number;

  constructor(private readonly broker: Broker, readonly access: AccessControl = new AccessControl()) {
    this.config = { defaultPartitions: broker.config.defaultPartitions };
    this.brokerId = broker.config.brokerId;
  }

  get requiresToken(): boolean {
    return this.access.requiresToken;
  }

  authenticate(token: string | undefined, remoteAddress: string) {
    return this.access.authenticate(token, remoteAddress);
  }

  createTopic(ctx: RequestContext, spec: TopicSpec) {
    this.access.check(ctx, 'createTopic', { topic: spec.name });
    return this.broker.createTopic(spec);
  }

  listTopics(ctx: RequestContext) {
    return this.broker.listTopics().filter((t) => this.access.allows(ctx, 'describe', { topic: t.name }));
  }

  describeTopic(ctx: RequestContext, name: string) {
    this.access.check(ctx, 'describe', { topic: name });
    return this.broker.describeTopic(name);
  }

  deleteTopic(ctx: RequestContext, name: string) {
    this.access.check(ctx, 'deleteTopic', { topic: name });
    return this.broker.deleteTopic(name);
  }

  async ensureTopic(ctx: RequestContext, name: string) {
    this.access.check(ctx, 'produce', { topic: name });
    return this.broker.ensureTopic(name);
  }

  async produce(ctx: RequestContext, topic: string, partition: number, batch: Uint8Array, acks: Acks) {
    this.access.check(ctx, 'produce', { topic });
    return this.broker.produce(topic, partition, batch, acks);
  }

  async fetch(ctx: RequestContext, topic: string, partition: number, offset: number, maxBytes: number) {
    this.access.check(ctx, 'fetch', { topic });
    return this.broker.fetch(topic, partition, offset, maxBytes);
  }

  async waitForRecords(ctx: RequestContext, topic: string, partition: number, offset: number, timeoutMs: number, signal?: AbortSignal) {
    this.access.check(ctx, 'fetch', { topic });
    return this.broker.waitForRecords(topic, partition, offset, timeoutMs, signal);
  }

  async commitOffsets(ctx: RequestContext, group: string, generationId: number, memberId: string, offsets: CommittedOffset[]) {
    this.access.check(ctx, 'groupCommit', { group });
    for (const topic of new Set(offsets.map((o) => o.topic))) this.access.check(ctx, 'groupCommit', { group, topic });
    return this.broker.groups.commitOffsets(group, generationId, memberId, offsets);
  }

  async fetchOffsets(ctx: RequestContext, group: string, topics?: string[]) {
    this.access.check(ctx, 'groupFetch', { group });
    for (const topic of topics ?? []) this.access.check(ctx, 'groupFetch', { group, topic });
    return this.broker.groups.fetchOffsets(group, topics);
  }

  describeGroup(ctx: RequestContext, group: string) {
    this.access.check(ctx, 'groupDescribe', { group });
    return this.broker.groups.describeGroup(group);
  }

  listGroups(ctx: RequestContext) {
    return this.broker.groups.listGroups().filter((g) => this.access.allows(ctx, 'groupDescribe', { group: g.group }));
  }

  consumerLag() {
    return this.broker.groups.lag();
  }

  async initProducer(ctx: RequestContext, producerId: number, producerEpoch: number) {
    this.access.check(ctx, 'initProducer', { cluster: true });
    return this.broker.initProducer(producerId, producerEpoch);
  }

  async subscribe(ctx: RequestContext, topic: string, partition: number) {
    assertTopicName(topic, this.broker.config.limits.maxTopicNameLength);
    this.access.check(ctx, 'subscribe', { topic });
    const info = await this.broker.ensureTopic(topic);
    this.broker.partition(topic, partition); // UNKNOWN_TOPIC_OR_PARTITION for a partition it does not have
    return info;
  }

  async offsetForTimestamp(ctx: RequestContext, topic: string, partition: number, timestampMs: number) {
    this.access.check(ctx, 'fetch', { topic });
    return this.broker.offsetForTimestamp(topic, partition, timestampMs);
  }

  grantCredit(ctx: RequestContext, topic: string, _partition: number, bytes: number): number {
    this.access.check(ctx, 'fetch', { topic });
    return bytes;
  }

  joinGroup(ctx: RequestContext, request: GroupJoinRequest, sink: GroupMemberSink): GroupAssignmentFrame {
    this.access.check(ctx, 'groupJoin', { group: request.group });
    return this.broker.groups.join({ ...request, clientId: ctx.clientId }, sink);
  }

  heartbeat(ctx: RequestContext, group: string, memberId: string, generationId: number) {
    this.access.check(ctx, 'groupJoin', { group });
    return this.broker.groups.heartbeat(group, memberId, generationId);
  }

  leaveGroup(ctx: RequestContext, group: string, memberId: string): void {
    this.access.check(ctx, 'groupJoin', { group });
    this.broker.groups.leave(group, memberId);
  }

  leaveAll(sink: GroupMemberSink): void {
    this.broker.groups.leaveAll(sink);
  }
}
