/**
 * Consumer: `subscribe(topic, handler, options)` over partition streams.
 * Per partition, records reach the handler in offset order, each once; after
 * the handler resolves the next offset is stored (offset store, with the
 * topic id) — coalesced to one write in flight, or in the handler's own
 * IndexedDB transaction with `transactional`. Resume follows
 * ARCHITECTURE.md: a stored offset that cannot be served (retention,
 * truncation, topic recreated) is never skipped silently: a "not recovered"
 * event with the reason and lost range, then the `reset` policy.
 *
 * Three ways to take records, one per subscription: a per-record `handler`;
 * a batch handler (`onBatch` / `subscribeBatches`: every accepted record of
 * one received frame of one partition per call); or neither, and pull
 * `for await (const batch of sub.batches())`. Offsets are stored after each
 * record (per-record) or each batch. Hot path: a frame costs one object per
 * accepted record; keys, values and headers are decoded when read
 * (consumer-record.ts); one context object per frame, not per record.
 *
 * Invalid values (schema): a per-record handler meets one when it reads
 * `record.value`, which throws the record's SCHEMA_VALIDATION_FAILED error;
 * if the handler lets that error escape (throws it, or rejects with it), the
 * `onInvalid` policy applies to that record: 'error' emits it and moves on,
 * 'skip' moves on silently (the offset passes the record either way), 'throw'
 * stops the subscription. So the policy reports an invalid record when its
 * handler reads the value, not before the handler is called, and a handler
 * that never reads `value` never validates it. NB: what the handler did for
 * that record before reading `value` stays done (in `transactional` mode it
 * commits with the offset): read `value` first. Batch handlers and
 * `batches()` of a topic with a schema get only valid records: values are
 * validated before the call and invalid ones take the policy then.
 */
import { RunnelError, errorNameOf, type ErrorName } from './codec/error-codes.ts';
import type { RecordsFrame, StartPosition, SubscribedFrame } from './codec/protocol.ts';
import type { IDBPTransaction } from 'idb';
import { decodeRecords, type ConsumerRecord, type LazyRecord } from './consumer-record.ts';
import { Emitter } from './events.ts';
import { OffsetTracker } from './offset-tracker.ts';
import type { StreamReader, StreamRegistry } from './partition-stream.ts';
import type { OffsetStore, StoredOffset } from './storage.ts';
import { toTopic, type InvalidValuePolicy, type Topic, type TopicRef } from './topic.ts';
import { VERBOSE } from '#verbose';

export type StartFrom = 'stored' | 'earliest' | 'latest' | { offset: number } | { timestamp: number };

export interface NotRecoveredEvent {
  topic: string;
  partition: number;
  consumerId: string;
  reason: 'OFFSET_OUT_OF_RANGE' | 'INCONSISTENT_TOPIC_ID';
  /** Offsets that will never be delivered: [from, to); `to` null = the rest of the deleted topic. */
  lost: { from: number; to: number | null };
  storedTopicId: string;
  topicId: string;
  logStartOffset: number;
  highWatermark: number;
  /** Where consumption continues (the `reset` policy). */
  resetTo: number;
}

export interface SubscribeOptions<T = unknown> {
  /** Start position; 'stored' (default) resumes from the stored offset, else follows `reset`. */
  from?: StartFrom;
  /** Whose offsets to store/resume. Default 'default'. */
  consumerId?: string;
  /** Partitions to read (default: all). */
  partitions?: number[];
  signal?: AbortSignal;
  /** Where to go without a usable stored offset (Kafka's auto.offset.reset). Default 'latest'. */
  reset?: 'earliest' | 'latest';
  onNotRecovered?: (event: NotRecoveredEvent) => void;
  /** Exactly-once: the handler gets an IndexedDB transaction over `stores` + offsets, committed with the offset. */
  transactional?: { stores: string[] };
  /** Overrides the topic's invalid-value policy. */
  onInvalid?: InvalidValuePolicy;
  /** Take records a batch at a time (see BatchHandler) instead of through a per-record handler. */
  onBatch?: BatchHandler<T, any>;
}

/**
 * The IndexedDB transaction (idb's typed wrapper) a `transactional` handler
 * gets: readwrite over the app's `stores` and Runnel's `offsets`; the SDK
 * writes the offset in it and it commits when the handler's work is done.
 * Only requests of this transaction may be awaited inside the handler.
 */
export type HandlerTransaction<Stores extends string = string> = IDBPTransaction<unknown, (Stores | 'offsets')[], 'readwrite'>;

/** What a handler gets beside its record(s): `tx` with `transactional`, else undefined. */
export interface HandlerContext<Tx = HandlerTransaction> { readonly tx: Tx }

/**
 * The context a handler gets with `options`: `transactional: { stores }`
 * gives a transaction typed over those stores, anything else `tx: undefined`.
 * @example type C = ContextFor<{ transactional: { stores: ['journal'] } }>; // C['tx']: HandlerTransaction<'journal'>
 */
export type ContextFor<O> = O extends { transactional: { stores: readonly (infer S extends string)[] } } ? HandlerContext<HandlerTransaction<S>> : HandlerContext<undefined>;

/**
 * A per-record handler. NB: `Tx` defaults to the transaction type because a
 * handler typed without its options (the `subscribe(topic, handler, options)`
 * signature) cannot know whether it is transactional; `HandlerFor<T, O>`
 * derives the exact context from the options.
 */
export type Handler<T, Tx = HandlerTransaction> = (record: ConsumerRecord<T>, context: HandlerContext<Tx>) => void | Promise<void>;
/** A per-record handler whose context is what `options` of type `O` give (see ContextFor). */
export type HandlerFor<T, O> = (record: ConsumerRecord<T>, context: ContextFor<O>) => void | Promise<void>;
/**
 * Kafka's eachBatch: all accepted records of one received frame of one
 * partition, in offset order (at least one); the offset after the last is
 * stored once the call resolves.
 */
export type BatchHandler<T, Tx = HandlerTransaction> = (records: ConsumerRecord<T>[], context: HandlerContext<Tx>) => void | Promise<void>;

/** One batch of `Subscription.batches()`: accepted records of one received frame of one partition. */
export interface ConsumerBatch<T> {
  readonly topic: string;
  readonly partition: number;
  /** In offset order; at least one. */
  readonly records: ConsumerRecord<T>[];
  /** The offset after the last record: stored once the loop asks for the next batch. */
  readonly nextOffset: number;
  /** The partition's high watermark when the broker sent the frame (lag = highWatermark − nextOffset). */
  readonly highWatermark: number;
}

export interface SubscriptionEvents { notrecovered: NotRecoveredEvent; error: RunnelError; ready: void }

/** Dependencies a subscription gets from its client. */
export interface ConsumerDeps {
  streams: StreamRegistry;
  offsets: OffsetStore;
  partitionCount(topic: string): Promise<number>;
  reportError(error: RunnelError): void;
  /** Verify received batches' CRC-32C (default true). */
  checkCrcs?: boolean;
}

/** The context of a non-transactional handler call: shared and frozen (no allocation per record). */
const NO_CONTEXT: HandlerContext<undefined> = Object.freeze({ tx: undefined });

const FATAL: ErrorName[] = ['UNKNOWN_TOPIC_OR_PARTITION', 'TOPIC_AUTHORIZATION_FAILED', 'INVALID_TOPIC_EXCEPTION', 'INVALID_REQUEST'];

function startPosition(from: StartFrom, reset: 'earliest' | 'latest'): StartPosition {
  if (from === 'stored') return { kind: reset };
  if (from === 'earliest' || from === 'latest') return { kind: from };
  return 'offset' in from ? { kind: 'offset', offset: from.offset } : { kind: 'timestamp', timestampMs: from.timestamp };
}

/** One partition of a subscription, as a reader of its partition stream. */
class PartitionReader implements StreamReader {
  start: StartPosition;
  topicId: string;
  /** Frames received but not yet handled, with what releases their credit. */
  queue: { frame: RecordsFrame; held: { release(): void } }[] = [];
  receivedEnd = 0;

  readonly #sub: Subscription<any>;

  constructor(sub: Subscription<any>, readonly partition: number, stored: StoredOffset | undefined, start: StartPosition) {
    this.#sub = sub;
    this.topicId = stored?.topicId ?? '';
    this.start = start;
    if (stored) sub.tracker.seek(partition, stored.offset);
    else if (start.kind === 'offset') sub.tracker.seek(partition, start.offset);
  }

  get neededOffset(): number | null {
    const position = this.#sub.tracker.position(this.partition);
    return position === undefined ? null : Math.max(position, this.receivedEnd);
  }

  subscribed(answer: SubscribedFrame, adopt: boolean): void {
    if (this.topicId !== '' && this.topicId !== answer.topicId) return this.#notRecovered('INCONSISTENT_TOPIC_ID', answer);
    this.topicId = answer.topicId;
    if (adopt && this.#sub.tracker.position(this.partition) === undefined) {
      this.#sub.tracker.seek(this.partition, answer.startOffset);
      this.#sub.tracker.markHandled(this.partition, answer.startOffset - 1); // store the resolved start
    }
    this.#sub.partitionReady(this.partition);
  }

  rejected(answer: SubscribedFrame): void {
    const name = errorNameOf(answer.errorCode);
    const needed = this.neededOffset;
    if (name === 'INCONSISTENT_TOPIC_ID' && this.topicId !== '' && this.topicId !== answer.topicId) return this.#notRecovered(name, answer);
    if (name === 'OFFSET_OUT_OF_RANGE' && (needed === null || needed < answer.logStartOffset || needed > answer.highWatermark)) return this.#notRecovered(name, answer);
    if (FATAL.includes(name)) this.#sub.fail(new RunnelError(name, VERBOSE ? `cannot subscribe to ${this.#sub.topic.name}/${this.partition}` : ''));
  }

  #notRecovered(reason: NotRecoveredEvent['reason'], answer: SubscribedFrame): void {
    const stored = this.neededOffset ?? -1;
    const resetTo = this.#sub.resetPosition.kind === 'earliest' ? answer.logStartOffset : answer.highWatermark;
    const lost = reason === 'INCONSISTENT_TOPIC_ID' ? { from: stored, to: null }
      : stored < answer.logStartOffset ? { from: stored, to: answer.logStartOffset } : { from: answer.highWatermark, to: stored };
    const storedTopicId = this.topicId;
    this.topicId = answer.topicId;
    this.queue = [];
    this.receivedEnd = 0;
    this.#sub.tracker.seek(this.partition, resetTo);
    this.#sub.tracker.markHandled(this.partition, resetTo - 1);
    this.#sub.reportNotRecovered({
      topic: this.#sub.topic.name, partition: this.partition, consumerId: this.#sub.consumerId, reason, lost, storedTopicId,
      topicId: answer.topicId, logStartOffset: answer.logStartOffset, highWatermark: answer.highWatermark, resetTo,
    });
  }

  deliver(frame: RecordsFrame, firstOffset: number, lastOffset: number, held: { release(): void }): boolean {
    const position = this.neededOffset;
    if (position === null || lastOffset < position) return held.release(), true;
    if (firstOffset > position) return held.release(), false;
    this.receivedEnd = lastOffset + 1;
    this.queue.push({ frame, held });
    this.#sub.wake(this);
    return true;
  }
}

/**
 * A running subscription. `ready` resolves once every partition is
 * subscribed; `closed` settles when it ends (rejects on a handler error).
 */
type Offered<T> = { batch: ConsumerBatch<T>; done: () => void; drop: (reason: unknown) => void };

export class Subscription<T> extends Emitter<SubscriptionEvents> {
  readonly tracker = new OffsetTracker();
  readonly #deps: ConsumerDeps;
  readonly #options: SubscribeOptions<T>;
  readonly topic: Topic<unknown, T>;
  readonly consumerId: string;
  readonly resetPosition: StartPosition;
  readonly fromStored: boolean;
  readonly ready: Promise<void>;
  readonly closed: Promise<void>;
  #readers: PartitionReader[] = [];
  readonly #runQueue: PartitionReader[] = [];
  #running = false;
  /** The current (or last) run of `#run`; `#stop` awaits it instead of polling `#running`. */
  #loop: Promise<void> = Promise.resolve();
  #stopped = false;
  #commitInFlight: Promise<void> | null = null;
  readonly #unready = new Set<number>();
  #resolveReady!: () => void;
  #settle!: (error?: unknown) => void;
  readonly #handler: Handler<T, any> | null;
  readonly #batchHandler: BatchHandler<T, any> | null;
  /** The per-record mode's records of the frame being handled (reused). */
  readonly #scratch: LazyRecord<T>[] = [];
  #offered: Offered<T> | null = null;
  /** The batch `batches()` yielded and the loop is working on. */
  #held: Offered<T> | null = null;
  #wakePuller: (() => void) | null = null;
  #pulling = false;

  /**
   * One mode: `batchHandler` (or `options.onBatch`) takes batches; else
   * `handler` takes records; with neither (null), pull with `batches()`.
   */
  constructor(deps: ConsumerDeps, topicRef: TopicRef<any, T>, handler: Handler<T, any> | null, options: SubscribeOptions<T>, batchHandler?: BatchHandler<T, any>) {
    super();
    this.#deps = deps;
    this.#options = options;
    this.#batchHandler = batchHandler ?? options.onBatch ?? null;
    this.#handler = this.#batchHandler ? null : handler;
    this.topic = toTopic(topicRef);
    this.consumerId = options.consumerId ?? 'default';
    this.resetPosition = { kind: options.reset ?? 'latest' };
    this.fromStored = (options.from ?? 'stored') === 'stored';
    this.ready = new Promise((r) => (this.#resolveReady = r));
    this.closed = new Promise<void>((resolve, reject) => (this.#settle = (e) => (e === undefined ? resolve() : reject(e))));
    this.closed.catch(() => {});
    options.signal?.addEventListener('abort', () => void this.unsubscribe(), { once: true });
    if (options.signal?.aborted) queueMicrotask(() => void this.unsubscribe());
    else void this.#start().catch((e) => this.fail(e));
  }

  async #start(): Promise<void> {
    const [stored, count] = await Promise.all([this.#deps.offsets.getOffsets(this.consumerId, this.topic.name), this.#deps.partitionCount(this.topic.name)]);
    if (this.#stopped) return;
    const start = startPosition(this.#options.from ?? 'stored', this.#options.reset ?? 'latest');
    const partitions = this.#options.partitions ?? Array.from({ length: count }, (_, p) => p);
    for (const p of partitions) {
      this.#unready.add(p);
      this.#readers.push(new PartitionReader(this, p, this.fromStored ? stored.get(p) : undefined, start));
    }
    for (const r of this.#readers) this.#deps.streams.attach(this.topic.name, r.partition, r);
  }

  /** The next offset the handler will get for `partition` (undefined before it starts). */
  position(partition: number): number | undefined {
    return this.tracker.handledOffset(partition);
  }

  partitionReady(partition: number): void {
    if (this.#unready.delete(partition) && this.#unready.size === 0) this.#resolveReady();
  }

  reportNotRecovered(event: NotRecoveredEvent): void {
    this.#options.onNotRecovered?.(event);
    this.emit('notrecovered', event);
    this.#maybeCommit();
  }

  wake(reader: PartitionReader): void {
    if (!this.#runQueue.includes(reader)) this.#runQueue.push(reader);
    if (!this.#running) this.#loop = this.#run();
  }

  /**
   * Handles queued frames one at a time, readers in arrival order. Hot path: a frame whose handling is
   * synchronous (a synchronous handler, not transactional) is followed by the next one at once, with no
   * promise or microtask per frame; only a frame whose handler returned a promise is awaited.
   */
  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (!this.#stopped && this.#runQueue.length > 0) {
        const reader = this.#runQueue[0];
        const item = reader.queue.shift();
        if (!item) { this.#runQueue.shift(); continue; }
        const handling = this.#handleFrame(reader, item.frame);
        if (handling) await handling;
        item.held.release();
        void this.#maybeCommit();
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.#running = false;
    }
  }

  /** Undefined when the frame was handled synchronously; else the promise of its handling. */
  #handleFrame(reader: PartitionReader, frame: RecordsFrame): Promise<void> | void {
    const p = reader.partition;
    const from = this.tracker.position(p);
    if (from === undefined) return;
    // Per-record mode reuses one array (frames are handled one at a time); batches are handed out, so fresh.
    const records = this.#handler ? this.#scratch : [];
    let handling: Promise<void> | void = undefined;
    try {
      const next = decodeRecords(this.topic, p, frame.batches, from, records, this.#deps.checkCrcs !== false);
      if (next instanceof RunnelError) throw next;
      this.tracker.advance(p, next);
      if (records.length === 0) return;
      const tx = this.#options.transactional;
      if (tx && this.#deps.offsets.transact) {
        handling = this.#deps.offsets.transact(tx.stores, this.consumerId, this.topic.name, async (t) => {
          await this.#deliver(p, records, frame.highWatermark, { tx: t as HandlerTransaction });
          return new Map([[p, { offset: this.tracker.handledOffset(p)!, topicId: reader.topicId }]]);
        }).then(() => { this.tracker.takeCommit(); });
      } else handling = this.#deliver(p, records, frame.highWatermark, NO_CONTEXT);
    } finally {
      // NB: drops the records (and their frame's bytes) now, or once an asynchronous handling ends.
      if (records === this.#scratch && !handling) records.length = 0;
    }
    if (!handling || records !== this.#scratch) return handling;
    return handling.finally(() => { records.length = 0; });
  }

  /** Hands one frame's accepted records to the handler (per record or as one batch); marks what was handled. */
  #deliver(p: number, records: LazyRecord<T>[], highWatermark: number, context: HandlerContext<any>): Promise<void> | void {
    if (this.#handler) return this.#deliverEach(p, records, context);
    const valid = this.topic.schema ? this.#validated(records) : records;
    const last = records[records.length - 1].offset;
    if (this.#stopped) return;
    if (valid.length === 0) return this.tracker.markHandled(p, last);
    const call = this.#batchHandler
      ? this.#batchHandler(valid, context)
      : this.#offer({ topic: this.topic.name, partition: p, records: valid, nextOffset: last + 1, highWatermark });
    if (call && typeof (call as Promise<void>).then === 'function') return (call as Promise<void>).then(() => this.tracker.markHandled(p, last));
    this.tracker.markHandled(p, last);
  }

  /**
   * Hot path: a synchronous handler runs back to back (no microtask per
   * record), a promise is awaited (the rest of the frame continues in
   * #deliverRest); the offset is marked once, after the last record handled
   * (nothing is stored while a frame is being handled). Returns undefined
   * when every record was handled synchronously.
   */
  #deliverEach(p: number, records: LazyRecord<T>[], context: HandlerContext<any>, from = 0): Promise<void> | void {
    let i = from;
    try {
      for (; i < records.length && !this.#stopped; i++) {
        const record = records[i];
        let result: void | Promise<void>;
        try {
          result = this.#handler!(record, context);
        } catch (error) {
          this.#handlerFailed(record, error);
          continue;
        }
        // A promise: what came before is marked (finally), the rest continues once it settles.
        if (result && typeof result.then === 'function') {
          return result.then(undefined, (error: unknown) => this.#handlerFailed(record, error)).then(() => {
            this.tracker.markHandled(p, record.offset);
            return this.#deliverEach(p, records, context, i + 1);
          });
        }
      }
    } finally {
      if (i > from) this.tracker.markHandled(p, records[i - 1].offset);
    }
  }

  /** A per-record handler threw or rejected: the record's own invalid-value error takes the `onInvalid` policy; anything else fails the subscription. */
  #handlerFailed(record: LazyRecord<T>, error: unknown): void {
    if (!record.isOwnError(error)) throw error;
    this.#invalid(error);
  }

  /** The records whose value passes the schema; the others take the `onInvalid` policy now. */
  #validated(records: LazyRecord<T>[]): LazyRecord<T>[] {
    const valid: LazyRecord<T>[] = [];
    for (const record of records) {
      const error = record.validate();
      if (error) this.#invalid(error);
      else valid.push(record);
    }
    return valid;
  }

  /** An invalid value escaped a handler (or failed validation before a batch call): the `onInvalid` policy. */
  #invalid(error: RunnelError): void {
    const policy = this.#options.onInvalid ?? this.topic.onInvalid;
    if (policy === 'throw') throw error;
    if (policy === 'error') this.emit('error', error);
  }

  /** Pull mode: resolves once `batches()` asks for the batch after this one (or rejects when the loop left holding it). */
  #offer(batch: ConsumerBatch<T>): Promise<void> {
    return new Promise<void>((done, drop) => {
      this.#offered = { batch, done, drop };
      this.#wakePuller?.();
    });
  }

  /**
   * Pull mode (a subscription made with neither a handler nor `onBatch`):
   * the batches in arrival order, one received frame of one partition each.
   * A batch's offset is stored when the loop asks for the next one; leaving
   * the loop (break, return, throw) unsubscribes, and the batch it held is
   * not stored (it comes again next time). Buffering is bounded: at most one
   * batch is handed out; frames received meanwhile wait undecoded, within
   * each partition's credit window (`limits.creditWindowBytes`), and the
   * broker sends nothing past it. A subscription error ends the loop with it.
   * @example
   * const sub = client.subscribe('orders', { from: 'earliest' }); // no handler: pull mode
   * for await (const batch of sub.batches()) await db.bulkPut(batch.records.map((r) => r.value));
   */
  async *batches(): AsyncGenerator<ConsumerBatch<T>> {
    if (this.#handler || this.#batchHandler || this.#options.transactional) throw new RunnelError('INVALID_REQUEST', VERBOSE ? 'batches() needs a subscription made without a handler, onBatch or transactional' : '');
    if (this.#pulling) throw new RunnelError('INVALID_REQUEST', VERBOSE ? 'batches() is already being iterated; one loop per subscription' : '');
    this.#pulling = true;
    let ended = false;
    void this.closed.catch(() => {}).finally(() => { ended = true; this.#wakePuller?.(); });
    try {
      while (true) {
        while (!this.#offered && !ended) await new Promise<void>((r) => (this.#wakePuller = r));
        this.#wakePuller = null;
        if (!this.#offered) break;
        const held = (this.#held = this.#offered);
        this.#offered = null;
        yield held.batch;
        this.#held = null;
        held.done();
      }
      await this.closed; // rethrows the subscription's error
    } finally {
      await this.unsubscribe();
    }
  }

  /** Pull mode: the batch handed out or offered is dropped (not handled, its offset not stored) so the loop can end. */
  #dropPulled(): void {
    const pulled = this.#held ?? this.#offered;
    this.#held = this.#offered = null;
    pulled?.drop(new RunnelError('ABORTED', VERBOSE ? 'the subscription ended before the batch was handled' : ''));
  }

  /** Stores handled offsets: one write in flight, the next carries everything newer. */
  #maybeCommit(): Promise<void> {
    if (this.#commitInFlight) return this.#commitInFlight;
    const offsets = this.tracker.takeCommit();
    if (offsets === null) return Promise.resolve();
    const entries = new Map<number, StoredOffset>();
    for (const [p, offset] of offsets) entries.set(p, { offset, topicId: this.#readers.find((r) => r.partition === p)?.topicId ?? '' });
    this.#commitInFlight = this.#deps.offsets.putOffsets(this.consumerId, this.topic.name, entries)
      .catch((e) => this.#deps.reportError(new RunnelError('KAFKA_STORAGE_ERROR', VERBOSE ? 'offset write failed' : '', { cause: e })))
      .finally(() => { this.#commitInFlight = null; });
    return this.#commitInFlight.then(() => this.#maybeCommit());
  }

  fail(error: unknown): void {
    if (this.#stopped) return;
    const e = error instanceof RunnelError ? error : new RunnelError('UNKNOWN_SERVER_ERROR', VERBOSE ? 'subscription handler failed' : '', { cause: error });
    this.emit('error', e);
    this.#deps.reportError(e);
    void this.#stop(e);
  }

  /** Stops delivery, stores the offsets handled so far, releases the partitions. */
  unsubscribe(): Promise<void> {
    return this.#stop(undefined);
  }

  async #stop(error: unknown): Promise<void> {
    if (this.#stopped) return this.closed.catch(() => {});
    this.#stopped = true;
    this.#dropPulled();
    for (const r of this.#readers) this.#deps.streams.detach(this.topic.name, r.partition, r);
    await this.#loop; // the frame being handled finishes; the loop sees #stopped and ends
    await this.#maybeCommit();
    this.#resolveReady();
    this.#settle(error);
  }
}
