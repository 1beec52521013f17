/**
 * Test double of a broker for SDK unit tests (never shipped): speaks the
 * real frame codec over an in-memory Transport, keeps each partition as a
 * list of stored batches, de-duplicates idempotent produces as the real
 * broker does (server/src/log/producer-state.ts: the last `retainedBatches`
 * batches per producer and partition; a resend of one of them gets its
 * offsets back, one below them DUPLICATE_SEQUENCE_NUMBER, a gap
 * OUT_OF_ORDER_SEQUENCE_NUMBER, an unknown producer any sequence), re-claims
 * a producer id only with its secret, serves subscriptions with credit, and
 * exposes fault controls (drop or refuse connections, write without
 * answering, lose the log's tail, recreate a topic, delete old records;
 * for failover: URLs that are down, a broker id, coded produce and
 * initProducer refusals, a high watermark that lags the log; topics not
 * auto-created, metadata answers withheld). A minimal group coordinator:
 * every join or leave (or closed session) rebalances at once (round robin,
 * a new generation pushed to every member), commits are fenced by
 * generation and member, offsetFetch can be refused with codes.
 * Deliberately small; the real broker is tested in test/sdk.
 */
import { decodeFrame, encodeFrame } from './codec/frame-codec.ts';
import { ErrorTable, type ErrorName } from './codec/errors.ts';
import { readBatchHeader, setBaseOffset, type BatchHeader } from './codec/record-batch.ts';
import type { BrokerFrame, ClientFrame, CommittedOffset, StartPosition } from './codec/protocol.ts';
import type { Transport, TransportFactory } from './transport.ts';

interface StoredBatch { baseOffset: number; lastOffset: number; bytes: Uint8Array; maxTimestamp: number }
/** A batch the broker remembers for a producer: its sequences and base offset. */
interface RememberedBatch { base: number; last: number; offset: number }
interface Partition { batches: StoredBatch[]; logStartOffset: number; logEndOffset: number; producers: Map<number, RememberedBatch[]> }
interface Topic { topicId: string; partitions: Partition[] }
interface Sub { topic: string; partition: number; next: number; credit: number }
interface GroupMember { session: FakeSession; topics: string[] }
interface Group { generationId: number; members: Map<string, GroupMember>; offsets: Map<string, CommittedOffset> }

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
  /** Batches remembered per producer and partition (the real broker's PRODUCER_BATCHES_RETAINED). */
  retainedBatches = 5;
  /** When set, produces are written but never answered (the ack is lost). */
  loseAcks = false;
  /** When set, new connections are closed at once (the broker is down). */
  refuseConnections = false;
  /** Part of every producer secret; change it to make the broker refuse stored ids (its key was lost). */
  secretKey = 'k';
  /** Announced in helloOk: change it to play another broker of a cluster serving the same log. */
  brokerId = 0;
  /** Every URL dialled, in order, with Date.now() (the fake's connections land here whatever the URL). */
  readonly dialed: { url: string; atMs: number }[] = [];
  /** Dials to these URLs fail at once (that broker is down). */
  readonly downUrls = new Set<string>();
  /** The next produces are answered with these codes, one each, without appending (a leader election). */
  produceErrors: ErrorName[] = [];
  /** The next initProducer requests are answered with these codes, one each. */
  initProducerErrors: ErrorName[] = [];
  /** When set, subscriptions see at most this high watermark (a follower or new leader that has not learned it). */
  highWatermarkCap: number | undefined;
  /** When false, metadata and subscribe answer UNKNOWN_TOPIC_OR_PARTITION for a topic not created (auto-create off). */
  autoCreateTopics = true;
  /** When set, metadata requests are never answered (to cut a connection while they are outstanding). */
  holdMetadata = false;
  /** Reads and answers nothing at all, its sockets open (a SIGSTOPped or frozen broker). */
  frozen = false;
  /** Metadata requests received, by topic (a request for several topics counts once for each). */
  readonly metadataRequests = new Map<string, number>();
  /** The next offsetFetch requests are answered with these codes, one each (a coordinator moving). */
  offsetFetchErrors: ErrorName[] = [];
  readonly groups = new Map<string, Group>();
  private nextMemberId = 1;

  constructor(public defaultPartitions = 3) {}

  /** A TransportFactory whose connections land on this broker. */
  get transport(): TransportFactory {
    return (url, listener) => {
      const session = new FakeSession(this, listener);
      this.sessions.add(session);
      this.dialed.push({ url, atMs: Date.now() });
      if (this.refuseConnections || this.downUrls.has(url)) session.kill(1006, 'refused');
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

  group(name: string): Group {
    let g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = { generationId: 0, members: new Map(), offsets: new Map() }));
    return g;
  }

  /** Adds (memberId '') or re-adds a member and rebalances; returns its memberId. */
  joinGroup(name: string, memberId: string, session: FakeSession, topics: string[]): string {
    const id = memberId || `member-${this.nextMemberId++}`;
    this.group(name).members.set(id, { session, topics });
    return id;
  }

  /** A new generation: every partition of the members' topics round robin; pushed to each member but `answered` (it gets the join answer). */
  rebalance(name: string, answered?: { memberId: string; requestId: number }): void {
    const g = this.group(name);
    g.generationId++;
    const ids = [...g.members.keys()].sort();
    const topics = [...new Set([...g.members.values()].flatMap((m) => m.topics))].sort();
    const owned = new Map<string, Map<string, number[]>>(ids.map((id) => [id, new Map()]));
    let i = 0;
    for (const topic of topics) {
      const count = this.topics.get(topic)?.partitions.length ?? 0;
      for (let p = 0; p < count; p++) {
        const candidates = ids.filter((id) => g.members.get(id)!.topics.includes(topic));
        const id = candidates[i++ % candidates.length];
        const mine = owned.get(id)!;
        mine.set(topic, [...(mine.get(topic) ?? []), p]);
      }
    }
    for (const id of ids) {
      const assignments = [...owned.get(id)!].map(([topic, partitions]) => ({ topic, partitions }));
      const requestId = answered?.memberId === id ? answered.requestId : 0;
      g.members.get(id)!.session.send({ type: 'groupAssignment', requestId, group: name, memberId: id, generationId: g.generationId, errorCode: 0, assignments });
    }
  }

  /** The members a closed session held leave their groups (as the broker does when a socket closes). */
  dropMembers(session: FakeSession): void {
    for (const [name, g] of this.groups) {
      const gone = [...g.members].filter(([, m]) => m.session === session);
      for (const [id] of gone) g.members.delete(id);
      if (gone.length > 0) this.rebalance(name);
    }
  }

  allocateProducer(): number {
    return this.nextProducerId++;
  }

  secretOf(producerId: number): string {
    return `secret-${this.secretKey}-${producerId}`;
  }

  /** Loses every batch from `offset` on (and what the producers' windows remember of them): data loss. */
  truncate(topic: string, partition: number, offset: number): void {
    const p = this.topic(topic).partitions[partition];
    p.batches = p.batches.filter((b) => b.baseOffset < offset);
    p.logEndOffset = Math.min(p.logEndOffset, offset);
    for (const [id, window] of p.producers) p.producers.set(id, window.filter((b) => b.offset < offset));
  }

  append(name: string, partition: number, batch: Uint8Array, header: BatchHeader): { errorCode: number; baseOffset: number } {
    const p = this.topic(name).partitions[partition];
    if (p === undefined) return { errorCode: code('UNKNOWN_TOPIC_OR_PARTITION'), baseOffset: -1 };
    if (header.producerId >= 0) {
      // NB: no sequence wrap and no epochs here; the real broker does both.
      const window = p.producers.get(header.producerId) ?? [];
      p.producers.set(header.producerId, window);
      const last = header.baseSequence + header.lastOffsetDelta;
      const dup = window.find((b) => b.base === header.baseSequence && b.last === last);
      if (dup) return { errorCode: 0, baseOffset: dup.offset };
      const latest = window[window.length - 1];
      if (latest && header.baseSequence !== latest.last + 1) {
        return { errorCode: code(last < window[0].base ? 'DUPLICATE_SEQUENCE_NUMBER' : 'OUT_OF_ORDER_SEQUENCE_NUMBER'), baseOffset: -1 };
      }
      window.push({ base: header.baseSequence, last, offset: p.logEndOffset });
      if (window.length > this.retainedBatches) window.shift();
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
    this.broker.dropMembers(this);
    setImmediate(() => this.listener.close(c, reason));
  }

  /** Sends a frame to the client (unsolicited frames, group assignments). */
  send(frame: BrokerFrame): void {
    this.out(frame);
  }

  private out(frame: BrokerFrame): void {
    const bytes = encodeFrame(frame);
    setImmediate(() => this.alive && this.listener.message(bytes));
  }

  private receive(data: Uint8Array): void {
    if (this.broker.frozen) return;
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
        return this.out({ type: 'helloOk', version: 3, brokerId: b.brokerId, sessionId: 's', maxFrameBytes: 2 ** 20 + 65536, maxBatchBytes: b.maxBatchBytes, maxInflightProduce: 256, tokenExpiresAtMs: -1 });
      case 'metadataRequest': {
        const names = f.topics.length ? f.topics : [...b.topics.keys()];
        for (const name of names) b.metadataRequests.set(name, (b.metadataRequests.get(name) ?? 0) + 1);
        if (b.holdMetadata) return;
        const topics = names.map((name) => {
          if (!b.autoCreateTopics && !b.topics.has(name)) return { name, topicId: '', errorCode: code('UNKNOWN_TOPIC_OR_PARTITION'), partitions: [] };
          const t = b.topic(name);
          return { name, topicId: t.topicId, errorCode: 0, partitions: t.partitions.map((p, partition) => ({ partition, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0], logStartOffset: p.logStartOffset, highWatermark: p.logEndOffset })) };
        });
        return this.out({ type: 'metadata', requestId: f.requestId, brokers: [{ id: 0, url: 'fake' }], topics });
      }
      case 'initProducer': {
        const refusal = b.initProducerErrors.shift();
        if (refusal) return this.out({ type: 'initProducerOk', requestId: f.requestId, producerId: -1, producerEpoch: -1, errorCode: code(refusal), producerSecret: '' });
        const known = f.producerId >= 0 && f.producerSecret === b.secretOf(f.producerId);
        const producerId = known ? f.producerId : b.allocateProducer();
        return this.out({ type: 'initProducerOk', requestId: f.requestId, producerId, producerEpoch: known ? Math.max(0, f.producerEpoch) : 0, errorCode: 0, producerSecret: b.secretOf(producerId) });
      }
      case 'produce': {
        b.producesReceived++;
        b.producedBatches.push(f.batch.slice());
        b.producedPartitions.push(f.partition);
        if (b.holdAcks) return;
        const header = readBatchHeader(f.batch);
        const refusal = b.produceErrors.shift();
        const res = refusal ? { errorCode: code(refusal), baseOffset: -1 }
          : header.ok ? b.append(f.topic, f.partition, f.batch, header.value) : { errorCode: code('CORRUPT_MESSAGE'), baseOffset: -1 };
        if (b.loseAcks) return;
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
      case 'groupJoin': {
        const memberId = b.joinGroup(f.group, f.memberId, this, f.topics);
        return b.rebalance(f.group, { memberId, requestId: f.requestId });
      }
      case 'groupLeave':
        if (b.group(f.group).members.delete(f.memberId)) b.rebalance(f.group);
        return;
      case 'groupHeartbeat': return;
      case 'offsetFetch': {
        const refusal = b.offsetFetchErrors.shift();
        const offsets = [...b.group(f.group).offsets.values()].filter((o) => f.topics.includes(o.topic));
        return this.out({ type: 'offsetFetchResult', requestId: f.requestId, errorCode: refusal ? code(refusal) : 0, offsets: refusal ? [] : offsets });
      }
      case 'offsetCommit': {
        const g = b.group(f.group);
        const refusal = f.generationId < 0 ? null : !g.members.has(f.memberId) ? 'UNKNOWN_MEMBER_ID' : f.generationId !== g.generationId ? 'ILLEGAL_GENERATION' : null;
        if (!refusal) for (const o of f.offsets) g.offsets.set(`${o.topic}/${o.partition}`, o);
        return this.out({ type: 'offsetCommitAck', requestId: f.requestId, errorCode: refusal ? code(refusal) : 0 });
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
    const t = this.broker.autoCreateTopics ? this.broker.topic(f.topic) : this.broker.topics.get(f.topic) ?? { topicId: '', partitions: [] };
    const p = t.partitions[f.partition];
    const end = Math.min(p?.logEndOffset ?? 0, this.broker.highWatermarkCap ?? Infinity);
    const answer = { type: 'subscribed' as const, requestId: f.requestId, topic: f.topic, partition: f.partition, topicId: t.topicId, logStartOffset: p?.logStartOffset ?? 0, highWatermark: end };
    if (p === undefined) return this.out({ ...answer, errorCode: code('UNKNOWN_TOPIC_OR_PARTITION'), startOffset: -1 });
    if (f.topicId !== '' && f.topicId !== t.topicId) return this.out({ ...answer, errorCode: code('INCONSISTENT_TOPIC_ID'), startOffset: -1 });
    const start = this.resolve(p, f.from);
    if (start < p.logStartOffset || start > end) return this.out({ ...answer, errorCode: code('OFFSET_OUT_OF_RANGE'), startOffset: -1 });
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
