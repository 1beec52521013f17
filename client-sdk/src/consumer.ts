/**
 * Consumer: `subscribe(topic, handler, options)` over partition streams.
 * Per partition, records reach the handler in offset order, each once; after
 * the handler resolves the next offset is stored (offset store, with the
 * topic id) — coalesced to one write in flight, or in the handler's own
 * IndexedDB transaction with `transactional`. Resume follows
 * ARCHITECTURE.md: a stored offset that cannot be served (retention,
 * truncation, topic recreated) is never skipped silently: a "not recovered"
 * event with the reason and lost range, then the `reset` policy.
 */
import { RunnelError, errorNameOf, type ErrorName } from './codec/error-codes.ts';
import type { RecordsFrame, StartPosition, SubscribedFrame } from './codec/protocol.ts';
import { decodeAccepted, type ConsumerRecord, type DecodedEntry } from './consumer-record.ts';
import { Emitter } from './events.ts';
import { OffsetTracker } from './offset-tracker.ts';
import type { StreamReader, StreamRegistry } from './partition-stream.ts';
import type { OffsetStore, StoredOffset } from './storage.ts';
import { toTopic, type InvalidValuePolicy, type Topic, type TopicRef } from './topic.ts';

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

export interface SubscribeOptions {
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
}

export interface HandlerContext { tx?: any }
export type Handler<T> = (record: ConsumerRecord<T>, context: HandlerContext) => void | Promise<void>;
/** Kafka's eachBatch: all accepted records of one received frame of one partition, in offset order. */
export type BatchHandler<T> = (records: ConsumerRecord<T>[], context: HandlerContext) => void | Promise<void>;

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
const NO_CONTEXT: HandlerContext = Object.freeze({});

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
  /** Frames received but not yet handled, with their credit release. */
  queue: { frame: RecordsFrame; release: () => void }[] = [];
  receivedEnd = 0;

  constructor(private readonly sub: Subscription<any>, readonly partition: number, stored: StoredOffset | undefined, start: StartPosition) {
    this.topicId = stored?.topicId ?? '';
    this.start = start;
    if (stored) sub.tracker.seek(partition, stored.offset);
    else if (start.kind === 'offset') sub.tracker.seek(partition, start.offset);
  }

  get neededOffset(): number | null {
    const position = this.sub.tracker.position(this.partition);
    return position === undefined ? null : Math.max(position, this.receivedEnd);
  }

  subscribed(answer: SubscribedFrame, adopt: boolean): void {
    if (this.topicId !== '' && this.topicId !== answer.topicId) return this.#notRecovered('INCONSISTENT_TOPIC_ID', answer);
    this.topicId = answer.topicId;
    if (adopt && this.sub.tracker.position(this.partition) === undefined) {
      this.sub.tracker.seek(this.partition, answer.startOffset);
      this.sub.tracker.markHandled(this.partition, answer.startOffset - 1); // store the resolved start
    }
    this.sub.partitionReady(this.partition);
  }

  rejected(answer: SubscribedFrame): void {
    const name = errorNameOf(answer.errorCode);
    const needed = this.neededOffset;
    if (name === 'INCONSISTENT_TOPIC_ID' && this.topicId !== '' && this.topicId !== answer.topicId) return this.#notRecovered(name, answer);
    if (name === 'OFFSET_OUT_OF_RANGE' && (needed === null || needed < answer.logStartOffset || needed > answer.highWatermark)) return this.#notRecovered(name, answer);
    if (FATAL.includes(name)) this.sub.fail(new RunnelError(name, `cannot subscribe to ${this.sub.topic.name}/${this.partition}`));
  }

  #notRecovered(reason: NotRecoveredEvent['reason'], answer: SubscribedFrame): void {
    const stored = this.neededOffset ?? -1;
    const resetTo = this.sub.resetPosition.kind === 'earliest' ? answer.logStartOffset : answer.highWatermark;
    const lost = reason === 'INCONSISTENT_TOPIC_ID' ? { from: stored, to: null }
      : stored < answer.logStartOffset ? { from: stored, to: answer.logStartOffset } : { from: answer.highWatermark, to: stored };
    const storedTopicId = this.topicId;
    this.topicId = answer.topicId;
    this.queue = [];
    this.receivedEnd = 0;
    this.sub.tracker.seek(this.partition, resetTo);
    this.sub.tracker.markHandled(this.partition, resetTo - 1);
    this.sub.reportNotRecovered({
      topic: this.sub.topic.name, partition: this.partition, consumerId: this.sub.consumerId, reason, lost, storedTopicId,
      topicId: answer.topicId, logStartOffset: answer.logStartOffset, highWatermark: answer.highWatermark, resetTo,
    });
  }

  deliver(frame: RecordsFrame, firstOffset: number, lastOffset: number, release: () => void): boolean {
    const position = this.neededOffset;
    if (position === null || lastOffset < position) return release(), true;
    if (firstOffset > position) return release(), false;
    this.receivedEnd = lastOffset + 1;
    this.queue.push({ frame, release });
    this.sub.wake(this);
    return true;
  }
}

/**
 * A running subscription. `ready` resolves once every partition is
 * subscribed; `closed` settles when it ends (rejects on a handler error).
 */
export class Subscription<T> extends Emitter<SubscriptionEvents> {
  readonly tracker = new OffsetTracker();
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

  constructor(private readonly deps: ConsumerDeps, topicRef: TopicRef<any, T>, private readonly handler: Handler<T>, private readonly options: SubscribeOptions, private readonly batchHandler?: BatchHandler<T>) {
    super();
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
    const [stored, count] = await Promise.all([this.deps.offsets.getOffsets(this.consumerId, this.topic.name), this.deps.partitionCount(this.topic.name)]);
    if (this.#stopped) return;
    const start = startPosition(this.options.from ?? 'stored', this.options.reset ?? 'latest');
    const partitions = this.options.partitions ?? Array.from({ length: count }, (_, p) => p);
    for (const p of partitions) {
      this.#unready.add(p);
      this.#readers.push(new PartitionReader(this, p, this.fromStored ? stored.get(p) : undefined, start));
    }
    for (const r of this.#readers) this.deps.streams.attach(this.topic.name, r.partition, r);
  }

  /** The next offset the handler will get for `partition` (undefined before it starts). */
  position(partition: number): number | undefined {
    return this.tracker.handledOffset(partition);
  }

  partitionReady(partition: number): void {
    if (this.#unready.delete(partition) && this.#unready.size === 0) this.#resolveReady();
  }

  reportNotRecovered(event: NotRecoveredEvent): void {
    this.options.onNotRecovered?.(event);
    this.emit('notrecovered', event);
    this.#maybeCommit();
  }

  wake(reader: PartitionReader): void {
    if (!this.#runQueue.includes(reader)) this.#runQueue.push(reader);
    if (!this.#running) this.#loop = this.#run();
  }

  /** Handles queued frames one at a time, readers in arrival order. */
  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (!this.#stopped && this.#runQueue.length > 0) {
        const reader = this.#runQueue[0];
        const item = reader.queue.shift();
        if (!item) { this.#runQueue.shift(); continue; }
        await this.#handleFrame(reader, item.frame);
        item.release();
        this.#maybeCommit();
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.#running = false;
    }
  }

  async #handleFrame(reader: PartitionReader, frame: RecordsFrame): Promise<void> {
    const p = reader.partition;
    const position = this.tracker.position(p) ?? Infinity;
    const { entries, error } = decodeAccepted(this.topic, p, frame.batches, position, (o) => this.tracker.accept(p, o), this.deps.checkCrcs !== false);
    if (error) throw error;
    const tx = this.options.transactional;
    if (tx && this.deps.offsets.transact) {
      if (entries.length === 0) return;
      await this.deps.offsets.transact(tx.stores, this.consumerId, this.topic.name, async (t) => {
        for (const entry of entries) await this.#handleEntry(p, entry, t);
        return new Map([[p, { offset: this.tracker.handledOffset(p)!, topicId: reader.topicId }]]);
      });
      this.tracker.takeCommit();
      return;
    }
    if (this.batchHandler) return this.#handleBatch(p, entries);
    // Hot path: a synchronous handler runs back to back (no microtask per record); a promise is awaited.
    for (let i = 0; i < entries.length; i++) {
      if (this.#stopped) return;
      const pending = this.#handleEntry(p, entries[i], undefined);
      if (pending !== undefined) await pending;
    }
  }

  async #handleBatch(p: number, entries: DecodedEntry<T>[]): Promise<void> {
    if (entries.length === 0) return;
    const records: ConsumerRecord<T>[] = [];
    for (const e of entries) {
      if (e.record) records.push(e.record);
      else this.#handleEntry(p, e, undefined); // invalid value: per policy (may throw)
    }
    if (records.length > 0) await this.batchHandler!(records, {});
    this.tracker.markHandled(p, entries[entries.length - 1].offset);
  }

  /** Runs the handler for one entry; returns a promise only when the handler returned one (the offset is marked after it). */
  #handleEntry(p: number, entry: DecodedEntry<T>, tx: unknown): Promise<void> | undefined {
    if (entry.error) {
      const policy = this.options.onInvalid ?? this.topic.onInvalid;
      if (policy === 'throw') throw entry.error;
      if (policy === 'error') this.emit('error', entry.error);
      this.tracker.markHandled(p, entry.offset);
      return undefined;
    }
    const result = this.handler(entry.record!, tx === undefined ? NO_CONTEXT : { tx });
    if (result && typeof (result as Promise<void>).then === 'function') return (result as Promise<void>).then(() => this.tracker.markHandled(p, entry.offset));
    this.tracker.markHandled(p, entry.offset);
    return undefined;
  }

  /** Stores handled offsets: one write in flight, the next carries everything newer. */
  #maybeCommit(): Promise<void> {
    if (this.#commitInFlight) return this.#commitInFlight;
    const offsets = this.tracker.takeCommit();
    if (offsets === null) return Promise.resolve();
    const entries = new Map<number, StoredOffset>();
    for (const [p, offset] of offsets) entries.set(p, { offset, topicId: this.#readers.find((r) => r.partition === p)?.topicId ?? '' });
    this.#commitInFlight = this.deps.offsets.putOffsets(this.consumerId, this.topic.name, entries)
      .catch((e) => this.deps.reportError(new RunnelError('KAFKA_STORAGE_ERROR', 'offset write failed', { cause: e })))
      .finally(() => { this.#commitInFlight = null; });
    return this.#commitInFlight.then(() => this.#maybeCommit());
  }

  fail(error: unknown): void {
    if (this.#stopped) return;
    const e = error instanceof RunnelError ? error : new RunnelError('UNKNOWN_SERVER_ERROR', 'subscription handler failed', { cause: error });
    this.emit('error', e);
    this.deps.reportError(e);
    void this.#stop(e);
  }

  /** Stops delivery, stores the offsets handled so far, releases the partitions. */
  unsubscribe(): Promise<void> {
    return this.#stop(undefined);
  }

  async #stop(error: unknown): Promise<void> {
    if (this.#stopped) return this.closed.catch(() => {});
    this.#stopped = true;
    for (const r of this.#readers) this.deps.streams.detach(this.topic.name, r.partition, r);
    await this.#loop; // the frame being handled finishes; the loop sees #stopped and ends
    await this.#maybeCommit();
    this.#resolveReady();
    this.#settle(error);
  }
}
