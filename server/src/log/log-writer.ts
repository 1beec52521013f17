/**
 * The write path of a partition log: the I/O driver of append-pipeline.ts.
 * One writer loop issues one vectored write per run of queued batches of the
 * same segment (rolling segments in order); one syncer loop fdatasyncs what
 * is written, so appends arriving meanwhile share the next fdatasync (group
 * commit). After each write or fdatasync it performs the pipeline's
 * `AckReady`: move the high watermark, fire `onAppend` listeners, resolve
 * appends and offset waits, in offset order. See docs/storage.md.
 *
 * Ordering contract:
 * - an append resolves only after fdatasync covers it (durable mode), or
 *   after its write (flushIntervalMs > 0);
 * - listeners see each batch once, in offset order, when it falls below the
 *   high watermark, before its append resolves (when nothing holds the high
 *   watermark below the acknowledged end: `setHighWatermark`);
 * - after a failed write or fdatasync nothing more is written, made visible
 *   by it or acknowledged: every pending append and wait is rejected.
 *
 * File handle (maxOpenFiles): the writer pins the write segment's handle from
 * the first append of a burst until neither loop runs, moving the pin at each
 * roll, so a partition being written keeps its fd and an idle one gives it
 * back to the LRU. An append to an idle log is admitted by `whenWritable`
 * (the handle reopened) BEFORE its offsets are assigned, so a descriptor
 * shortage refuses it (retryable) instead of failing the log. Opens that come
 * after assignment (a roll's new segment) retry a shortage with backoff
 * (ROLL_OPEN_RETRY_*), then fail the log.
 * NB (flushIntervalMs > 0): the pin drops once the writes are done, before the
 * interval's fdatasync, which may reopen the file: fdatasync covers the
 * inode's dirty pages whichever descriptor wrote them (Linux fsync(2)).
 */
import { RunnelError } from '@runnel/client/codec';
import { ROLL_OPEN_RETRY_LIMIT_MS, ROLL_OPEN_RETRY_MAX_MS, ROLL_OPEN_RETRY_MS } from '../limits.ts';
import type { AckReady, AppendPipeline, PendingAppend, WriteReady } from './append-pipeline.ts';
import { isDescriptorShortage } from './file-handle-cache.ts';
import type { Segment } from './segment.ts';
import type { SegmentFile } from './segment-file.ts';

export interface AppendEvent {
  /** The stored bytes (offsets assigned). Shared: never mutate. */
  batch: Uint8Array;
  baseOffset: number;
  lastOffset: number;
  highWatermark: number;
}

/** What the writer needs from the log's lifecycle (partition-log.ts). */
export interface WriterHost {
  /** The segment batches are appended to now; the syncer fdatasyncs it. */
  readonly writeSegment: Segment;
  /**
   * Seals the write segment (already fdatasync'ed) and makes `next` the
   * write segment. The writer awaits it: no batch of `next` is written before.
   */
  roll(next: Segment): Promise<void>;
}

interface Waiter {
  end: number;
  isDurable: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class LogWriter {
  readonly #pipeline: AppendPipeline<Segment>;
  readonly #host: WriterHost;
  readonly #name: string;
  readonly #listeners = new Set<(e: AppendEvent) => void>();
  readonly #flushListeners = new Set<(durationMs: number) => void>();
  readonly #writeListeners = new Set<(writtenEndOffset: number) => void>();
  #waiters: Waiter[] = [];
  // NB: the flags change synchronously when a loop starts and ends (a loop may end without awaiting),
  // so no wake-up is lost; `whenIdle` awaits the loops' own promises.
  #isWriterRunning = false;
  #isSyncerRunning = false;
  #writerLoop: Promise<void> = Promise.resolve();
  #syncerLoop: Promise<void> = Promise.resolve();
  #failure: RunnelError | null = null;
  #isAcknowledging = false;
  #mustAcknowledgeAgain = false;
  /** The segment whose handle the writer holds pinned (one `acquireWrite`), or null while the log is idle. */
  #pinned: Segment | null = null;
  /** The pin being taken for appends to an idle log (the log queues them in arrival order meanwhile). */
  #pinning: Promise<void> | null = null;

  /** `name`: the log's directory, for error messages. */
  constructor(pipeline: AppendPipeline<Segment>, host: WriterHost, name: string) {
    this.#pipeline = pipeline;
    this.#host = host;
    this.#name = name;
  }

  /** The KAFKA_STORAGE_ERROR that failed the log, or null while it works. */
  get failure(): RunnelError | null {
    return this.#failure;
  }

  onAppend(listener: (e: AppendEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onFlush(listener: (durationMs: number) => void): () => void {
    this.#flushListeners.add(listener);
    return () => this.#flushListeners.delete(listener);
  }

  onWrite(listener: (writtenEndOffset: number) => void): () => void {
    this.#writeListeners.add(listener);
    return () => this.#writeListeners.delete(listener);
  }

  /**
   * Admission, BEFORE offsets are assigned: null when the writer holds its pin
   * (assign and `enqueue` now, synchronously: the hot path); else resolves once
   * it does (the write segment's handle reopened if the LRU closed it while the
   * log was idle). Rejects with LIMIT_EXCEEDED when no descriptor is free:
   * nothing was assigned, so the append is refused and the log keeps working.
   * NB: call again after it resolves (the pin may have been dropped meanwhile),
   * and `releaseIfIdle()` when the append enqueued nothing.
   */
  whenWritable(): Promise<void> | null {
    if (this.#pinned !== null) return null;
    if (this.#pinning !== null) return this.#pinning;
    const segment = this.#host.writeSegment;
    const pinning = segment.acquireWrite().then(() => {
      this.#pinning = null;
      this.#hold(segment);
    }, (err: unknown) => {
      this.#pinning = null;
      throw err;
    });
    this.#pinning = pinning;
    return pinning;
  }

  /** Drops the write pin when neither loop runs (the handle becomes an ordinary LRU entry). */
  releaseIfIdle(): void {
    if (this.#isWriterRunning || this.#isSyncerRunning || this.#pinned === null) return;
    const segment = this.#pinned;
    this.#pinned = null;
    segment.releaseWrite();
  }

  /** Makes one acquired pin of `segment` the writer's, releasing the one it held. */
  #hold(segment: Segment): void {
    const previous = this.#pinned;
    this.#pinned = segment;
    previous?.releaseWrite();
  }

  /** The handle of `segment` under the writer's pin; moves the pin there first when it is elsewhere (a roll). */
  async #pinnedFile(segment: Segment): Promise<SegmentFile> {
    if (this.#pinned !== segment) {
      await retryDescriptorShortage(() => segment.acquireWrite());
      this.#hold(segment);
    }
    return segment.requireFile();
  }

  /** Queues an assigned append (offsets written into `p.batch`) and starts the writer. Only after `whenWritable` said null. */
  enqueue(p: PendingAppend<Segment>): void {
    this.#pipeline.assign(p);
    if (this.#isWriterRunning) return;
    this.#isWriterRunning = true;
    this.#writerLoop = this.#runWriter();
  }

  /** Replication hook: the high watermark is at most `offset` from now on (monotonic). */
  setHighWatermark(offset: number): void {
    this.#pipeline.setHighWatermarkLimit(offset);
    this.#acknowledge();
  }

  /** Asks for an fdatasync of offsets below `end` (flush interval, flush). */
  requestSync(end: number): void {
    this.#pipeline.requestSync(end);
    this.#startSyncer();
  }

  /** Resolves once every append issued so far is fdatasync'ed, whatever the mode. */
  flush(): Promise<void> {
    const end = this.#pipeline.assignedEnd;
    this.#pipeline.requestSync(end);
    // NB: while the writer runs it starts the syncer itself after its write (the flush target is set).
    if (!this.#isWriterRunning) this.#startSyncer();
    return this.whenOffset(end, true);
  }

  /** Resolves once offsets below `end` are acknowledged (`isDurable`: fdatasync'ed, whatever the mode). */
  whenOffset(end: number, isDurable: boolean): Promise<void> {
    const reached = isDurable ? this.#pipeline.durableEnd : this.#pipeline.ackEnd;
    if (end <= reached) return Promise.resolve();
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ end, isDurable, resolve, reject }));
  }

  /** Resolves when neither the writer nor the syncer loop runs (awaits each loop's promise; the writer may start the syncer). */
  async whenIdle(): Promise<void> {
    while (this.#isWriterRunning || this.#isSyncerRunning) await (this.#isWriterRunning ? this.#writerLoop : this.#syncerLoop);
  }

  /** Fails the log: rejects every pending append and wait with KAFKA_STORAGE_ERROR; later appends get it too. */
  fail(err: unknown): void {
    if (this.#failure) return;
    this.#failure = new RunnelError('KAFKA_STORAGE_ERROR', `log ${this.#name} failed: ${(err as Error)?.message ?? err}`, { cause: err });
    const pending = this.#pipeline.failPending();
    for (let i = pending.from; i < pending.to; i++) this.#pipeline.at(i).reject(this.#failure);
    for (const w of this.#waiters) w.reject(this.#failure);
    this.#waiters = [];
  }

  /** Writer loop: one vectored write per run of queued batches of the write segment; rolls segments in order. */
  async #runWriter(): Promise<void> {
    try {
      for (let step = this.#nextWrite(); step; step = this.#nextWrite()) {
        if (step.kind === 'roll') {
          await (await this.#pinnedFile(this.#host.writeSegment)).datasync();
          this.#pipeline.markWrittenDurable();
          this.#acknowledge();
          // The new segment's file is created and pinned before the roll makes it the write segment.
          await this.#pinnedFile(step.segment);
          await this.#host.roll(step.segment);
          continue;
        }
        // Hot path: the writer holds the write segment's pin (taken at admission or at the roll).
        const file = this.#pinned === step.segment ? step.segment.requireFile() : await this.#pinnedFile(step.segment);
        try {
          await file.append(step.chunks);
        } catch (err) {
          this.#pipeline.onWriteFailed();
          throw err;
        }
        this.#pipeline.onWritten();
        if (this.#pipeline.needsSync) this.#startSyncer();
        else this.#acknowledge();
        if (this.#writeListeners.size > 0) for (const listener of this.#writeListeners) listener(this.#pipeline.writtenEnd);
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.#isWriterRunning = false;
      this.releaseIfIdle();
    }
  }

  #nextWrite(): WriteReady<Segment> | null {
    return this.#failure ? null : this.#pipeline.nextWrite(this.#host.writeSegment);
  }

  #startSyncer(): void {
    if (this.#isSyncerRunning) return;
    this.#isSyncerRunning = true;
    this.#syncerLoop = this.#runSyncer();
  }

  /** Syncer loop: fdatasync whatever is written; appends written meanwhile share the next one. */
  async #runSyncer(): Promise<void> {
    try {
      while (this.#pipeline.startSync() !== null) {
        // NB: a roll fdatasyncs the old segment before writing the new one, so offsets < target live in this file or are durable.
        const startedMs = performance.now();
        try {
          // Pinned: a roll may seal this segment while its fdatasync runs; the LRU must not close it meanwhile.
          // (Reopened only with flushIntervalMs > 0, after the writer let go of it: see the header.)
          const segment = this.#host.writeSegment;
          await retryDescriptorShortage(() => segment.withFile((file) => file.datasync()));
          for (const listener of this.#flushListeners) listener(performance.now() - startedMs);
        } catch (err) {
          this.#pipeline.onSyncFailed();
          throw err;
        }
        this.#pipeline.onSynced();
        this.#acknowledge();
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.#isSyncerRunning = false;
      this.releaseIfIdle();
    }
  }

  /**
   * Performs the pipeline's `AckReady`s until none is left. NB: a listener may
   * call `setHighWatermark` (or append): the nested call only marks another
   * round, so deliveries stay in offset order and each `ready()` is advanced once.
   */
  #acknowledge(): void {
    if (this.#isAcknowledging) {
      this.#mustAcknowledgeAgain = true;
      return;
    }
    this.#isAcknowledging = true;
    try {
      do {
        this.#mustAcknowledgeAgain = false;
        this.#perform(this.#pipeline.ready());
      } while (this.#mustAcknowledgeAgain);
    } finally {
      this.#isAcknowledging = false;
    }
  }

  #perform(ack: AckReady): void {
    const pipeline = this.#pipeline;
    for (let i = ack.visibleFrom; i < ack.visibleTo; i++) {
      const p = pipeline.at(i);
      const event: AppendEvent = { batch: p.batch, baseOffset: p.result.baseOffset, lastOffset: p.result.lastOffset, highWatermark: ack.highWatermark };
      for (const listener of this.#listeners) listener(event);
    }
    for (let i = ack.ackedFrom; i < ack.ackedTo; i++) {
      const p = pipeline.at(i);
      p.resolve(p.result);
    }
    pipeline.advance(ack);
    if (this.#waiters.length > 0) {
      this.#waiters = this.#waiters.filter((w) => {
        const isDone = w.end <= (w.isDurable ? ack.durableEnd : ack.ackEnd);
        if (isDone) w.resolve();
        return !isDone;
      });
    }
  }
}

/**
 * Runs `open` (an acquire of a handle), retrying while no descriptor is free
 * (the cache already closed its idle handles): ROLL_OPEN_RETRY_MS doubling to
 * ROLL_OPEN_RETRY_MAX_MS, for at most ROLL_OPEN_RETRY_LIMIT_MS. For opens the
 * writer cannot refuse (their appends have offsets); other errors at once.
 */
async function retryDescriptorShortage<T>(open: () => Promise<T>): Promise<T> {
  const startedMs = performance.now();
  for (let delayMs = ROLL_OPEN_RETRY_MS; ; delayMs = Math.min(2 * delayMs, ROLL_OPEN_RETRY_MAX_MS)) {
    try {
      return await open();
    } catch (err) {
      if (!isDescriptorShortage(err) || performance.now() - startedMs + delayMs > ROLL_OPEN_RETRY_LIMIT_MS) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}
