/**
 * The durable log of one topic partition: the public API the broker and
 * replication code against. See docs/storage.md.
 *
 * Append path (hot): validate header + CRC → idempotence check → assign
 * offsets in place → queue → the writer issues one vectored write for every
 * queued batch → the syncer fdatasyncs; appends arriving meanwhile share the
 * next fdatasync (group commit, group-commit.ts). Per batch, never per record.
 *
 * Ordering contract:
 * - `append` resolves only after fdatasync covers the batch (flushIntervalMs 0),
 *   or after the write (flushIntervalMs > 0, fdatasync on that interval).
 * - `onAppend` listeners see each batch once, in offset order, when it falls
 *   below the high watermark, before its `append` promise resolves.
 * - `read` never returns a batch at or above `maxOffset` (default: the high watermark).
 * Invariant: logStartOffset <= highWatermark <= durable-or-written end <= logEndOffset.
 */
import { RunnelError, setBaseOffset, setPartitionLeaderEpoch, validateBatch, assert, type BatchHeader } from '@runnel/client/codec';
import { AppendQueue } from './append-queue.ts';
import { CHECKPOINT_FILE, encodeCheckpoint } from './checkpoint.ts';
import type { FileHandleCache } from './file-handle-cache.ts';
import { FsLogDirectory } from './fs-segment-file.ts';
import { GroupCommit } from './group-commit.ts';
import { resolveLogOptions, type LogOpenOptions, type LogOptions } from './log-options.ts';
import { loadLog, reloadProducerState, type RecoveryReport } from './log-loader.ts';
import { offsetForTimestamp, readLog, segmentIndexOf, type ReadableLog, type ReadResult } from './log-reader.ts';
import { ProducerStateTable } from './producer-state.ts';
import { segmentsToDelete, shouldRoll } from './retention.ts';
import { Segment, type SegmentConfig } from './segment.ts';
import type { LogDirectory } from './segment-file.ts';
import { SnapshotStore } from './snapshot-store.ts';

export type { ReadResult } from './log-reader.ts';
export { DEFAULT_RETENTION_MS, nativeCrc, resolveLogOptions, type LogOptions, type LogOpenOptions } from './log-options.ts';

/** Largest number of batches (and bytes) in one vectored write. */
const MAX_WRITE_BATCHES = 4096;
const MAX_WRITE_BYTES = 64 * 1024 * 1024;

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  logAppendTimeMs: number;
  /** A retry of an already stored idempotent batch: nothing was appended, these are its original offsets. */
  duplicate: boolean;
}

export interface AppendEvent {
  /** The stored bytes (offsets assigned). Shared: never mutate. */
  batch: Uint8Array;
  baseOffset: number;
  lastOffset: number;
  highWatermark: number;
}

interface PendingAppend {
  batch: Uint8Array;
  segment: Segment;
  result: AppendResult;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface Waiter {
  end: number;
  isDurable: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}

type LogState = 'open' | 'closing' | 'closed' | 'failed';

export class PartitionLog {
  readonly #dir: LogDirectory;
  readonly #options: LogOptions;
  readonly #segmentConfig: SegmentConfig;
  readonly #segments: Segment[];
  #producers: ProducerStateTable;
  readonly #snapshots: SnapshotStore;
  #commit: GroupCommit;
  #logStartOffset: number;
  #recoveryPoint: number;
  #highWatermark: number;
  #highWatermarkLimit: number | null = null;
  readonly #queue = new AppendQueue<PendingAppend>();
  #writeHead = 0;
  #ackHead = 0;
  #visibleHead = 0;
  #writeSegment: Segment;
  #isWriterRunning = false;
  #isSyncerRunning = false;
  #flushTarget = 0;
  readonly #listeners = new Set<(e: AppendEvent) => void>();
  readonly #flushListeners = new Set<(durationMs: number) => void>();
  #waiters: Waiter[] = [];
  #state: LogState = 'open';
  #failure: RunnelError | null = null;
  #flushTimer: ReturnType<typeof setInterval> | null = null;
  #checkpointChain: Promise<void> = Promise.resolve();
  /** Producer snapshot bytes taken when a roll was decided, written by the writer with the new segment. */
  readonly #rollSnapshots = new Map<Segment, Uint8Array>();
  readonly recoveryReport: RecoveryReport;
  /** What log-reader.ts sees: live values, read at each call. */
  readonly #readable: ReadableLog;

  private constructor(dir: LogDirectory, options: LogOptions, loaded: Awaited<ReturnType<typeof loadLog>>, segmentConfig: SegmentConfig) {
    this.#dir = dir;
    this.#options = options;
    this.#segmentConfig = segmentConfig;
    this.#segments = loaded.segments;
    this.#producers = loaded.producers;
    this.#snapshots = new SnapshotStore(dir);
    this.#logStartOffset = loaded.logStartOffset;
    this.#writeSegment = this.#segments[this.#segments.length - 1];
    const end = this.#writeSegment.nextOffset;
    this.#commit = new GroupCommit(end);
    this.#highWatermark = end;
    this.#recoveryPoint = this.#writeSegment.baseOffset;
    this.recoveryReport = loaded.report;
    const segments = this.#segments;
    const commit = (): GroupCommit => this.#commit;
    const log = this;
    this.#readable = {
      segments,
      get logStartOffset() { return log.logStartOffset; },
      get logEndOffset() { return log.logEndOffset; },
      get highWatermark() { return log.highWatermark; },
      get writtenEndOffset() { return commit().writtenEnd; },
    };
  }

  /**
   * Opens (creating if needed) the partition directory and runs recovery.
   * @example const log = await PartitionLog.open('/data/orders-0'); await log.append(encodeRecordBatch({ records: [{ value }] }));
   */
  static async open(path: string, options: LogOpenOptions = {}): Promise<PartitionLog> {
    return PartitionLog.openDirectory(await FsLogDirectory.open(path), options);
  }

  /** Same as `open` on any `LogDirectory` (tests use the in-memory one with fault injection). */
  static async openDirectory(dir: LogDirectory, options: LogOpenOptions = {}): Promise<PartitionLog> {
    const o = resolveLogOptions(options);
    const segmentConfig: SegmentConfig = { indexIntervalBytes: o.indexIntervalBytes, maxBatchBytes: o.maxBatchBytes, crc: o.crc, dir, files: o.files };
    const loaded = await loadLog(dir, { segment: segmentConfig, maxProducersPerPartition: o.maxProducersPerPartition, nowMs: o.nowMs() });
    const log = new PartitionLog(dir, o, loaded, segmentConfig);
    await log.#snapshots.load();
    // Recovered bytes may sit in the page cache only (process crash): make them durable before serving them.
    await log.#writeSegment.requireFile().datasync();
    await log.#writeCheckpoint(false);
    if (o.flushIntervalMs > 0) {
      log.#flushTimer = setInterval(() => log.#requestSync(log.#commit.writtenEnd), o.flushIntervalMs);
      log.#flushTimer.unref?.();
    }
    return log;
  }

  get logStartOffset(): number { return this.#logStartOffset; }
  /** Next offset to assign. */
  get logEndOffset(): number { return this.#commit.assignedEnd; }
  /** Offsets below it are covered by a completed fdatasync. */
  get durableEndOffset(): number { return this.#commit.durableEnd; }
  /** Consumers see only offsets below it. Single replica: the durable (or, with flushIntervalMs > 0, written) end. */
  get highWatermark(): number { return this.#highWatermark; }
  get isDurable(): boolean { return this.#options.flushIntervalMs === 0; }

  /**
   * Replication hook: from now on the high watermark is min(`offset`, local
   * durable end) instead of the local durable end alone. Monotonic.
   */
  setHighWatermark(offset: number): void {
    this.#highWatermarkLimit = Math.max(this.#highWatermarkLimit ?? 0, offset);
    this.#acknowledge();
  }

  /** Listener for batches becoming visible (below the high watermark), in offset order. Returns the unsubscribe. */
  onAppend(listener: (e: AppendEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Listener for each group-commit fdatasync of the syncer, with its duration (fsyncLatency metric). Returns the unsubscribe. */
  onFlush(listener: (durationMs: number) => void): () => void {
    this.#flushListeners.add(listener);
    return () => this.#flushListeners.delete(listener);
  }

  /** Producer state of one producer id (tests, admin). */
  producerState(producerId: number) {
    return this.#producers.entry(producerId);
  }

  /** Segments (base offset, bytes) oldest first (admin, tests). */
  segmentInfo(): { baseOffset: number; sizeBytes: number; nextOffset: number }[] {
    return this.#segments.map((s) => ({ baseOffset: s.baseOffset, sizeBytes: s.sizeBytes, nextOffset: s.nextOffset }));
  }

  /**
   * Appends one RecordBatch v2. Takes ownership of `batch`: its baseOffset
   * (and partitionLeaderEpoch) are written in place.
   */
  append(batch: Uint8Array, opts: { leaderEpoch?: number } = {}): Promise<AppendResult> {
    const refused = this.#checkAppendable(batch);
    if (refused) return Promise.reject(refused);
    const validated = validateBatch(batch, 0, { maxBatchBytes: this.#options.maxBatchBytes }, this.#options.crc);
    if (!validated.ok) return Promise.reject(new RunnelError(validated.code, validated.message));
    const header = validated.value;
    if (header.totalBytes !== batch.length) {
      return Promise.reject(new RunnelError('CORRUPT_MESSAGE', `expected one batch of ${header.totalBytes} bytes, got ${batch.length} bytes`));
    }
    const now = this.#options.nowMs();
    const check = this.#producers.check(header);
    if (check.kind === 'reject') return Promise.reject(new RunnelError(check.code, check.message));
    if (check.kind === 'duplicate') {
      const result: AppendResult = { baseOffset: check.baseOffset, lastOffset: check.lastOffset, logAppendTimeMs: now, duplicate: true };
      return this.#whenOffset(check.lastOffset + 1, false).then(() => result);
    }
    return this.#enqueue(batch, header, now, opts.leaderEpoch);
  }

  #checkAppendable(batch: Uint8Array): RunnelError | null {
    if (this.#state === 'failed') return this.#failure;
    if (this.#state !== 'open') return new RunnelError('SHUTTING_DOWN', 'the log is closing');
    if (batch.length > this.#options.maxBatchBytes) {
      return new RunnelError('MESSAGE_TOO_LARGE', `batch of ${batch.length} bytes exceeds maxBatchBytes ${this.#options.maxBatchBytes}`);
    }
    if (this.#queue.end - this.#ackHead >= this.#options.maxPendingAppends) {
      return new RunnelError('LIMIT_EXCEEDED', `${this.#options.maxPendingAppends} appends already wait for their fdatasync (maxPendingAppends)`);
    }
    return null;
  }

  #enqueue(batch: Uint8Array, header: BatchHeader, now: number, leaderEpoch: number | undefined): Promise<AppendResult> {
    const baseOffset = this.#commit.assignedEnd;
    const lastOffset = baseOffset + header.lastOffsetDelta;
    let segment = this.#segments[this.#segments.length - 1];
    if (shouldRoll(segment, batch.length, lastOffset, this.#options, now)) {
      const next = new Segment(baseOffset, this.#segmentConfig, now, now);
      this.#rollSnapshots.set(next, this.#producers.encodeSnapshot());
      this.#segments.push(next);
      segment = next;
    }
    if (segment.sizeBytes === 0) segment.createdMs = now;
    segment.lastModifiedMs = now;
    setBaseOffset(batch, 0, baseOffset);
    if (leaderEpoch !== undefined) setPartitionLeaderEpoch(batch, 0, leaderEpoch);
    segment.recordBatch(segment.sizeBytes, batch.length, baseOffset, lastOffset, header.maxTimestamp);
    this.#producers.record(header, baseOffset);
    this.#commit.onAssigned(lastOffset + 1);
    return new Promise<AppendResult>((resolve, reject) => {
      const result: AppendResult = { baseOffset, lastOffset, logAppendTimeMs: now, duplicate: false };
      this.#queue.push({ batch, segment, result, resolve, reject });
      void this.#runWriter();
    });
  }

  /** Writer loop: one vectored write per run of queued batches of the same segment; rolls segments in order. */
  async #runWriter(): Promise<void> {
    if (this.#isWriterRunning) return;
    this.#isWriterRunning = true;
    try {
      while (this.#writeHead < this.#queue.end && this.#state !== 'failed') {
        const first = this.#queue.at(this.#writeHead);
        if (first.segment !== this.#writeSegment) {
          await this.#roll(first.segment);
          continue;
        }
        const chunks: Uint8Array[] = [];
        let end = this.#writeHead;
        let bytes = 0;
        while (end < this.#queue.end && chunks.length < MAX_WRITE_BATCHES && bytes < MAX_WRITE_BYTES) {
          const p = this.#queue.at(end);
          if (p.segment !== first.segment) break;
          chunks.push(p.batch);
          bytes += p.batch.length;
          end++;
        }
        assert(this.#commit.startWrite(), 'writer started while a write is in flight');
        try {
          await first.segment.requireFile().append(chunks);
        } catch (err) {
          this.#commit.onWriteFailed();
          throw err;
        }
        this.#writeHead = end;
        this.#commit.onWritten(this.#queue.at(end - 1).result.lastOffset + 1);
        if (this.isDurable || this.#flushTarget > this.#commit.durableEnd) void this.#runSyncer();
        else this.#acknowledge();
      }
    } catch (err) {
      this.#fail(err);
    } finally {
      this.#isWriterRunning = false;
    }
  }

  /** Syncer loop: fdatasync whatever is written; appends written meanwhile share the next one. */
  async #runSyncer(): Promise<void> {
    if (this.#isSyncerRunning) return;
    this.#isSyncerRunning = true;
    try {
      for (let target = this.#commit.startSync(); target !== null; target = this.#commit.startSync()) {
        // NB: a roll fdatasyncs the old segment before writing the new one, so offsets < target live in this file or are durable.
        const startedMs = performance.now();
        try {
          // Pinned: a roll may seal this segment while its fdatasync runs; the LRU must not close it meanwhile.
          await this.#writeSegment.withFile((file) => file.datasync());
          for (const listener of this.#flushListeners) listener(performance.now() - startedMs);
        } catch (err) {
          this.#commit.onSyncFailed();
          throw err;
        }
        this.#commit.onSynced();
        this.#acknowledge();
      }
    } catch (err) {
      this.#fail(err);
    } finally {
      this.#isSyncerRunning = false;
    }
  }

  /** Seals the write segment (fdatasync, index files) and starts `next` with its producer snapshot. */
  async #roll(next: Segment): Promise<void> {
    const old = this.#writeSegment;
    await old.requireFile().datasync();
    this.#commit.markDurable(this.#commit.writtenEnd);
    this.#acknowledge();
    await old.writeIndexes(this.#dir);
    await next.becomeActive();
    const snapshot = this.#rollSnapshots.get(next);
    this.#rollSnapshots.delete(next);
    if (snapshot) await this.#snapshots.write(next.baseOffset, snapshot);
    this.#writeSegment = next;
    old.seal();
    this.#recoveryPoint = next.baseOffset;
    await this.#writeCheckpoint(false);
  }

  #requestSync(end: number): void {
    this.#flushTarget = Math.max(this.#flushTarget, end);
    void this.#runSyncer();
  }

  /** Moves the high watermark, fires listeners, resolves appends and waiters, in offset order. */
  #acknowledge(): void {
    const ackEnd = this.isDurable ? this.#commit.durableEnd : this.#commit.writtenEnd;
    const hw = this.#highWatermarkLimit === null ? ackEnd : Math.min(ackEnd, this.#highWatermarkLimit);
    if (hw > this.#highWatermark) this.#highWatermark = hw;
    while (this.#visibleHead < this.#writeHead && this.#queue.at(this.#visibleHead).result.lastOffset < this.#highWatermark) {
      const p = this.#queue.at(this.#visibleHead++);
      const event: AppendEvent = { batch: p.batch, baseOffset: p.result.baseOffset, lastOffset: p.result.lastOffset, highWatermark: this.#highWatermark };
      for (const listener of this.#listeners) listener(event);
    }
    while (this.#ackHead < this.#writeHead && this.#queue.at(this.#ackHead).result.lastOffset < ackEnd) {
      const p = this.#queue.at(this.#ackHead++);
      p.resolve(p.result);
    }
    this.#queue.trimBefore(Math.min(this.#ackHead, this.#visibleHead));
    if (this.#waiters.length > 0) {
      this.#waiters = this.#waiters.filter((w) => {
        const isDone = w.end <= (w.isDurable ? this.#commit.durableEnd : ackEnd);
        if (isDone) w.resolve();
        return !isDone;
      });
    }
  }

  /** Resolves once offsets below `end` are acknowledged (`isDurable`: fdatasync'ed, whatever the mode). */
  #whenOffset(end: number, isDurable: boolean): Promise<void> {
    const reached = isDurable ? this.#commit.durableEnd : (this.isDurable ? this.#commit.durableEnd : this.#commit.writtenEnd);
    if (end <= reached) return Promise.resolve();
    if (this.#state === 'failed') return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ end, isDurable, resolve, reject }));
  }

  #fail(err: unknown): void {
    if (this.#state === 'failed') return;
    this.#state = 'failed';
    this.#failure = new RunnelError('KAFKA_STORAGE_ERROR', `log ${this.#dir.path} failed: ${(err as Error)?.message ?? err}`, { cause: err });
    for (let i = this.#ackHead; i < this.#queue.end; i++) this.#queue.at(i).reject(this.#failure);
    this.#ackHead = this.#queue.end;
    for (const w of this.#waiters) w.reject(this.#failure);
    this.#waiters = [];
  }

  #writeCheckpoint(isCleanShutdown: boolean): Promise<void> {
    const bytes = encodeCheckpoint({ version: 1, logStartOffset: this.#logStartOffset, recoveryPoint: this.#recoveryPoint, isCleanShutdown });
    this.#checkpointChain = this.#checkpointChain.then(() => this.#dir.writeAtomic(CHECKPOINT_FILE, bytes));
    return this.#checkpointChain;
  }

  /** Makes every append issued so far durable (whatever flushIntervalMs says). */
  async flush(): Promise<void> {
    const end = this.#commit.assignedEnd;
    this.#flushTarget = Math.max(this.#flushTarget, end);
    if (!this.#isWriterRunning) void this.#runSyncer();
    await this.#whenOffset(end, true);
  }

  /**
   * Batches from the one containing `offset`, at most `maxBytes` (at least one whole batch if any),
   * none at or above `maxOffset` (default the high watermark). OFFSET_OUT_OF_RANGE below
   * logStartOffset or above logEndOffset. See log-reader.ts.
   */
  read(offset: number, maxBytes: number, opts: { maxOffset?: number } = {}): Promise<ReadResult> {
    return readLog(this.#readable, offset, maxBytes, opts);
  }

  /** First offset whose batch has maxTimestamp >= `timestampMs`, below the high watermark; null if none. */
  offsetForTimestamp(timestampMs: number): Promise<number | null> {
    return offsetForTimestamp(this.#readable, timestampMs);
  }

  /** Segment file handles of this log's cache (maxOpenFiles), e.g. for an openFiles metric. */
  get files(): FileHandleCache {
    return this.#options.files;
  }

  /**
   * Deletes whole old segments past retentionBytes / retentionMs and advances
   * logStartOffset. Returns the number of segments deleted. Either a clock
   * reading, or overrides of the retention settings (topic config changes).
   */
  async enforceRetention(at: number | { nowMs?: number; retentionMs?: number; retentionBytes?: number } = {}): Promise<number> {
    const o = typeof at === 'number' ? { nowMs: at } : at;
    const retention = { retentionMs: o.retentionMs ?? this.#options.retentionMs, retentionBytes: o.retentionBytes ?? this.#options.retentionBytes };
    const sealed = this.#segments.indexOf(this.#writeSegment);
    const candidates = this.#segments.slice(0, sealed + 1).map((s) => ({ sizeBytes: s.sizeBytes, lastModifiedMs: s.lastModifiedMs }));
    const n = segmentsToDelete(candidates, retention, o.nowMs ?? this.#options.nowMs());
    if (n === 0) return 0;
    const removed = this.#segments.splice(0, n);
    this.#logStartOffset = this.#segments[0].baseOffset;
    // Persist the new start before deleting files: a crash in between only leaves files the loader drops.
    await this.#writeCheckpoint(false);
    this.#producers.removeBefore(this.#logStartOffset);
    for (const s of removed) await s.delete();
    return n;
  }

  /** Removes every batch at or after the one containing `offset` (replication divergence). Waits for in-flight appends. */
  async truncateTo(offset: number): Promise<void> {
    await this.flush();
    if (offset >= this.logEndOffset) return;
    const target = Math.max(offset, this.#logStartOffset);
    const k = segmentIndexOf(this.#segments, target);
    for (const s of this.#segments.splice(k + 1)) await s.delete();
    const segment = this.#segments[k];
    await segment.becomeActive();
    const file = segment.requireFile();
    const hint = segment.offsetIndex.lookup(target);
    let cut = { position: file.size, offset: segment.nextOffset };
    await segment.scan(hint.position, hint.offset, file.size, false, (b) => {
      if (b.header.baseOffset + b.header.lastOffsetDelta < target) return true;
      cut = { position: b.position, offset: b.header.baseOffset };
      return false;
    });
    await file.truncate(cut.position);
    segment.resetIndexes();
    await segment.scan(0, segment.baseOffset, cut.position, false, (b) => {
      segment.recordBatch(b.position, b.header.totalBytes, b.header.baseOffset, b.header.baseOffset + b.header.lastOffsetDelta, b.header.maxTimestamp);
      return true;
    });
    this.#writeSegment = segment;
    this.#commit.reset(cut.offset);
    this.#highWatermark = Math.min(this.#highWatermark, cut.offset);
    if (this.#highWatermarkLimit !== null) this.#highWatermarkLimit = Math.min(this.#highWatermarkLimit, cut.offset);
    this.#producers = await reloadProducerState(this.#dir, this.#segments, this.#options.maxProducersPerPartition);
    await this.#snapshots.load();
    this.#recoveryPoint = segment.baseOffset;
    await this.#writeCheckpoint(false);
  }

  /** Finishes in-flight appends, fdatasyncs, writes indexes, a producer snapshot and the clean-shutdown checkpoint. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    const wasOpen = this.#state === 'open';
    this.#state = wasOpen ? 'closing' : this.#state;
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    if (wasOpen) {
      await this.flush();
      while (this.#isWriterRunning || this.#isSyncerRunning) await new Promise((r) => setImmediate(r));
      await this.#writeSegment.writeIndexes(this.#dir);
      await this.#snapshots.write(this.logEndOffset, this.#producers.encodeSnapshot());
      this.#recoveryPoint = this.logEndOffset;
      await this.#writeCheckpoint(true);
    }
    for (const s of this.#segments) await s.close();
    this.#state = 'closed';
  }
}
