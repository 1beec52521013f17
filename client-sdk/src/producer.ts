/**
 * Producer driver: turns `send` calls into outbox records, freezes and
 * persists batches, sends them over the connection and settles the send
 * promises from the acks. Idempotent (KIP-98): one producer id + epoch per
 * client, persisted in the outbox store and reused after a reload, and a
 * sequence per partition, so every resend — after a reconnect, a reload or a
 * beacon — is de-duplicated by the broker and answered with the original offsets.
 *
 * Ordering contract per record: durable mode persists the record before
 * `queued` resolves; a frozen batch is persisted (with the next sequence)
 * before its first send; it is deleted from the store only after its ack,
 * and per partition a batch is (re)sent only while it, the stored batches
 * before it and the acknowledged ones whose delete has not committed are at
 * most PRODUCER_BATCHES_RETAINED (Outbox.sendable), so every resend after a
 * reload is one the broker recognises. A batch that may be in the log keeps
 * its producer id, epoch and sequence for good: when the broker stops taking
 * that identity its records fail (outcome unknown) instead of being written
 * again under a new one. Nor do later batches move down onto its sequences
 * when it is refused (a refusal is of that attempt only): the broker would
 * answer the next as a duplicate of it. DUPLICATE_SEQUENCE_NUMBER (46: already written,
 * below the broker's remembered window) acknowledges with offset −1.
 */
import { ErrorCode, RunnelError, errorNameOf, isRetryable, type ErrorName } from './codec/error-codes.ts';
import { producerFrames } from './codec/frame-schema.ts';
import type { InitProducerOkFrame, MetadataFrame, ProduceAckFrame } from './codec/protocol.ts';
import { Condition } from './condition.ts';
import type { Connection } from './connection.ts';
import { DEFAULT_MAX_INFLIGHT_PRODUCE, type ClientLimits } from './limits.ts';
import { Outbox, recordSize, tpKey, type BatchState } from './outbox.ts';
import { Partitioner } from './partitioner.ts';
import type { RandomSource } from './reconnect-policy.ts';
import type { FrozenBatch, OutboxRecord, OutboxStore } from './storage.ts';
import { ValueArena, encodeText, type Topic, type TopicRef } from './topic.ts';
import { VERBOSE } from '#verbose';

export type Durability = 'durable' | 'memory';

export interface SendOptions {
  /** Records with the same key go to the same partition, in order (murmur2, like Kafka). */
  key?: string | null;
  headers?: Record<string, string>;
  /** Explicit partition (skips the partitioner). */
  partition?: number;
  /** 'durable' (default): stored before `queued` resolves, survives reload/crash. 'memory': lost on reload until frozen. */
  durability?: Durability;
  timestampMs?: number;
  /**
   * Aborting before the record is acknowledged rejects the send with ABORTED (1007, `cause`: the signal's
   * reason). A record not in a batch yet (waiting for its topic's metadata or lingering) is also withdrawn:
   * it leaves the outbox and storage and is never sent. Once it is in a batch (which may have been sent and
   * be in the log) the abort only stops the wait: the record stays and is delivered like any other.
   */
  signal?: AbortSignal;
}

export interface FlushOptions {
  /** Aborting rejects the wait with ABORTED (1007); the records keep going (abort each send to withdraw it). */
  signal?: AbortSignal;
}

const abortError = (signal: AbortSignal, what: string): RunnelError => new RunnelError('ABORTED', VERBOSE ? `${what} aborted` : '', { cause: signal.reason });

export interface RecordMetadata { topic: string; partition: number; offset: number }

/** Resolves when the broker acknowledged the record; `queued` when it is safely in the outbox. */
export type SendResult = Promise<RecordMetadata> & { queued: Promise<void> };

interface Waiter { resolve(m: RecordMetadata): void; reject(e: unknown): void }

/**
 * Who waits for an admitted record's answer, under a symbol key on the record itself (no map entry per record; a
 * store's structured clone or JSON of the record leaves it out). Absent once settled, and on loaded records.
 */
const WAITER = Symbol();
type Waited = OutboxRecord & { [WAITER]?: Waiter };

const RESEQUENCE: ErrorName[] = ['UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH'];

/** Shared by every send without options or headers (nothing on the hot path is allocated per record beyond the record). */
const NO_OPTIONS: SendOptions = Object.freeze({});
const NO_HEADERS: OutboxRecord['headers'] = Object.freeze([]) as unknown as OutboxRecord['headers'];
/** `queued` of a memory-durability record: nothing to wait for. */
const STORED = Promise.resolve();
/** A topic named by a string: no schema. NB: reused for every such send (ValueArena.encode is synchronous). */
const SCHEMALESS: { -readonly [K in keyof Topic<unknown, unknown>]: Topic<unknown, unknown>[K] } = { name: '', schema: null, onInvalid: 'error' };

export class Producer {
  readonly #outbox: Outbox;
  readonly #partitioner: Partitioner;
  readonly #random: RandomSource;
  /** Record values are views of its slabs (no ArrayBuffer per record). */
  readonly #values = new ValueArena();
  /** Notified whenever records settle or leave the outbox (flush, drained). */
  readonly #settled = new Condition();
  readonly #partitionCounts = new Map<string, number>();
  /**
   * Records waiting for their topic's partition count, per topic, in routing order with when they started
   * waiting (sent, or loaded from the outbox; nondecreasing along a topic's list).
   * Invariant: while a topic is here, one metadata request covers it (#metadataRequested: in flight or
   * its retry armed), or the connection is down and the next `connected` asks (issue 13: not one per record).
   */
  readonly #unrouted = new Map<string, [record: OutboxRecord, sinceMs: number][]>();
  #metadataRequested = false;
  #metadataTimer: ReturnType<typeof setTimeout> | undefined;
  /** Consecutive metadata answers with a topic still missing (the exponent of the retry backoff). */
  #metadataAttempt = 0;
  #toPersist: OutboxRecord[] = [];
  #persistScheduled: Promise<void> | null = null;
  /** The last record write issued (store writes apply in call order: when it is done, every earlier one is). */
  #recordWrite: Promise<void> = Promise.resolve();
  #nextRecordId = 1;
  #nextBatchId = 1;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** A freeze of idle partitions is queued for the end of this tick (see #route). */
  #freezeQueued = false;
  /** The stored outbox is loaded (`ready` resolved); sends made meanwhile that still wait for it. */
  #loaded = false;
  #behindReady = 0;
  readonly #pausedUntil = new Map<string, number>();
  /** Consecutive retryable errors per partition (the exponent of its backoff); cleared by an ack. */
  readonly #retries = new Map<string, number>();
  /**
   * Partitions whose head batch was acknowledged on this connection since their last error: only they
   * pipeline (up to maxInflightPerPartition). Every other partition sends its head alone and waits for the
   * answer, so a retried batch is never overtaken by a later one (a broker that does not know the producer
   * yet, e.g. a new leader, would take the later one first: reordered).
   */
  readonly #pipelined = new Set<string>();
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #claimTimer: ReturnType<typeof setTimeout> | undefined;
  #initializing: Promise<void> | null = null;
  /** The producer id was claimed (initProducer answered) on the current connection: only then are batches sent. */
  #claimed = false;
  #closed = false;
  /** Resolves once the stored outbox is loaded; every send waits for it, in call order. */
  readonly ready: Promise<void>;

  constructor(
    private readonly conn: Connection,
    private readonly store: OutboxStore,
    private readonly limits: ClientLimits,
    random: RandomSource,
    private readonly onError: (error: RunnelError) => void,
  ) {
    conn.speak(producerFrames);
    this.#outbox = new Outbox(limits);
    this.#partitioner = new Partitioner(random);
    this.#random = random;
    this.ready = this.#restore().then(() => { this.#loaded = true; });
    // NB: a failed load is reported on every connection (#initializeWith) and rejects every send; this only keeps it from being unhandled before then.
    this.ready.catch(() => {});
    conn.on('connected', () => {
      // NB: synchronously, so nothing is sent on the new connection before the id is claimed on it.
      this.#claimed = false;
      this.#pipelined.clear();
      this.#pausedUntil.clear(); // another broker: resend at once
      void this.#handleConnected();
    });
    if (conn.state === 'connected') void this.#handleConnected();
  }

  /** Records accepted and not yet acknowledged (pending + frozen). */
  get outboxSize(): { records: number; bytes: number } {
    return { records: this.#outbox.recordCount, bytes: this.#outbox.byteCount };
  }

  /**
   * Sends one record; resolves with its partition and offset once acknowledged.
   * @example const { partition, offset } = await client.producer.send(pageViews, { path: '/' }, { key: userId });
   * @example await client.producer.send('events', { a: 1 }).queued; // safely in the outbox
   */
  send<In>(topicRef: TopicRef<In, any>, value: In, options: SendOptions = NO_OPTIONS): SendResult {
    let queued!: Promise<void>;
    const result = new Promise<RecordMetadata>((resolve, reject) => {
      queued = this.#accept(topicRef, value, options, { resolve, reject });
    }) as SendResult;
    result.queued = queued;
    return result;
  }

  /** Returns `queued`; NB: every promise it returns has a rejection handler already (no unhandled rejection if the caller ignores it). */
  #accept<In>(topicRef: TopicRef<In, any>, value: In, options: SendOptions, waiter: Waiter): Promise<void> {
    if (this.#closed) return this.#refuse(waiter, new RunnelError('NOT_CONNECTED', VERBOSE ? 'client is closed' : ''));
    const signal = options.signal;
    if (signal?.aborted) return this.#refuse(waiter, abortError(signal, 'send'));
    let record: OutboxRecord, textBytes: number;
    try {
      let topic: Topic<In, unknown>;
      if (typeof topicRef === 'string') {
        SCHEMALESS.name = topicRef;
        topic = SCHEMALESS as Topic<In, unknown>;
      } else topic = topicRef;
      const headers = options.headers ? Object.entries(options.headers).map(([key, v]) => ({ key, value: encodeText(v) })) : NO_HEADERS;
      record = {
        id: 0, topic: topic.name, partition: options.partition ?? -1, key: options.key == null ? null : encodeText(options.key),
        value: null, headers, timestampMs: options.timestampMs ?? Date.now(),
      };
      // NB: the value's bytes are written at the end of the tick (#flushRecordWrites), before anything reads them.
      textBytes = this.#values.encode(topic, value, record);
    } catch (error) {
      return this.#refuse(waiter, error);
    }
    if (signal) waiter = this.#abortable(record, waiter, signal);
    (record as Waited)[WAITER] = waiter;
    // Loaded, and no earlier send still waits for the load: admitted now (call order is kept).
    if (this.#loaded && this.#behindReady === 0) {
      try {
        return this.#admit(record, textBytes, options);
      } catch (error) {
        return this.#refuse(waiter, error);
      }
    }
    this.#behindReady++;
    const queued = this.ready.then(
      () => { this.#behindReady--; return this.#admit(record, textBytes, options); },
      (error) => { this.#behindReady--; throw error; },
    ).catch((error) => this.#refuse(waiter, error));
    queued.catch(() => {});
    return queued;
  }

  /**
   * Puts a record in the outbox and routes it; returns `queued`. Throws OUTBOX_FULL. `textBytes`: its value's
   * length as ValueArena.encode gave it (exact once written; a longer UTF-8 is counted when it is: #flushRecordWrites).
   */
  #admit(record: OutboxRecord, textBytes: number, options: SendOptions): Promise<void> {
    if (options.signal?.aborted) throw abortError(options.signal, 'send'); // while the outbox loaded
    const size = recordSize(record, record.value?.length ?? textBytes);
    if (this.#outbox.isFull(size)) throw new RunnelError('OUTBOX_FULL', VERBOSE ? `at maxOutboxRecords ${this.limits.maxOutboxRecords} or maxOutboxBytes ${this.limits.maxOutboxBytes}` : '');
    record.id = this.#nextRecordId++;
    this.#outbox.track(record, size);
    const persisted = options.durability === 'memory' ? STORED : this.#persistRecord(record);
    this.#route(record);
    return persisted;
  }

  /** `waiter`, settled by an abort of `signal` too (see SendOptions.signal); the listener goes when it settles. */
  #abortable(record: OutboxRecord, waiter: Waiter, signal: AbortSignal): Waiter {
    const onAbort = (): void => {
      const error = abortError(signal, 'send');
      // NB: id 0: not admitted yet (the outbox is loading; #admit refuses it); in a batch: only the wait stops.
      if (record.id !== 0 && this.#withdraw(record)) this.#drop([record], error);
      else this.#reject(record, error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return {
      resolve(m) { signal.removeEventListener('abort', onAbort); waiter.resolve(m); },
      reject(e) { signal.removeEventListener('abort', onAbort); waiter.reject(e); },
    };
  }

  /** Takes `record` out of whatever holds it before a batch (metadata wait, accumulator); false once it is in a batch. */
  #withdraw(record: OutboxRecord): boolean {
    const waiting = this.#unrouted.get(record.topic);
    const at = waiting?.findIndex(([r]) => r === record) ?? -1;
    if (at >= 0) {
      waiting!.splice(at, 1);
      if (waiting!.length === 0) this.#unrouted.delete(record.topic);
    } else if (!this.#outbox.withdraw(record)) return false;
    // NB: its store write may still be coalescing: issued first, so the delete (#drop) applies after it.
    void this.#flushRecordWrites();
    return true;
  }

  #refuse(waiter: Waiter, error: unknown): Promise<never> {
    waiter.reject(error);
    const refused = Promise.reject(error);
    refused.catch(() => {});
    return refused;
  }

  /**
   * Coalesces record writes of one tick into one store call; resolves once the write carrying `record`
   * is done (NB: a freeze may have issued it before this tick's flush: then that write, or a later one).
   */
  #persistRecord(record: OutboxRecord): Promise<void> {
    this.#toPersist.push(record);
    if (this.#persistScheduled) return this.#persistScheduled;
    // NB: one promise per tick, shared by its records' `queued` (and handled once: a failed write rejects them all).
    const scheduled = (this.#persistScheduled = Promise.resolve().then(() => this.#flushRecordWrites()));
    scheduled.catch(() => {});
    return scheduled;
  }

  /** NB: must run before any freeze that may include these records (store writes apply in call order). */
  #flushRecordWrites(): Promise<void> {
    // The values sent since the last call are written (ValueArena.flush) before anything stores or encodes them;
    // one whose UTF-8 is longer than its text counts its extra bytes against the outbox bounds now.
    this.#values.flush((target, extraBytes) => this.#outbox.resize(target as OutboxRecord, extraBytes));
    this.#persistScheduled = null;
    if (this.#toPersist.length > 0) this.#recordWrite = this.store.addRecords(this.#toPersist);
    this.#toPersist = [];
    return this.#recordWrite;
  }

  /** A record goes to its partition once its topic's partition count is known (Kafka's waitOnMetadata), also with an explicit partition. */
  #route(record: OutboxRecord): void {
    const count = this.#partitionCounts.get(record.topic);
    if (count === undefined) {
      const waiting = this.#unrouted.get(record.topic) ?? [];
      waiting.push([record, Date.now()]);
      this.#unrouted.set(record.topic, waiting);
      return this.#maybeRequestMetadata();
    }
    if (record.partition >= count) return this.#drop([record], new RunnelError('UNKNOWN_TOPIC_OR_PARTITION'));
    const partition = record.partition < 0 ? this.#partitioner.partition(record.topic, record.key, count) : record.partition;
    const acc = this.#outbox.accumulate(record, partition);
    if (this.#outbox.batchFull(acc)) {
      if (record.partition < 0) this.#partitioner.batchCompleted(acc.topic, acc.partition, count);
      void this.#freeze(acc);
    } else if (this.#outbox.isIdle(acc)) {
      // Nothing of this partition awaits an ack: no linger, it goes at the end of this tick (a burst of sends
      // in one tick shares the batch). What comes while a batch is in flight accumulates (see #handleAck).
      this.#freezeSoon();
    } else {
      this.#armLinger();
    }
  }

  /** Freezes what lingered, once (partitions that cannot send yet keep accumulating: Outbox.freeze `holdBackedUp`). */
  #armLinger(): void {
    if (this.#lingerTimer !== undefined) return;
    this.#lingerTimer = setTimeout(() => { this.#lingerTimer = undefined; void this.#freeze(undefined, true); }, this.limits.lingerMs);
  }

  /** One freeze at the end of the current tick (a microtask), however many records asked for it. */
  #freezeSoon(): void {
    if (this.#freezeQueued) return;
    this.#freezeQueued = true;
    queueMicrotask(() => {
      this.#freezeQueued = false;
      if (!this.#closed) void this.#freeze(undefined, true);
    });
  }

  /** What accumulated for a partition while its batch was in flight goes when an ack frees a slot (else at lingerMs). */
  #freezeAccumulated(topic: string, partition: number): void {
    const acc = this.#outbox.accumulated(topic, partition);
    if (!acc) return;
    this.#partitioner.batchCompleted(topic, partition, this.#partitionCounts.get(topic) ?? 1);
    void this.#freeze(acc);
  }

  /** Freezes accumulated records and persists the batches; sends them once stored. `holdBackedUp`: see Outbox.freeze. */
  #freeze(only?: Parameters<Outbox['freeze']>[1], holdBackedUp = false): Promise<void> {
    void this.#flushRecordWrites();
    const batches = this.#outbox.freeze(() => this.#nextBatchId++, only, holdBackedUp);
    if (batches.length === 0) return Promise.resolve();
    if (!only) for (const b of batches) this.#partitioner.batchCompleted(b.topic, b.partition, this.#partitionCounts.get(b.topic) ?? 1);
    return this.#persistBatches(batches);
  }

  #persistBatches(batches: FrozenBatch[]): Promise<void> {
    const producer = this.#outbox.producer!;
    return this.store.freeze(batches, { ...producer, sequences: { ...producer.sequences } }).then(() => {
      const ids = new Set(batches);
      for (const s of this.#outbox.states()) if (ids.has(s.batch)) s.persisted = true;
      this.#maybeSend();
    }, (error) => this.onError(new RunnelError('KAFKA_STORAGE_ERROR', VERBOSE ? 'outbox write failed' : '', { cause: error })));
  }

  async #restore(): Promise<void> {
    const snapshot = await this.store.load();
    this.#outbox.producer = snapshot.producer;
    for (const b of snapshot.batches) {
      this.#outbox.enqueue(b, null);
      this.#nextBatchId = Math.max(this.#nextBatchId, b.id + 1);
      this.#nextRecordId = Math.max(this.#nextRecordId, ...b.recordIds.map((id) => id + 1));
    }
    for (const r of snapshot.records) {
      (r as Waited)[WAITER] = undefined; // a store that keeps the objects (memoryStorage) hands back the last client's
      this.#outbox.track(r);
      this.#nextRecordId = Math.max(this.#nextRecordId, r.id + 1);
      this.#route(r);
    }
  }

  #handleConnected(): Promise<void> {
    return this.#initializeWith(() => this.#initialize());
  }

  /**
   * Runs `work` (an initialization or a re-initialization) after the one in progress; nothing is sent until
   * the last is done. NB: each connection claims its producer id, even while an earlier one's still runs.
   */
  #initializeWith(work: () => Promise<void>): Promise<void> {
    // NB: never rejects (a failed outbox load, a failed store write are reported), so `void` callers leave no unhandled rejection.
    const init: Promise<void> = (this.#initializing ?? this.ready).then(work).catch((e) => this.onError(asRunnelError(e))).finally(() => {
      if (this.#initializing === init) this.#initializing = null;
      this.#maybeSend();
    });
    return (this.#initializing = init);
  }

  /**
   * Claims the producer id on this connection, then routes what waited for metadata. A retryable failure
   * (CLUSTER_UNAVAILABLE, a timeout) is tried again with backoff while the connection lasts: sending under
   * an unclaimed id would be refused UNKNOWN_PRODUCER_ID, and a fresh id would give up the batches sent
   * under the stored one.
   */
  async #initialize(attempt = 0): Promise<void> {
    const conn = this.conn, session = conn.helloOk;
    try {
      await this.#initProducer();
      this.#claimed = true;
      this.#maybeRequestMetadata();
      void this.#freeze();
    } catch (error) {
      const e = asRunnelError(error);
      if (e.errorName === 'NOT_CONNECTED') return;
      if (!e.retryable) return this.onError(e);
      this.#claimTimer = setTimeout(() => {
        if (conn.helloOk === session) void this.#initializeWith(() => this.#initialize(attempt + 1));
      }, this.#backoffMs(attempt));
    }
  }

  async #initProducer(): Promise<void> {
    const known = this.#outbox.producer;
    let ok = await this.conn.request<InitProducerOkFrame>({ type: 'initProducer', producerId: known?.producerId ?? -1, producerEpoch: known?.producerEpoch ?? -1, producerSecret: known?.producerSecret ?? '' });
    // NB: only a refusal of the stored id falls back to a fresh one; a retryable error is retried with the stored id.
    if (ok.errorCode !== 0 && known && !isRetryable(errorNameOf(ok.errorCode))) ok = await this.conn.request<InitProducerOkFrame>({ type: 'initProducer', producerId: -1, producerEpoch: -1, producerSecret: '' });
    if (ok.errorCode !== 0) throw new RunnelError(errorNameOf(ok.errorCode), VERBOSE ? 'initProducer failed' : '');
    // NB: the broker returns the stored id only when its secret matched, so the secret is unchanged too.
    if (known && known.producerId === ok.producerId && known.producerEpoch === ok.producerEpoch) return;
    await this.#becomeProducer(ok, 'UNKNOWN_PRODUCER_ID');
  }

  /**
   * Adopts a (new) producer identity: re-stamps and re-persists the frozen batches that cannot be in the
   * log (never sent, or behind a sequence gap); those that may be are never written again under another
   * identity: their records fail with `cause` (outcome unknown) and they leave the outbox.
   */
  #becomeProducer(ok: InitProducerOkFrame, cause: ErrorName): Promise<void> {
    const dropped = this.#outbox.states().filter((s) => s.sent).map((s) => s.batch);
    if (dropped.length > 0) this.#fail(dropped, new RunnelError(cause, VERBOSE ? 'outcome unknown (may be in the log): not resent under a new id' : ''));
    const changed = this.#outbox.restamp({ producerId: ok.producerId, producerEpoch: ok.producerEpoch, producerSecret: ok.producerSecret, sequences: {} });
    const producer = this.#outbox.producer!;
    return changed.length > 0 ? this.#persistBatches(changed) : this.store.saveProducer({ ...producer, sequences: {} });
  }

  /** Asks for the partition counts of every waiting topic in one request, unless one is already asked for (see #unrouted). */
  #maybeRequestMetadata(): void {
    if (this.#metadataRequested || this.#unrouted.size === 0 || this.conn.state !== 'connected') return;
    this.#metadataRequested = true;
    void this.#refreshMetadata();
  }

  /**
   * Routes the records of every topic the answer knows. A topic not there (yet: auto-creation off, or created
   * a moment later through another broker) is asked for again with backoff; a record waiting for it fails
   * UNKNOWN_TOPIC_OR_PARTITION when an answer still lacks it unknownTopicWaitMs after the record began to
   * wait (Kafka's max.block.ms). NB: only an answer fails it: offline, records wait for a broker to ask.
   * Other refusals (not authorized, an invalid name) fail them at once.
   * Never rejects: a lost connection leaves the records waiting for the next `connected`.
   */
  async #refreshMetadata(): Promise<void> {
    const topics = [...this.#unrouted.keys()];
    let retry: boolean;
    try {
      // A producer about to send creates missing topics where the broker allows it (Kafka's allow_auto_topic_creation).
      const answer = await this.conn.request<MetadataFrame>({ type: 'metadataRequest', topics, allowAutoTopicCreation: 1 });
      const now = Date.now(), waitMs = this.limits.unknownTopicWaitMs;
      for (const t of answer.topics) {
        // NB: a topic answered without partitions counts as not there (yet).
        const waiting = this.#unrouted.get(t.name), name = errorNameOf(t.errorCode || ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
        if (!waiting) continue;
        if (!t.errorCode && t.partitions.length) {
          this.#partitionCounts.set(t.name, t.partitions.length);
          this.#unrouted.delete(t.name);
          for (const [r] of waiting) this.#route(r);
          continue;
        }
        // Not there (yet), or a retryable refusal: wait. Any other refusal (not authorized, an invalid name): fail at once.
        const fatal = name !== 'UNKNOWN_TOPIC_OR_PARTITION' && !isRetryable(name);
        let expired = 0;
        while (expired < waiting.length && (fatal || now - waiting[expired][1] >= waitMs)) expired++;
        if (expired) this.#drop(waiting.splice(0, expired).map(([r]) => r), new RunnelError(fatal ? name : 'UNKNOWN_TOPIC_OR_PARTITION', VERBOSE ? `topic "${t.name}"${fatal ? '' : ` not in metadata after ${waitMs} ms`}` : ''));
        if (waiting.length === 0) this.#unrouted.delete(t.name);
      }
      // Still missing, left out of the answer, or sent to meanwhile (NB: then asked for after the backoff too).
      retry = this.#unrouted.size > 0;
      void this.#freeze(undefined, true); // NB: the routed records waited for the answer already: no linger on top
    } catch (error) {
      retry = asRunnelError(error).errorName !== 'NOT_CONNECTED'; // a timeout: again after a backoff; disconnected: on the next `connected`
    }
    // NB: also without a retry, a macrotask later: topics that started waiting meanwhile are asked for then.
    this.#metadataTimer = setTimeout(() => {
      this.#metadataRequested = false;
      this.#maybeRequestMetadata();
    }, retry ? this.#backoffMs(this.#metadataAttempt++) : (this.#metadataAttempt = 0));
  }

  /** `records` never reached a batch: they fail with `error` and leave the outbox and storage. */
  #drop(records: OutboxRecord[], error: RunnelError): void {
    for (const r of records) {
      this.#outbox.untrack(r);
      this.#reject(r, error);
    }
    this.store.deleteRecords(records.map((r) => r.id)).catch(() => {}); // NB: a record left stored is dropped again after a reload
    this.#settled.notify();
  }

  #reject(record: OutboxRecord, error: unknown): void {
    const waiter = (record as Waited)[WAITER];
    if (waiter === undefined) return;
    (record as Waited)[WAITER] = undefined;
    waiter.reject(error);
  }

  /** Admitted records someone still waits for (accumulating, in a batch, or waiting for their topic's metadata). */
  #waiting(): Waited[] {
    return [...this.#outbox.records(), ...[...this.#unrouted.values()].flat().map(([r]) => r)].filter((r: Waited) => r[WAITER]);
  }

  /** Sends every batch that may go now (persisted, in order, within in-flight limits). */
  #maybeSend(now = Date.now()): void {
    if (this.conn.state !== 'connected' || this.#initializing || !this.#claimed || this.#outbox.producer === null) return;
    const max = this.conn.helloOk?.maxInflightProduce ?? DEFAULT_MAX_INFLIGHT_PRODUCE;
    let inflight = this.#outbox.states().filter((s) => s.inflight).length;
    for (const s of this.#outbox.sendable((key) => (this.#pausedUntil.get(key) ?? 0) > now, (key) => this.#pipelined.has(key))) {
      if (inflight++ >= max) break;
      this.#sendBatch(s);
    }
  }

  #sendBatch(state: BatchState): void {
    const batch = state.batch;
    // An earlier attempt of these bytes (its ack lost, or loaded from storage) may have been written.
    state.resent = state.sent;
    state.inflight = state.sent = true;
    this.conn.request<ProduceAckFrame>({ type: 'produce', topic: batch.topic, partition: batch.partition, acks: -1, batch: batch.bytes })
      .then((ack) => this.#handleAck(state, batch, ack), (error) => this.#handleFailure(state, batch, asRunnelError(error).errorName));
  }

  #handleAck(state: BatchState, sent: FrozenBatch, ack: ProduceAckFrame): void {
    const name = ack.errorCode === 0 ? null : errorNameOf(ack.errorCode);
    // DUPLICATE_SEQUENCE_NUMBER: written before, below the batches the broker remembers; offsets unknown (baseOffset −1).
    if (name !== null && name !== 'DUPLICATE_SEQUENCE_NUMBER') return this.#handleFailure(state, sent, name);
    state.inflight = false;
    if (state.batch !== sent || this.#outbox.remove(sent) === null) return; // re-stamped or dropped meanwhile
    const key = tpKey(sent.topic, sent.partition), confirming = this.#outbox.confirming;
    this.#retries.delete(key);
    this.#pipelined.add(key);
    // Until its delete commits, the batch counts against PRODUCER_BATCHES_RETAINED (Outbox.sendable).
    // NB: a failed delete leaves it stored; resent after a reload, it is answered as a duplicate (or 46).
    confirming[key] = (confirming[key] ?? 0) + 1;
    const confirmed = (): void => {
      confirming[key]--;
      this.#maybeSend();
    };
    this.store.deleteBatches([sent.id]).then(confirmed, confirmed);
    this.#freezeAccumulated(sent.topic, sent.partition);
    const records: Waited[] = state.records, base = ack.baseOffset;
    for (let i = 0; i < records.length; i++) {
      const waiter = records[i][WAITER];
      if (waiter === undefined) continue; // aborted: nobody waits
      records[i][WAITER] = undefined;
      waiter.resolve({ topic: sent.topic, partition: sent.partition, offset: base < 0 ? -1 : base + i });
    }
    this.#settled.notify();
    this.#maybeSend();
  }

  #handleFailure(state: BatchState, sent: FrozenBatch, name: ErrorName): void {
    state.inflight = false;
    if (state.batch !== sent || this.#closed) return;
    const key = tpKey(sent.topic, sent.partition);
    const q = this.#outbox.queues.get(key) ?? [];
    const index = q.indexOf(state);
    this.#pipelined.delete(key);
    if (name === 'NOT_CONNECTED') return; // resent on the next `connected`
    const gap = name === 'OUT_OF_ORDER_SEQUENCE_NUMBER' && index === 0;
    if (RESEQUENCE.includes(name) || gap) {
      // OUT_OF_ORDER at the head: a gap (the broker's next sequence is below it): nothing queued for `key` is in the log.
      if (gap) for (const s of q) s.sent = false;
      this.onError(new RunnelError(name, key)); // the partition; a new producer id follows
      // NB: nothing is sent until the new identity is adopted.
      if (!this.#initializing) void this.#initializeWith(() => this.conn.request<InitProducerOkFrame>({ type: 'initProducer', producerId: -1, producerEpoch: -1, producerSecret: '' })
        .then((ok) => { if (ok.errorCode === 0) return this.#becomeProducer(ok, name); }, () => {}));
      return;
    }
    if (name === 'OUT_OF_ORDER_SEQUENCE_NUMBER') return this.#pause(key); // behind a batch that failed: resent after it
    // NB: a topic the broker does not know (yet: created a moment ago elsewhere) is retried too, as Kafka does.
    if (isRetryable(name) || name === 'UNKNOWN_TOPIC_OR_PARTITION') {
      const now = Date.now();
      state.failingSinceMs ??= now;
      // Past the delivery timeout the records fail; the later batches keep their sequences: if this one is not
      // in the log, the next is answered OUT_OF_ORDER at the head and the gap path above takes a new identity.
      if (now - state.failingSinceMs >= this.limits.deliveryTimeoutMs) this.#fail([sent], new RunnelError(name, VERBOSE ? `${key}: deliveryTimeoutMs passed; may be in the log` : ''));
      return this.#pause(key);
    }
    // Not retryable: the records fail. The refusal is of this attempt only: an earlier one whose ack was lost
    // (a whole-cluster crash) may be in the log, and UNKNOWN_SERVER_ERROR may come after the append.
    this.#fail([sent], new RunnelError(name, VERBOSE ? `produce to ${key} failed` : ''));
    // Later batches move down to close the sequence gap only when this was its first send, so it is not in the
    // log: else the broker answers the next batch as a duplicate of this one, at its offsets (acknowledged, never
    // written), and batches in the log, marked unsent, are written again under a new id (fault seeds 1071, 1029).
    // Otherwise they keep their sequences: if this batch is not in the log, the next is answered OUT_OF_ORDER at
    // the head and the gap path above takes a new identity.
    // NB: a later batch sent before was sent after this one's earlier send (in order), so is covered. One in
    // flight behind a first send is refused too (a gap), unless the broker lost the producer's state.
    // NB: persisted also when none moved: the partition's next sequence went back.
    if (!state.resent) void this.#persistBatches(this.#outbox.resequence(key, index, sent.baseSequence));
    this.#pause(key);
  }

  /** The records of `batches` fail with `error`; the batches leave the outbox and storage. */
  #fail(batches: FrozenBatch[], error: RunnelError): void {
    for (const b of batches) {
      for (const r of this.#outbox.remove(b)?.records ?? []) this.#reject(r, error);
    }
    this.store.deleteBatches(batches.map((b) => b.id)).catch(() => {}); // NB: left stored, it is resent after a reload and answered as a duplicate
    this.#settled.notify();
    this.onError(error);
    // A slot freed without an ack: what a backed-up partition held back is frozen at the next linger.
    if (!this.#closed) this.#armLinger();
  }

  /** retryBackoffMs doubled per consecutive error up to retryBackoffMaxMs, ±20 % jitter (KIP-580). */
  #backoffMs(attempt: number): number {
    return Math.min(this.limits.retryBackoffMaxMs, this.limits.retryBackoffMs * 2 ** Math.min(attempt, 30)) * (0.8 + 0.4 * this.#random());
  }

  #pause(key: string): void {
    const attempt = this.#retries.get(key) ?? 0;
    this.#retries.set(key, attempt + 1);
    const now = Date.now();
    this.#pausedUntil.set(key, now + this.#backoffMs(attempt));
    this.#armRetry(now);
  }

  /**
   * One timer, for the earliest pause to end (partitions back off for different times).
   * NB: the timer's send and re-arm read one clock: a pause that #maybeSend saw running must get a timer, or its
   * partition waits forever (a pause that ended between two readings did, in 4 of 90 runs of a failover test).
   */
  #armRetry(now = Date.now()): void {
    clearTimeout(this.#retryTimer);
    const next = Math.min(...[...this.#pausedUntil.values()].filter((until) => until > now));
    if (next < Infinity) this.#retryTimer = setTimeout(() => { const at = Date.now(); this.#maybeSend(at); this.#armRetry(at); }, next - now + 1);
  }

  /**
   * Freezes everything accumulated now and resolves once every record sent
   * before this call is acknowledged (or failed). `signal`: see FlushOptions.
   */
  async flush(options: FlushOptions = NO_OPTIONS): Promise<void> {
    const signal = options.signal;
    if (signal?.aborted) throw abortError(signal, 'flush');
    await this.ready;
    await this.#freeze();
    const pending = this.#waiting();
    let settled = 0; // NB: pending[0..settled) are known settled; each is checked until it is, so all checks cost O(pending)
    const done = this.#settled.until(() => {
      while (settled < pending.length && pending[settled][WAITER] === undefined) settled++;
      return settled === pending.length;
    });
    if (!signal) return done;
    // NB: an aborted flush's predicate stays with #settled until its records settle (each does: ack, failure or close).
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(abortError(signal, 'flush'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      void done.then(() => { signal.removeEventListener('abort', onAbort); resolve(); });
    });
  }

  /** Resolves once the outbox is empty: every record acknowledged or failed (or the producer closed); deletes from storage may still be committing. */
  async drained(): Promise<void> {
    await this.ready;
    await this.#settled.until(() => this.#outbox.recordCount === 0 || this.#closed);
  }

  /** Freezes pending records now (called when the page is hidden, before a beacon). */
  freezeNow(): Promise<void> {
    return this.ready.then(() => this.#freeze());
  }

  /** Persisted, unacknowledged batches in send order (for a beacon flush). */
  producerSecret(): string {
    return this.#outbox.producer?.producerSecret ?? '';
  }

  frozenBatches(): FrozenBatch[] {
    return this.#outbox.states().filter((s) => s.persisted).map((s) => s.batch);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#lingerTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#claimTimer);
    clearTimeout(this.#metadataTimer);
    void this.#flushRecordWrites();
    const error = new RunnelError('NOT_CONNECTED', VERBOSE ? 'client closed; durable records stay in the outbox' : '');
    for (const r of this.#waiting()) this.#reject(r, error);
    this.#settled.notify();
  }
}

export function asRunnelError(error: unknown): RunnelError {
  return error instanceof RunnelError ? error : new RunnelError('UNKNOWN_SERVER_ERROR', String(error), { cause: error });
}
