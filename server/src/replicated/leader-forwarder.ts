/**
 * Both ends of forwarded requests (forward-protocol.ts): `PeerForwarder`
 * sends a produce, read, timestamp or producer-state lookup to the partition's leader over
 * the internal links; `serveForwarded` answers them on the leader from its
 * local replica. A forwarded batch is checked again on the leader (header
 * and CRC, cheap) because the log trusts only a header validated for exactly
 * the bytes it stores; ownership of the producer id was checked where the
 * client is connected.
 */
import { RunnelError, validateBatch } from '@runnel/client/codec';
import { nativeCrc } from '../log/partition-log.ts';
import type { AppendOptions, AppendResult, Partition, PartitionReadResult } from '../partition/partition.ts';
import type { ProducerEntry } from '../log/producer-state.ts';
import type { LeaderForwarder } from './cluster-partition.ts';
import {
  ForwardType, decodeProduceAnswer, decodeProduceForward, decodeProducerStateAnswer, decodeProducerStateForward, decodeReadAnswer, decodeReadForward,
  decodeTimestampAnswer, decodeTimestampForward, encodeErrorAnswer, encodeProduceAnswer, encodeProduceForward, encodeProducerStateAnswer,
  encodeProducerStateForward, encodeReadAnswer, encodeReadForward, encodeTimestampAnswer, encodeTimestampForward,
} from './forward-protocol.ts';

/** The request side of the internal links (server/src/replication/peer-links.ts). */
export interface PeerRequester {
  request(brokerId: number, type: number, body: Uint8Array, timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** The serving side of the internal protocol (server/src/replication/replication-server.ts). */
export interface RequestHandlers {
  handle(type: number, handler: (body: Uint8Array, fromBrokerId: number) => Promise<Uint8Array>): void;
}

export interface ForwardLimits {
  /** A forwarded produce waits at most this for the leader's answer (acks=all includes replication). */
  forwardTimeoutMs: number;
  maxReadBytes: number;
  /** Longest long poll a remote read may ask for. */
  maxLongPollMs: number;
  maxBatchBytes: number;
}

export class PeerForwarder implements LeaderForwarder {
  constructor(private readonly links: PeerRequester, private readonly limits: ForwardLimits) {}

  async produce(leader: number, topicId: string, partition: number, batch: Uint8Array, acks: AppendOptions['acks'], signal?: AbortSignal): Promise<AppendResult> {
    const answer = await this.links.request(leader, ForwardType.produce, encodeProduceForward({ topicId, partition, acks, batch }), this.limits.forwardTimeoutMs, signal);
    return decodeProduceAnswer(answer);
  }

  async read(leader: number, topicId: string, partition: number, offset: number, maxBytes: number, waitMs: number): Promise<PartitionReadResult> {
    const body = encodeReadForward({ topicId, partition, offset, maxBytes: Math.min(maxBytes, this.limits.maxReadBytes), waitMs: Math.min(waitMs, this.limits.maxLongPollMs) });
    return decodeReadAnswer(await this.links.request(leader, ForwardType.read, body, this.limits.forwardTimeoutMs + waitMs));
  }

  async offsetForTimestamp(leader: number, topicId: string, partition: number, timestampMs: number): Promise<number | null> {
    return decodeTimestampAnswer(await this.links.request(leader, ForwardType.offsetForTimestamp, encodeTimestampForward({ topicId, partition, timestampMs }), this.limits.forwardTimeoutMs));
  }

  async producerState(leader: number, topicId: string, partition: number, producerId: number): Promise<ProducerEntry | undefined> {
    const answer = await this.links.request(leader, ForwardType.producerState, encodeProducerStateForward({ topicId, partition, producerId }), this.limits.forwardTimeoutMs);
    return decodeProducerStateAnswer(answer, producerId);
  }
}

/** Partitions this broker holds a replica of, by topic id (only its leader answers forwarded produces). */
export type ReplicaLookup = (topicId: string, partition: number) => (Partition & { readonly role: 'leader' | 'follower' | 'none' }) | undefined;

/** Registers the leader-side handlers. Every answer is a value or an error answer: a handler never throws. */
export function serveForwarded(server: RequestHandlers, replicas: ReplicaLookup, limits: ForwardLimits): void {
  const answer = (fn: (body: Uint8Array) => Promise<Uint8Array>) => (body: Uint8Array) => fn(body).catch((e: unknown) => encodeErrorAnswer(e));
  const leaderOf = (topicId: string, partition: number) => {
    const replica = replicas(topicId, partition);
    if (!replica) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `this broker holds no replica of topic id ${topicId} partition ${partition}`);
    return replica;
  };
  server.handle(ForwardType.produce, answer(async (body) => {
    const req = decodeProduceForward(body);
    const replica = leaderOf(req.topicId, req.partition);
    if (replica.role !== 'leader') throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `this broker is not the leader of topic id ${req.topicId} partition ${req.partition} (it is ${replica.role})`);
    // The log writes the base offset into the batch in place: give it its own copy, not a view into the frame.
    const batch = req.batch.slice();
    const header = validateBatch(batch, 0, { maxBatchBytes: limits.maxBatchBytes }, nativeCrc);
    if (!header.ok) throw new RunnelError(header.code, header.message);
    return encodeProduceAnswer(await replica.append(batch, { acks: req.acks, header: header.value }));
  }));
  server.handle(ForwardType.read, answer(async (body) => {
    const req = decodeReadForward(body);
    const replica = leaderOf(req.topicId, req.partition);
    if (req.waitMs > 0 && replica.highWatermark <= req.offset) await replica.waitForVisible(req.offset, Math.min(req.waitMs, limits.maxLongPollMs));
    if (req.offset < replica.logStartOffset || req.offset > replica.highWatermark) {
      throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${req.offset} is outside [${replica.logStartOffset}, ${replica.highWatermark}]`);
    }
    if (req.offset === replica.highWatermark) {
      return encodeReadAnswer({ batches: new Uint8Array(0), firstOffset: req.offset, nextOffset: req.offset, highWatermark: replica.highWatermark, logStartOffset: replica.logStartOffset });
    }
    return encodeReadAnswer(await replica.read(req.offset, Math.max(1, Math.min(req.maxBytes, limits.maxReadBytes))));
  }));
  server.handle(ForwardType.offsetForTimestamp, answer(async (body) => {
    const req = decodeTimestampForward(body);
    return encodeTimestampAnswer(await leaderOf(req.topicId, req.partition).offsetForTimestamp(req.timestampMs));
  }));
  // The replica refuses NOT_LEADER_OR_FOLLOWER unless it leads: the state an append is checked against is the leader's.
  server.handle(ForwardType.producerState, answer(async (body) => {
    const req = decodeProducerStateForward(body);
    return encodeProducerStateAnswer(await leaderOf(req.topicId, req.partition).producerState(req.producerId));
  }));
}
