/**
 * Answers of a ready session's request frames that do not touch its
 * subscriptions: metadata, producer ids, produce, group offsets and
 * membership (join, heartbeat, leave). Each takes
 * the request layer and the session's RequestContext and resolves to the
 * answer frame (an error is an answer with its code); the session sends it
 * if it is still open. No handler holds a reference to the session.
 *
 * Invariant: a produce ack exists only after the request layer's produce
 * resolved, i.e. after the batch is durable.
 */
import {
  ErrorTable, RunnelError, type ErrorFrame, type ErrorName, type GroupAssignmentFrame, type GroupHeartbeatFrame, type GroupJoinFrame,
  type GroupLeaveFrame, type InitProducerOkFrame, type MetadataFrame, type MetadataRequestFrame,
  type OffsetCommitAckFrame, type OffsetCommitFrame, type OffsetFetchFrame, type OffsetFetchResultFrame, type ProduceAckFrame,
  type ProduceFrame, type TopicMetadata,
} from '@runnel/client/codec';
import { performance } from 'node:perf_hooks';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { BrokerApi, GroupMemberSink, ProducerProof, TopicDescription } from '../request/broker-api.ts';
import type { RequestContext } from '../request/request-context.ts';

export function errorOf(error: unknown): { name: ErrorName; message: string } {
  if (error instanceof RunnelError) return { name: error.errorName, message: error.message };
  return { name: 'UNKNOWN_SERVER_ERROR', message: error instanceof Error ? error.message : String(error) };
}

const codeOf = (error: unknown): number => ErrorTable[errorOf(error).name].code;

/**
 * Metadata of the named topics (all when none). A missing topic is created only when the request asks
 * for it (a producer about to send) and the broker and the principal allow it, and at most
 * `maxTopicsAutoCreatedPerRequest` of them: one request naming 2,000 unknown topics created 2,000 before.
 */
export async function answerMetadata(api: BrokerApi, ctx: RequestContext, frame: MetadataRequestFrame, brokerUrl: string, limits: Limits): Promise<MetadataFrame> {
  const names = frame.topics.length > 0 ? [...new Set(frame.topics)] : api.listTopics(ctx).map((t) => t.name);
  const topics: TopicMetadata[] = [];
  let created = 0;
  for (const name of names) {
    try {
      let described: TopicDescription;
      try {
        described = api.describeTopic(ctx, name);
      } catch (first) {
        // Only an unknown name is looked up again (a topic created through another broker a moment ago, then
        // auto-created if allowed); a refusal is answered as it is, and audited once.
        if (!(first instanceof RunnelError && first.errorName === 'UNKNOWN_TOPIC_OR_PARTITION')) throw first;
        await api.refreshTopic(ctx, name).catch(() => undefined);
        try {
          described = api.describeTopic(ctx, name);
        } catch (e) {
          const mayCreate = frame.allowAutoTopicCreation === 1 && created < limits.maxTopicsAutoCreatedPerRequest;
          if (!(e instanceof RunnelError && e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION') || !mayCreate) throw e;
          created++;
          await api.ensureTopic(ctx, name);
          described = api.describeTopic(ctx, name);
        }
      }
      const { topic: info, partitions } = described;
      topics.push({
        name, topicId: info.topicId, errorCode: 0,
        partitions: partitions.map((p) => ({
          partition: p.partition, leader: p.leader, leaderEpoch: p.leaderEpoch, replicas: p.replicas, isr: p.isr,
          logStartOffset: p.logStartOffset, highWatermark: p.highWatermark,
        })),
      });
    } catch (e) {
      topics.push({ name, topicId: '', errorCode: codeOf(e), partitions: [] });
    }
  }
  return { type: 'metadata', requestId: frame.requestId, brokers: [{ id: api.brokerId, url: brokerUrl }], topics };
}

export async function answerInitProducer(api: BrokerApi, ctx: RequestContext, requestId: number, producerId: number, producerEpoch: number, producerSecret: string): Promise<InitProducerOkFrame> {
  try {
    const r = await api.initProducer(ctx, producerId, producerEpoch, producerSecret);
    return { type: 'initProducerOk', requestId, producerId: r.producerId, producerEpoch: r.producerEpoch, errorCode: 0, producerSecret: r.producerSecret };
  } catch (e) {
    return { type: 'initProducerOk', requestId, producerId: -1, producerEpoch: -1, errorCode: codeOf(e), producerSecret: '' };
  }
}

export function produceAck(frame: ProduceFrame, errorCode: number, baseOffset = -1, logAppendTimeMs = -1, logStartOffset = -1): ProduceAckFrame {
  return { type: 'produceAck', requestId: frame.requestId, topic: frame.topic, partition: frame.partition, errorCode, baseOffset, logAppendTimeMs, logStartOffset };
}

/** null: acks 0 and written, nothing to answer. `batch` is the session's own copy of the frame's bytes. */
export async function answerProduce(api: BrokerApi, ctx: RequestContext, frame: ProduceFrame, batch: Uint8Array, producer: ProducerProof, metrics?: RunnelMetrics): Promise<ProduceAckFrame | null> {
  const startedMs = performance.now();
  try {
    const r = await api.produce(ctx, frame.topic, frame.partition, batch, frame.acks, producer);
    metrics?.produceLatency.observe({ transport: 'ws' }, (performance.now() - startedMs) / 1000);
    return frame.acks === 0 ? null : produceAck(frame, 0, r.baseOffset, r.logAppendTimeMs, r.logStartOffset);
  } catch (e) {
    return produceAck(frame, codeOf(e));
  }
}

export async function answerOffsetCommit(api: BrokerApi, ctx: RequestContext, frame: OffsetCommitFrame): Promise<OffsetCommitAckFrame> {
  let errorCode = 0;
  try {
    await api.commitOffsets(ctx, frame.group, frame.generationId, frame.memberId, frame.offsets);
  } catch (e) {
    errorCode = codeOf(e);
  }
  return { type: 'offsetCommitAck', requestId: frame.requestId, errorCode };
}

export async function answerOffsetFetch(api: BrokerApi, ctx: RequestContext, frame: OffsetFetchFrame): Promise<OffsetFetchResultFrame> {
  try {
    const offsets = await api.fetchOffsets(ctx, frame.group, frame.topics);
    return { type: 'offsetFetchResult', requestId: frame.requestId, errorCode: 0, offsets };
  } catch (e) {
    return { type: 'offsetFetchResult', requestId: frame.requestId, errorCode: codeOf(e), offsets: [] };
  }
}

function errorFrame(requestId: number, e: unknown): ErrorFrame {
  const { name, message } = errorOf(e);
  return { type: 'error', requestId, errorCode: ErrorTable[name].code, message: message.slice(0, 1000), retryAfterMs: 0 };
}

/** The join answer; a refusal before the coordinator answered (authorization, the group's coordinator unreachable) is an error frame of the request. */
export async function answerGroupJoin(api: BrokerApi, ctx: RequestContext, frame: GroupJoinFrame, sink: GroupMemberSink): Promise<GroupAssignmentFrame | ErrorFrame> {
  const { requestId, group, memberId, topics, sessionTimeoutMs } = frame;
  try {
    return await api.joinGroup(ctx, { requestId, group, memberId, topics, sessionTimeoutMs }, sink);
  } catch (e) {
    return errorFrame(requestId, e);
  }
}

/** Heartbeat answers that mean "join again": the member is told by an error assignment, which the SDK's group consumer acts on. */
const REJOIN: ReadonlySet<ErrorName> = new Set(['UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS']);

/**
 * What a heartbeat answers (heartbeats have no answer frame of their own): nothing when fine or when
 * the coordinator could not be asked this time (the next heartbeat asks again); for a member the
 * coordinator does not know, or one that must rejoin because its coordinator moved, an error
 * assignment for its member id (and the error frame single nodes always sent for UNKNOWN_MEMBER_ID).
 * NB: after a coordinator moves, the new coordinator knows no member: without the error assignment a
 * member would heartbeat into UNKNOWN_MEMBER_ID forever while holding partitions nobody else gets.
 */
export async function answerGroupHeartbeat(api: BrokerApi, ctx: RequestContext, frame: GroupHeartbeatFrame): Promise<(ErrorFrame | GroupAssignmentFrame)[]> {
  let code: ErrorName | null;
  try {
    code = await api.heartbeat(ctx, frame.group, frame.memberId, frame.generationId);
  } catch (e) {
    const { name } = errorOf(e);
    if (!REJOIN.has(name)) return [errorFrame(0, e)];
    code = name;
  }
  if (code === null || !REJOIN.has(code)) return [];
  const rejoin: GroupAssignmentFrame = {
    type: 'groupAssignment', requestId: 0, group: frame.group, memberId: frame.memberId, generationId: -1, errorCode: ErrorTable[code].code, assignments: [],
  };
  return code === 'UNKNOWN_MEMBER_ID' ? [errorFrame(0, new RunnelError(code, `member ${frame.memberId} is not in group ${frame.group}; join again`)), rejoin] : [rejoin];
}

export async function answerGroupLeave(api: BrokerApi, ctx: RequestContext, frame: GroupLeaveFrame): Promise<ErrorFrame | null> {
  try {
    await api.leaveGroup(ctx, frame.group, frame.memberId);
    return null;
  } catch (e) {
    return errorFrame(0, e);
  }
}
