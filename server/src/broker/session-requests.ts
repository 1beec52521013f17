/**
 * Request handlers of a ready session: metadata, producer ids, produce,
 * subscriptions and credit, group offsets and membership. Each answers
 * with its own frame carrying an error code; async handlers re-check that
 * the session is still open before answering.
 *
 * Invariants: a produce ack is sent only after the broker made the batch
 * durable; at most `maxInflightProducePerConnection` produces are pending
 * per connection (more are answered LIMIT_EXCEEDED, not queued); a
 * subscription starts at an offset within [logStartOffset, channel end].
 */
import {
  ErrorTable, RunnelError, type ClientFrame, type ErrorName, type MetadataRequestFrame, type OffsetCommitFrame,
  type ProduceFrame, type SubscribeFrame, type TopicMetadata,
} from '@runnel/client/codec';
import { performance } from 'node:perf_hooks';
import type { Session } from './session.ts';
import { Subscription } from './subscription.ts';
import { topicNameProblem } from './topic-name.ts';

function codeOf(error: unknown): { name: ErrorName; message: string } {
  if (error instanceof RunnelError) return { name: error.errorName, message: error.message };
  return { name: 'UNKNOWN_SERVER_ERROR', message: error instanceof Error ? error.message : String(error) };
}

export class SessionRequests {
  readonly inflight = new Set<Promise<void>>();
  /** Latest subscribe/unsubscribe request per topic-partition: stale async subscribes are dropped. */
  private readonly subscribeSeq = new Map<string, number>();
  private seq = 0;
  private inflightProduce = 0;

  constructor(private readonly session: Session) {}

  handle(frame: ClientFrame): void {
    const isAsync = frame.type === 'metadataRequest' || frame.type === 'initProducer' || frame.type === 'subscribe' || frame.type === 'offsetCommit' || frame.type === 'offsetFetch';
    if (isAsync && this.inflight.size >= 2 * this.session.deps.limits.maxInflightProducePerConnection) {
      return this.session.sendError(frame.requestId, 'LIMIT_EXCEEDED', `too many requests pending on this connection; wait for answers`);
    }
    switch (frame.type) {
      case 'metadataRequest': return this.track(this.metadata(frame));
      case 'initProducer': return this.track(this.initProducer(frame.requestId, frame.producerId, frame.producerEpoch));
      case 'produce': return this.produce(frame);
      case 'subscribe': return this.track(this.subscribe(frame));
      case 'unsubscribe': return this.unsubscribe(frame.topic, frame.partition);
      case 'credit': return this.credit(frame.topic, frame.partition, frame.bytes);
      case 'offsetCommit': return this.track(this.offsetCommit(frame));
      case 'offsetFetch': return this.track(this.offsetFetch(frame.requestId, frame.group, frame.topics));
      case 'groupJoin': {
        const { requestId, group, memberId, topics, sessionTimeoutMs } = frame;
        const answer = this.session.deps.broker.groups.join({ requestId, group, memberId, clientId: this.session.clientId, topics, sessionTimeoutMs }, this.session);
        return this.session.sendFrame(answer);
      }
      case 'groupHeartbeat': {
        const code = this.session.deps.broker.groups.heartbeat(frame.group, frame.memberId, frame.generationId);
        if (code === 'UNKNOWN_MEMBER_ID') this.session.sendError(0, code, `member ${frame.memberId} is not in group ${frame.group}; join again`);
        return;
      }
      case 'groupLeave': return this.session.deps.broker.groups.leave(frame.group, frame.memberId);
      case 'hello': case 'ping': case 'pong': return; // handled by Session
      default: return;
    }
  }

  private track(work: Promise<void>): void {
    const p = work.catch((e: unknown) => {
      const { name, message } = codeOf(e);
      if (!this.session.isClosed) this.session.sendError(0, name, message);
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async metadata(frame: MetadataRequestFrame): Promise<void> {
    const { broker } = this.session.deps;
    const names = frame.topics.length > 0 ? [...new Set(frame.topics)] : broker.listTopics().map((t) => t.name);
    const topics: TopicMetadata[] = [];
    for (const name of names) {
      try {
        const info = await broker.ensureTopic(name);
        const { partitions } = broker.describeTopic(info.name);
        topics.push({
          name, topicId: info.topicId, errorCode: 0,
          partitions: partitions.map((p) => ({ partition: p.partition, leader: p.leader, replicas: p.replicas, isr: p.isr, logStartOffset: p.logStartOffset, highWatermark: p.highWatermark })),
        });
      } catch (e) {
        topics.push({ name, topicId: '', errorCode: ErrorTable[codeOf(e).name].code, partitions: [] });
      }
    }
    if (this.session.isClosed) return;
    this.session.sendFrame({ type: 'metadata', requestId: frame.requestId, brokers: [{ id: broker.config.brokerId, url: this.session.deps.brokerUrl }], topics });
  }

  private async offsetFetch(requestId: number, group: string, topics: string[]): Promise<void> {
    const offsets = await this.session.deps.broker.groups.fetchOffsets(group, topics);
    if (!this.session.isClosed) this.session.sendFrame({ type: 'offsetFetchResult', requestId, errorCode: 0, offsets });
  }

  private async initProducer(requestId: number, producerId: number, producerEpoch: number): Promise<void> {
    try {
      const r = await this.session.deps.broker.initProducer(producerId, producerEpoch);
      if (!this.session.isClosed) this.session.sendFrame({ type: 'initProducerOk', requestId, producerId: r.producerId, producerEpoch: r.producerEpoch, errorCode: 0 });
    } catch (e) {
      if (!this.session.isClosed) this.session.sendFrame({ type: 'initProducerOk', requestId, producerId: -1, producerEpoch: -1, errorCode: ErrorTable[codeOf(e).name].code });
    }
  }

  private produce(frame: ProduceFrame): void {
    const { broker, limits, metrics } = this.session.deps;
    const ack = (errorCode: number, baseOffset: number, logAppendTimeMs: number, logStartOffset: number): void => {
      if (frame.acks === 0 && errorCode === 0) return;
      if (!this.session.isClosed) this.session.sendFrame({ type: 'produceAck', requestId: frame.requestId, topic: frame.topic, partition: frame.partition, errorCode, baseOffset, logAppendTimeMs, logStartOffset });
    };
    if (this.session.isShuttingDown) return ack(ErrorTable.SHUTTING_DOWN.code, -1, -1, -1);
    if (this.inflightProduce >= limits.maxInflightProducePerConnection) return ack(ErrorTable.LIMIT_EXCEEDED.code, -1, -1, -1);
    const batch = frame.batch.slice(); // copy out of uWS's message buffer before any await
    const startedMs = performance.now();
    this.inflightProduce++;
    this.track(broker.produce(frame.topic, frame.partition, batch, frame.acks).finally(() => this.inflightProduce--).then(
      (r) => {
        metrics?.produceLatency.observe({ transport: 'ws' }, (performance.now() - startedMs) / 1000);
        let logStartOffset = 0;
        try { logStartOffset = broker.partitionLog(frame.topic, frame.partition).logStartOffset; } catch { /* deleted meanwhile */ }
        ack(0, r.baseOffset, r.logAppendTimeMs, logStartOffset);
      },
      (e: unknown) => ack(ErrorTable[codeOf(e).name].code, -1, -1, -1),
    ));
  }

  private async subscribe(frame: SubscribeFrame): Promise<void> {
    const { session } = this;
    const { broker, fanout, limits, metrics } = session.deps;
    const key = `${frame.topic}\0${frame.partition}`;
    const mySeq = ++this.seq;
    this.subscribeSeq.set(key, mySeq);
    const answer = (errorCode: number, topicId = '', startOffset = -1, logStartOffset = -1, highWatermark = -1): void => {
      if (!session.isClosed) session.sendFrame({ type: 'subscribed', requestId: frame.requestId, topic: frame.topic, partition: frame.partition, errorCode, topicId, startOffset, logStartOffset, highWatermark });
    };
    const problem = topicNameProblem(frame.topic, limits.maxTopicNameLength);
    if (problem) return answer(ErrorTable.INVALID_TOPIC_EXCEPTION.code);
    if (!Number.isSafeInteger(frame.creditBytes) || frame.creditBytes < 0) return answer(ErrorTable.INVALID_REQUEST.code);
    if (frame.creditBytes > limits.maxCreditBytes) return answer(ErrorTable.LIMIT_EXCEEDED.code);
    if (!session.subscriptions.has(key) && session.subscriptions.size >= limits.maxSubscriptionsPerConnection) return answer(ErrorTable.LIMIT_EXCEEDED.code);
    try {
      await broker.ensureTopic(frame.topic);
    } catch (e) {
      return answer(ErrorTable[codeOf(e).name].code);
    }
    const start = await this.resolveStart(frame);
    if (this.subscribeSeq.get(key) !== mySeq || session.isClosed) return; // superseded meanwhile
    const target = fanout.get(frame.topic, frame.partition);
    if (!target) return answer(ErrorTable.UNKNOWN_TOPIC_OR_PARTITION.code);
    const { topicId } = target.topic;
    const logStartOffset = target.log.logStartOffset;
    const end = target.live.lastPublishedEnd;
    if (frame.topicId !== '' && frame.topicId !== topicId) return answer(ErrorTable.INCONSISTENT_TOPIC_ID.code, topicId, -1, logStartOffset, end);
    const offset = start === 'earliest' ? logStartOffset : start === 'latest' ? end : Math.max(start, frame.from.kind === 'timestamp' ? logStartOffset : start);
    if (offset < logStartOffset || offset > end) return answer(ErrorTable.OFFSET_OUT_OF_RANGE.code, topicId, -1, logStartOffset, end);
    if (session.subscriptions.size >= limits.maxSubscriptionsPerConnection && !session.subscriptions.has(key)) return answer(ErrorTable.LIMIT_EXCEEDED.code);
    this.removeSubscription(key);
    answer(0, topicId, offset, logStartOffset, end);
    const sub = new Subscription(session, target, offset, frame.creditBytes);
    session.subscriptions.set(key, sub);
    metrics?.subscriptions.inc();
    target.add(sub);
  }

  /** Start position as an offset, 'earliest'/'latest' (resolved against the log at the last moment), or a pending timestamp lookup. */
  private resolveStart(frame: SubscribeFrame): number | 'earliest' | 'latest' | Promise<number | 'latest'> {
    const from = frame.from;
    switch (from.kind) {
      case 'earliest': return 'earliest';
      case 'latest': return 'latest';
      case 'offset': return from.offset;
      case 'timestamp': {
        const log = this.session.deps.fanout.get(frame.topic, frame.partition)?.log;
        if (!log) return 'latest';
        return log.offsetForTimestamp(from.timestampMs).then((o) => (o === null ? 'latest' : o), () => 'latest' as const);
      }
      default: return 'latest';
    }
  }

  private unsubscribe(topic: string, partition: number): void {
    const key = `${topic}\0${partition}`;
    this.subscribeSeq.set(key, ++this.seq);
    this.removeSubscription(key);
  }

  private removeSubscription(key: string): void {
    const sub = this.session.subscriptions.get(key);
    if (!sub) return;
    this.session.subscriptions.delete(key);
    sub.fanout.remove(sub);
    this.session.deps.metrics?.subscriptions.dec();
  }

  private credit(topic: string, partition: number, bytes: number): void {
    const sub = this.session.subscriptions.get(`${topic}\0${partition}`);
    const max = this.session.deps.limits.maxCreditBytes;
    if (!Number.isSafeInteger(bytes) || bytes <= 0) return this.session.rejectFrame('INVALID_REQUEST', `credit must be 1..${max} bytes`);
    if (bytes > max) return this.session.sendError(0, 'LIMIT_EXCEEDED', `credit grant ${bytes} is above maxCreditBytes ${max}`);
    if (!sub) return; // credit racing an unsubscribe: harmless
    sub.fanout.addCredit(sub, bytes);
  }

  private async offsetCommit(frame: OffsetCommitFrame): Promise<void> {
    let errorCode = 0;
    try {
      await this.session.deps.broker.groups.commitOffsets(frame.group, frame.generationId, frame.memberId, frame.offsets);
    } catch (e) {
      errorCode = ErrorTable[codeOf(e).name].code;
    }
    if (!this.session.isClosed) this.session.sendFrame({ type: 'offsetCommitAck', requestId: frame.requestId, errorCode });
  }
}
