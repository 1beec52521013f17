/**
 * Test double of a broker for SDK unit tests (never shipped): speaks the
 * real frame codec over an in-memory Transport, keeps each partition as a
 * list of stored batches, de-duplicates idempotent produces by
 * (producerId, topic-partition, baseSequence), serves subscriptions with
 * credit, and exposes fault controls (drop connections, recreate a topic,
 * delete old records). Deliberately small; the real broker is tested in test/sdk.
 */
import { decodeFrame, encodeFrame } from './codec/frame-codec.ts';
import { ErrorTable, type ErrorName } from './codec/errors.ts';
import { readBatchHeader, setBaseOffset, type BatchHeader } from './codec/record-batch.ts';
import type { BrokerFrame, ClientFrame, StartPosition } from './codec/protocol.ts';
import type { Transport, TransportFactory } from './transport.ts';

interface StoredBatch { baseOffset: number; lastOffset: number; bytes: Uint8Array; maxTimestamp: number }
interface Partition { batches: StoredBatch[]; logStartOffset: number; logEndOffset: number; producers: Map<number, { nextSeq: number; seen: Map<number, number> }> }
interface Topic { topicId: string; partitions: Partition[] }
interface Sub { topic: string; partition: number; next: number; credit: number }

const code = (name: ErrorName): number => ErrorTable[name].code;

export class FakeBroker {
  readonly topics = new Map<string, Topic>();
  readonly sessions = new Set<FakeSession>();
  private nextProducerId = 1000;
  private topicCounter = 0;
  /** Records frames sent, for assertions. */
  recordsFramesSent = 0;
  /** Produce frames received (including duplicates). */
  producesReceived = 0;
  /** Raw batch bytes of every produce frame received, in order. */
  readonly producedBatches: Uint8Array[] = [];
  /** Partition of each entry of `producedBatches`. */
  readonly producedPartitions: number[] = [];
  /** When set, produce answers are withheld (to cut a connection mid-flight). */
  holdAcks = false;
  /** Announced in helloOk. */
  maxBatchBytes = 2 ** 20;

  constructor(public defaultPartitions = 3) {}

  /** A TransportFactory whose connections land on this broker. */
  get transport(): TransportFactory {
    return (_url, listener) => {
      const session = new FakeSession(this, listener);
      this.sessions.add(session);
      setImmediate(() => session.alive && listener.open());
      return session.clientSide;
    };
  }

  createTopic(name: string, partitions = this.defaultPartitions): Topic {
    const topic: Topic = { topicId: `id-${name}-${++this.topicCounter}`, partitions: [] };
    for (let p = 0; p < partitions; p++) topic.partitions.push({ batches: [], logStartOffset: 0, logEndOffset: 0, producers: new Map() });
    this.topics.set(name, topic);
    return topic;
  }

  topic(name: string): Topic {
    return this.topics.get(name) ?? this.createTopic(name);
  }

  /** Every record offset stored in a partition, with its batch bytes. */
  batches(topic: string, partition: number): StoredBatch[] {
    return this.topic(topic).partitions[partition].batches;
  }

  /** Retention: drop whole batches below `offset`. */
  deleteRecordsBefore(topic: string, partition: number, offset: number): void {
    const p = this.topic(topic).partitions[partition];
    p.batches = p.batches.filter((b) => b.lastOffset >= offset);
    p.logStartOffset = p.batches[0]?.baseOffset ?? p.logEndOffset;
  }

  /** Drops every connection (like a broker crash, without losing the log). */
  dropConnections(): void {
    for (const s of this.sessions) s.kill(1006, 'dropped');
  }

  allocateProducer(): number {
    return this.nextProducerId++;
  }

  append(name: string, partition: number, batch: Uint8Array, header: BatchHeader): { errorCode: number; baseOffset: number } {
    const p = this.topic(name).partitions[partition];
    if (p === undefined) return { errorCode: code('UNKNOWN_TOPIC_OR_PARTITION'), baseOffset: -1 };
    if (header.producerId >= 0) {
      const state = p.producers.get(header.producerId) ?? { nextSeq: 0, seen: new Map<number, number>() };
      p.producers.set(header.producerId, state);
      const dup = state.seen.get(header.baseSequence);
      if (dup !== undefined) return { errorCode: 0, baseOffset: dup };
      if (header.baseSequence !== state.nextSeq) return { errorCode: code('OUT_OF_ORDER_SEQUENCE_NUMBER'), baseOffset: -1 };
      state.nextSeq = header.baseSequence + header.recordCount;
      state.seen.set(header.baseSequence, p.logEndOffset);
    }
    const bytes = batch.slice();
    const baseOffset = p.logEndOffset;
    setBaseOffset(bytes, 0, baseOffset);
    p.batches.push({ baseOffset, lastOffset: baseOffset + header.lastOffsetDelta, bytes, maxTimestamp: header.maxTimestamp });
    p.logEndOffset = baseOffset + header.lastOffsetDelta + 1;
    for (const s of this.sessions) s.pump(name, partition);
    return { errorCode: 0, baseOffset };
  }
}

export class FakeSession {
  alive = true;
  readonly subs = new Map<string, Sub>();
  readonly clientSide: Transport;
  private helloDone = false;

  constructor(private readonly broker: FakeBroker, private readonly listener: Parameters<TransportFactory>[1]) {
    this.clientSide = {
      send: (data) => { const copy = data.slice(); setImmediate(() => this.alive && this.receive(copy)); },
      close: (c = 1000, reason = '') => this.kill(c, reason),
      bufferedAmount: 0,
    };
  }

  kill(c: number, reason: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.broker.sessions.delete(this);
    setImmediate(() => this.listener.close(c, reason));
  }

  private out(frame: BrokerFrame): void {
    const bytes = encodeFrame(frame);
    setImmediate(() => this.alive && this.listener.message(bytes));
  }

  private receive(data: Uint8Array): void {
    const decoded = decodeFrame(data);
    if (!decoded.ok) return this.kill(4002, decoded.message);
    const f = decoded.value as ClientFrame;
    if (!this.helloDone && f.type !== 'hello') return this.kill(4002, 'hello first');
    this.handle(f);
  }

  private handle(f: ClientFrame): void {
    const b = this.broker;
    switch (f.type) {
      case 'hello':
        this.helloDone = true;
        return this.out({ type: 'helloOk', version: 2, brokerId: 0, sessionId: 's', maxFrameBytes: 2 ** 20 + 65536, maxBatchBytes: b.maxBatchBytes, maxInflightProduce: 256, tokenExpiresAtMs: -1 });
      case 'metadataRequest': {
        const names = f.topics.length ? f.topics : [...b.topics.keys()];
        const topics = names.map((name) => {
          const t = b.topic(name);
          return { name, topicId: t.topicId, errorCode: 0, partitions: t.partitions.map((p, partition) => ({ partition, leader: 0, replicas: [0], isr: [0], logStartOffset: p.logStartOffset, highWatermark: p.logEndOffset })) };
        });
        return this.out({ type: 'metadata', requestId: f.requestId, brokers: [{ id: 0, url: 'fake' }], topics });
      }
      case 'initProducer': {
        const producerId = f.producerId >= 0 ? f.producerId : b.allocateProducer();
        return this.out({ type: 'initProducerOk', requestId: f.requestId, producerId, producerEpoch: Math.max(0, f.producerEpoch), errorCode: 0, producerSecret: `secret-${producerId}` });
      }
      case 'produce': {
        b.producesReceived++;
        b.producedBatches.push(f.batch.slice());
        b.producedPartitions.push(f.partition);
        if (b.holdAcks) return;
        const header = readBatchHeader(f.batch);
        const res = header.ok ? b.append(f.topic, f.partition, f.batch, header.value) : { errorCode: code('CORRUPT_MESSAGE'), baseOffset: -1 };
        const p = b.topic(f.topic).partitions[f.partition];
        return this.out({ type: 'produceAck', requestId: f.requestId, topic: f.topic, partition: f.partition, errorCode: res.errorCode, baseOffset: res.baseOffset, logAppendTimeMs: -1, logStartOffset: p?.logStartOffset ?? 0 });
      }
      case 'subscribe': return this.subscribe(f);
      case 'unsubscribe':
        this.subs.delete(`${f.topic}/${f.partition}`);
        return;
      case 'credit': {
        const sub = this.subs.get(`${f.topic}/${f.partition}`);
        if (sub) { sub.credit += f.bytes; this.pump(f.topic, f.partition); }
        return;
      }
      case 'ping': return this.out({ type: 'pong', nonce: f.nonce });
      case 'pong': return;
      default:
        return this.out({ type: 'error', requestId: 'requestId' in f ? f.requestId : 0, errorCode: code('INVALID_REQUEST'), message: `fake broker does not do ${f.type}`, retryAfterMs: 0 });
    }
  }

  private resolve(p: Partition, from: StartPosition): number {
    switch (from.kind) {
      case 'earliest': return p.logStartOffset;
      case 'latest': return p.logEndOffset;
      case 'offset': return from.offset;
      case 'timestamp': return p.batches.find((x) => x.maxTimestamp >= from.timestampMs)?.baseOffset ?? p.logEndOffset;
    }
  }

  private subscribe(f: Extract<ClientFrame, { type: 'subscribe' }>): void {
    const t = this.broker.topic(f.topic);
    const p = t.partitions[f.partition];
    const answer = { type: 'subscribed' as const, requestId: f.requestId, topic: f.topic, partition: f.partition, topicId: t.topicId, logStartOffset: p?.logStartOffset ?? 0, highWatermark: p?.logEndOffset ?? 0 };
    if (p === undefined) return this.out({ ...answer, errorCode: code('UNKNOWN_TOPIC_OR_PARTITION'), startOffset: -1 });
    if (f.topicId !== '' && f.topicId !== t.topicId) return this.out({ ...answer, errorCode: code('INCONSISTENT_TOPIC_ID'), startOffset: -1 });
    const start = this.resolve(p, f.from);
    if (start < p.logStartOffset || start > p.logEndOffset) return this.out({ ...answer, errorCode: code('OFFSET_OUT_OF_RANGE'), startOffset: -1 });
    this.subs.set(`${f.topic}/${f.partition}`, { topic: f.topic, partition: f.partition, next: start, credit: f.creditBytes });
    this.out({ ...answer, errorCode: 0, startOffset: start });
    this.pump(f.topic, f.partition);
  }

  /** Sends stored batches from the subscription position while credit lasts (one batch may overdraw). */
  pump(topic: string, partition: number): void {
    const sub = this.subs.get(`${topic}/${partition}`);
    if (!sub || !this.alive) return;
    const p = this.broker.topic(topic).partitions[partition];
    const chunk: Uint8Array[] = [];
    let size = 0;
    for (const batch of p.batches) {
      if (sub.credit <= 0 || size > 64 * 1024) break;
      if (batch.lastOffset < sub.next) continue;
      chunk.push(batch.bytes);
      size += batch.bytes.length;
      sub.credit -= batch.bytes.length;
      sub.next = batch.lastOffset + 1;
    }
    if (chunk.length === 0) return;
    const batches = new Uint8Array(size);
    let at = 0;
    for (const c of chunk) { batches.set(c, at); at += c.length; }
    this.broker.recordsFramesSent++;
    this.out({ type: 'records', topic, partition, highWatermark: p.logEndOffset, batches });
    if (sub.credit > 0) setImmediate(() => this.pump(topic, partition));
  }
}
