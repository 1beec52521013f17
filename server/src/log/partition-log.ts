/**
 * The durable log of one topic partition: the public API the broker and
 * replication code against, and the log's lifecycle (open and recovery,
 * segment roll, retention, truncation, close). See docs/storage.md.
 *
 * Append path (hot): validate header + CRC (or take the caller's validated
 * header) → the writer holds the write segment's handle (an idle log's is
 * reopened first, appends arriving meanwhile wait in line behind it:
 * `LogWriter.whenWritable`, `#admitWaiting`) → idempotence check → assign
 * offsets in place → the write path
 * (log-writer.ts over the pure append-pipeline.ts): one vectored write for
 * every queued batch, then a shared fdatasync (group commit). Per batch,
 * never per record.
 *
 * Ordering contract:
 * - `append` resolves only after fdatasync covers the batch (flushIntervalMs 0),
 *   or after the write (flushIntervalMs > 0, fdatasync on that interval).
 * - `onAppend` listeners see each batch once, in offset order, when it falls
 *   below the high watermark, before its `append` promise resolves.
 * - `read` never returns a batch at or above `maxOffset` (default: the high watermark).
 * - Small metadata files (checkpoint, leader epochs) are written in call order
 *   through one chain, so an epoch entry is durable before a checkpoint moves
 *   the recovery point past it.
 * Invariant: logStartOffset <= highWatermark <= durable-or-written end <= logEndOffset.
 */
import { assert, AssertionError, BatchField, RunnelError, setBaseOffset, setPartitionLeaderEpoch, validateBatch, type BatchHeader } from '@runnel/client/codec';
import { AppendPipeline, type AppendResult } from './append-pipeline.ts';
import { CHECKPOINT_FILE, encodeCheckpoint } from './checkpoint.ts';
import type { FileHandleCache } from './file-handle-cache.ts';
import { FsLogDirectory } from './fs-segment-file.ts';
import type { EpochEndOffset, EpochEntry, LeaderEpochCache } from './leader-epoch-cache.ts';
import { writeLeaderEpochs } from './leader-epoch-checkpoint.ts';
import { resolveLogOptions, type LogOpenOptions, type LogOptions } from './log-options.ts';
import { TailCache } from './tail-cache.ts';
import { loadLog, reloadProducerState, type LoadedLog, type RecoveryReport } from './log-loader.ts';
import { offsetForTimestamp, readLog, segmentIndexOf, type ReadableLog, type ReadResult } from './log-reader.ts';
import { LogWriter, type AppendEvent } from './log-writer.ts';
import { ProducerStateTable } from './producer-state.ts';
import { segmentsToDelete, shouldRoll } from './retention.ts';
import { Segment, type SegmentConfig } from './segment.ts';
import type { LogDirectory } from './segment-file.ts';
import { SnapshotStore } from './snapshot-store.ts';

export type { ReadResult } from './log-reader.ts';
export type { AppendResult } from './append-pipeline.ts';
export type { AppendEvent } from './log-writer.ts';
export type { EpochEndOffset, EpochEntry } from './leader-epoch-cache.ts';
export { DEFAULT_RETENTION_MS, nativeCrc, resolveLogOptions, type LogOptions, type LogOpenOptions } from './log-options.ts';

export interface LogAppendOptions {
  /** Stamped into the batch's partitionLeaderEpoch (outside the CRC). Omitted: the batch keeps its own (a follower appends the leader's batches as they are). */
  leaderEpoch?: number;
  /**
   * Validate once: the header YOUR `validateRecords` (or `validateBatch` with
   * its CRC check on) returned for exactly these bytes, unmodified since. The
   * log then neither re-reads the header nor re-checks the CRC. Still always
   * checked, cheaply: one batch of `header.totalBytes` = `batch.length` bytes,
   * within maxBatchBytes, whose CRC field is `header.crc`. A header of other
   * bytes breaks the log's CRC-on-write guarantee: never pass one.
   */
  header?: BatchHeader;
}

type LogState = 'open' | 'closing' | 'closed';

interface WaitingAppend {
  batch: Uint8Array;
  header: BatchHeader;
  leaderEpoch: number | undefined;
  /** `appendAsFollower`: the leader's offsets and epoch, no idempotence check. */
  isFollower: boolean;
  resolve: (r: AppendResult | Promise<AppendResult>) => void;
  reject: (e: unknown) => void;
}

export class PartitionLog {
  readonly #dir: LogDirectory;
  readonly #options: LogOptions;
  readonly #segmentConfig: SegmentConfig;
  readonly #segments: Segment[];
  #producers: ProducerStateTable;
  readonly #snapshots: SnapshotStore;
  readonly #epochs: LeaderEpochCache;
  readonly #writer: LogWriter;
  readonly #pipeline: AppendPipeline<Segment>;
  #logStartOffset: number;
  #recoveryPoint: number;
  #writeSegment: Segment;
  #state: LogState = 'open';
  #flushTimer: ReturnType<typeof setInterval> | null = null;
  #metadataChain: Promise<void> = Promise.resolve();
  /** Appends waiting for the write handle of an idle log (`#admitWaiting`), in arrival order. */
  readonly #waitingAppends: WaitingAppend[] = [];
  /** Producer snapshot bytes taken when a roll was decided, written by the writer with the new segment. */
  readonly #rollSnapshots = new Map<Segment, Uint8Array>();
  readonly recoveryReport: RecoveryReport;
  /**
   * The high watermark the checkpoint recorded before this open (null: none
   * recorded). A replica whose recovery cut its log below it lost records the
   * cluster had committed (replication: not electable until it re-fetched them).
   */
  readonly checkpointedHighWatermark: number | null;
  /** What log-reader.ts sees: live values, read at each call. */
  readonly #readable: ReadableLog;
  /** The newest batches as stored, for reads at the tail (tail-cache.ts). */
  readonly #tail: TailCache;

  private constructor(dir: LogDirectory, options: LogOptions, loaded: LoadedLog, segmentConfig: SegmentConfig) {
    this.#dir = dir;
    this.#options = options;
    this.#segmentConfig = segmentConfig;
    this.#segments = loaded.segments;
    this.#producers = loaded.producers;
    this.#snapshots = new SnapshotStore(dir);
    this.#epochs = loaded.leaderEpochs;
    this.#logStartOffset = loaded.logStartOffset;
    this.#writeSegment = this.#segments[this.#segments.length - 1];
    const endOffset = this.#writeSegment.nextOffset;
    // Replicated: the checkpoint's high watermark (a lower one only hides records; none: nothing is known committed).
    const initialHighWatermark = options.isReplicated
      ? Math.min(Math.max(loaded.checkpoint?.highWatermark ?? loaded.logStartOffset, loaded.logStartOffset), endOffset)
      : undefined;
    this.#pipeline = new AppendPipeline<Segment>(endOffset, options.flushIntervalMs === 0, initialHighWatermark);
    const log = this;
    this.#writer = new LogWriter(this.#pipeline, { get writeSegment() { return log.#writeSegment; }, roll: (next) => this.#roll(next) }, dir.path);
    this.#recoveryPoint = this.#writeSegment.baseOffset;
    this.recoveryReport = loaded.report;
    this.checkpointedHighWatermark = loaded.checkpoint?.highWatermark ?? null;
    const segments = this.#segments;
    const pipeline = this.#pipeline;
    this.#tail = new TailCache(options.tailCacheBytes);
    // NB: registered first, so the cache holds a write's batches before any other listener (a held fetch) reads.
    if (options.tailCacheBytes > 0) this.#writer.onWrite((end) => this.#tail.written(end));
    this.#readable = {
      tail: this.#tail,
      segments,
      get logStartOffset() { return log.logStartOffset; },
      get logEndOffset() { return log.logEndOffset; },
      get highWatermark() { return log.highWatermark; },
      get writtenEndOffset() { return pipeline.writtenEnd; },
    };
  }

  /**
   * Opens (creating if needed) the partition directory and runs recovery.
   * @example const log = await PartitionLog.open('/data/orders-0'); await log.append(encodeRecordBatch({ records: [{ value }] }));
   */
  static async open(path: string, options: LogOpenOptions = {}): Promise<PartitionLog> {
    return PartitionLog.openDirectory(await FsLogDirectory.open(path, resolveLogOptions(options).inlineIo), options);
  }

  /** Same as `open` on any `LogDirectory` (tests use the in-memory one with fault injection). */
  static async openDirectory(dir: LogDirectory, options: LogOpenOptions = {}): Promise<PartitionLog> {
    const o = resolveLogOptions(options);
    const segmentConfig: SegmentConfig = { indexIntervalBytes: o.indexIntervalBytes, maxBatchBytes: o.maxBatchBytes, crc: o.crc, dir, files: o.files };
    const loaded = await loadLog(dir, { segment: segmentConfig, maxProducersPerPartition: o.maxProducersPerPartition, nowMs: o.nowMs() });
    const log = new PartitionLog(dir, o, loaded, segmentConfig);
    await log.#snapshots.load();
    // Recovered bytes may sit in the page cache only (process crash): make them durable before serving them.
    await log.#writeSegment.withFile((file) => file.datasync());
    if (loaded.isLeaderEpochFileStale) await log.#writeLeaderEpochs();
    await log.#writeCheckpoint(false);
    if (o.flushIntervalMs > 0) {
      log.#flushTimer = setInterval(() => log.#writer.requestSync(log.#pipeline.writtenEnd), o.flushIntervalMs);
      log.#flushTimer.unref?.();
    }
    return log;
  }

  get logStartOffset(): number { return this.#logStartOffset; }
  /** Next offset to assign. */
  get logEndOffset(): number { return this.#pipeline.assignedEnd; }
  /** Offsets below it are covered by a completed fdatasync. */
  get durableEndOffset(): number { return this.#pipeline.durableEnd; }
  /** Offsets below it are written to the segment files (readable up to it with `maxOffset`), durable or not. */
  get writtenEndOffset(): number { return this.#pipeline.writtenEnd; }
  /** Consumers see only offsets below it. Single replica: the durable (or, with flushIntervalMs > 0, written) end. */
  get highWatermark(): number { return this.#pipeline.highWatermark; }
  get isDurable(): boolean { return this.#options.flushIntervalMs === 0; }
  /** Opened with `isReplicated` (the high watermark moves only by `setHighWatermark`). */
  get isReplicated(): boolean { return this.#options.isReplicated; }

  /** Latest leader epoch that appended to this log (KIP-101); -1 (Kafka's UNDEFINED_EPOCH) when no batch carries one. */
  get leaderEpoch(): number { return this.#epochs.latestEpoch; }

  /**
   * OffsetsForLeaderEpoch (KIP-101/279): for the latest epoch `{ epoch, endOffset: logEndOffset }`;
   * for an older one the largest known epoch <= it and the start offset of the next higher one;
   * `{ epoch: -1, endOffset: -1 }` when this log cannot answer (see leader-epoch-cache.ts).
   * @example const { endOffset } = log.endOffsetForEpoch(followerEpoch); if (endOffset >= 0) await follower.truncateTo(endOffset);
   */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    return this.#epochs.endOffsetFor(epoch, this.logEndOffset);
  }

  /** Leader epoch → first offset, oldest first (admin, tests). */
  leaderEpochEntries(): EpochEntry[] {
    return this.#epochs.entries;
  }

  /**
   * Replication hook: from now on the high watermark is min(`offset`, local
   * durable end) instead of the local durable end alone. Monotonic.
   */
  setHighWatermark(offset: number): void {
    this.#writer.setHighWatermark(offset);
  }

  /** Listener for batches becoming visible (below the high watermark), in offset order. Returns the unsubscribe. */
  onAppend(listener: (e: AppendEvent) => void): () => void {
    return this.#writer.onAppend(listener);
  }

  /**
   * Listener for each completed write, with the new written end (offsets below
   * it are readable with `maxOffset` up to it, durable or not): a replication
   * leader wakes the follower fetches it holds. Must not throw. Returns the unsubscribe.
   */
  onWrite(listener: (writtenEndOffset: number) => void): () => void {
    return this.#writer.onWrite(listener);
  }

  /** Listener for each group-commit fdatasync of the syncer, with its duration (fsyncLatency metric). Returns the unsubscribe. */
  onFlush(listener: (durationMs: number) => void): () => void {
    return this.#writer.onFlush(listener);
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
   * (and partitionLeaderEpoch) are written in place. A batch whose stored
   * partitionLeaderEpoch is above `leaderEpoch` (the latest) starts that
   * epoch at its base offset. See `LogAppendOptions` for `header` (validate once).
   */
  append(batch: Uint8Array, opts: LogAppendOptions = {}): Promise<AppendResult> {
    const refused = this.#checkAppendable(batch);
    if (refused) return Promise.reject(refused);
    const header = this.#headerOf(batch, opts.header);
    if (header instanceof RunnelError) return Promise.reject(header);
    // Hot path: the writer holds the write handle and nothing waits for it. Else (an idle log whose
    // handle the LRU may have closed) wait in line for it, behind every append that arrived earlier.
    return this.#admitOrWait(batch, header, opts.leaderEpoch, false);
  }

  /**
   * Replication (Kafka's appendAsFollower): appends one batch fetched from the
   * leader AS IT IS: its stored baseOffset, which must be `logEndOffset` when
   * it is admitted (else an AssertionError: the caller fetched from the wrong
   * place), and its partitionLeaderEpoch (which starts an epoch here when above
   * the latest). The producer state is updated from the batch without the
   * idempotence check (the leader already decided), so a later retry to this
   * replica as leader is still answered as a duplicate. The CRC is checked
   * (validate once: pass the header `validateBatch` returned for these bytes).
   * Resolves, as `append`, once fdatasync covers it.
   * @example for (const b of iterateBatches(fetched)) if (b.ok) await log.appendAsFollower(fetched.subarray(b.value.at, b.value.at + b.value.header.totalBytes), b.value.header);
   */
  appendAsFollower(batch: Uint8Array, header?: BatchHeader): Promise<AppendResult> {
    const refused = this.#checkAppendable(batch);
    if (refused) return Promise.reject(refused);
    const checked = this.#headerOf(batch, header);
    if (checked instanceof RunnelError) return Promise.reject(checked);
    return this.#admitOrWait(batch, checked, undefined, true);
  }

  /**
   * The header of one whole batch: validated here (structure and CRC) when the caller has none, else the
   * caller's, checked cheaply against these bytes (CRC field, length). A refusal is returned, not thrown.
   */
  #headerOf(batch: Uint8Array, header: BatchHeader | undefined): BatchHeader | RunnelError {
    if (header === undefined) {
      const validated = validateBatch(batch, 0, { maxBatchBytes: this.#options.maxBatchBytes }, this.#options.crc);
      if (!validated.ok) return new RunnelError(validated.code, validated.message);
      header = validated.value;
    } else if (header.crc !== crcFieldOf(batch)) {
      return new RunnelError('CORRUPT_MESSAGE', `the header passed with the batch has CRC ${header.crc}, the batch ${crcFieldOf(batch)}: pass the header validated for exactly these bytes`);
    }
    if (header.totalBytes !== batch.length) return new RunnelError('CORRUPT_MESSAGE', `expected one batch of ${header.totalBytes} bytes, got ${batch.length} bytes`);
    return header;
  }

  #admitOrWait(batch: Uint8Array, header: BatchHeader, leaderEpoch: number | undefined, isFollower: boolean): Promise<AppendResult> {
    if (this.#waitingAppends.length === 0 && this.#writer.whenWritable() === null) return this.#admit(batch, header, leaderEpoch, isFollower);
    return new Promise<AppendResult>((resolve, reject) => {
      this.#waitingAppends.push({ batch, header, leaderEpoch, isFollower, resolve, reject });
      if (this.#waitingAppends.length === 1) void this.#admitWaiting();
    });
  }

  /**
   * Admits the waiting appends in arrival order once the writer holds the write
   * handle: all of them in one synchronous pass, so no later append can
   * overtake them (idempotent sequences stay in order). No descriptor free:
   * every waiting append is refused with the cache's LIMIT_EXCEEDED
   * (retryable; no offset was assigned, the log keeps working).
   */
  async #admitWaiting(): Promise<void> {
    const waiting = this.#waitingAppends;
    while (waiting.length > 0) {
      const writable = this.#writer.whenWritable();
      if (writable === null) {
        const w = waiting.shift()!;
        const refused = this.#checkAppendable(w.batch);
        if (refused) w.reject(refused);
        else w.resolve(this.#admit(w.batch, w.header, w.leaderEpoch, w.isFollower));
        continue;
      }
      try {
        await writable;
      } catch (err) {
        for (const w of waiting.splice(0)) w.reject(this.#checkAppendable(w.batch) ?? err);
        return;
      }
    }
    // Every one was a duplicate or refused: nothing holds the handle.
    this.#writer.releaseIfIdle();
  }

  /** The idempotence check (not for a follower's batch), then offsets and the write path. Only while the writer holds the write handle. */
  #admit(batch: Uint8Array, header: BatchHeader, leaderEpoch: number | undefined, isFollower: boolean): Promise<AppendResult> {
    const now = this.#options.nowMs();
    if (isFollower) {
      const end = this.#pipeline.assignedEnd;
      if (header.baseOffset !== end) return Promise.reject(new AssertionError(`appendAsFollower: batch at offset ${header.baseOffset}, the log ends at ${end} (fetch from the log end)`));
      return this.#enqueue(batch, header, now, undefined);
    }
    const check = this.#producers.check(header);
    if (check.kind === 'reject') return Promise.reject(new RunnelError(check.code, check.message));
    if (check.kind === 'duplicate') {
      const result: AppendResult = { baseOffset: check.baseOffset, lastOffset: check.lastOffset, logAppendTimeMs: now, duplicate: true };
      return this.#writer.whenOffset(check.lastOffset + 1, false).then(() => result);
    }
    return this.#enqueue(batch, header, now, leaderEpoch);
  }

  #checkAppendable(batch: Uint8Array): RunnelError | null {
    if (this.#state === 'closed') return new RunnelError('SHUTTING_DOWN', 'the log is closed');
    if (this.#writer.failure) return this.#writer.failure;
    if (this.#state !== 'open') return new RunnelError('SHUTTING_DOWN', 'the log is closing');
    if (batch.length > this.#options.maxBatchBytes) {
      return new RunnelError('MESSAGE_TOO_LARGE', `batch of ${batch.length} bytes exceeds maxBatchBytes ${this.#options.maxBatchBytes}`);
    }
    if (this.#pipeline.pendingCount >= this.#options.maxPendingAppends) {
      return new RunnelError('LIMIT_EXCEEDED', `${this.#options.maxPendingAppends} appends already wait for their fdatasync (maxPendingAppends)`);
    }
    return null;
  }

  #enqueue(batch: Uint8Array, header: BatchHeader, now: number, leaderEpoch: number | undefined): Promise<AppendResult> {
    const baseOffset = this.#pipeline.assignedEnd;
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
    // Same rule as recovery (log-loader.ts): the stored epoch, if above the latest, starts at this batch.
    if (this.#epochs.maybeAssign(leaderEpoch ?? header.partitionLeaderEpoch, baseOffset)) {
      this.#writeLeaderEpochs().catch((err) => this.#writer.fail(err));
    }
    segment.recordBatch(segment.sizeBytes, batch.length, baseOffset, lastOffset, header.maxTimestamp);
    this.#producers.record(header, baseOffset);
    this.#tail.append(baseOffset, lastOffset, batch);
    return new Promise<AppendResult>((resolve, reject) => {
      const result: AppendResult = { baseOffset, lastOffset, logAppendTimeMs: now, duplicate: false };
      this.#writer.enqueue({ batch, segment, result, resolve, reject });
    });
  }

  /** Called by the writer once the write segment is fdatasync'ed: seals it (index files) and starts `next` with its producer snapshot. */
  async #roll(next: Segment): Promise<void> {
    const old = this.#writeSegment;
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

  /** Runs `write` (an atomic file replacement) after every earlier metadata write: the files change in call order. */
  #writeMetadata(write: () => Promise<void>): Promise<void> {
    this.#metadataChain = this.#metadataChain.then(write);
    return this.#metadataChain;
  }

  #writeCheckpoint(isCleanShutdown: boolean): Promise<void> {
    const bytes = encodeCheckpoint({ version: 1, logStartOffset: this.#logStartOffset, recoveryPoint: this.#recoveryPoint, isCleanShutdown, highWatermark: this.highWatermark });
    return this.#writeMetadata(() => this.#dir.writeAtomic(CHECKPOINT_FILE, bytes));
  }

  /** NB: the entries are taken when the write runs, so a queued write never persists an older cache than an earlier one. */
  #writeLeaderEpochs(): Promise<void> {
    return this.#writeMetadata(() => writeLeaderEpochs(this.#dir, this.#epochs));
  }

  /**
   * Writes the checkpoint now, recording the current high watermark (a replica
   * calls it periodically, as Kafka's replica.high.watermark.checkpoint.interval.ms,
   * so a restart hides less than it would from the last roll's checkpoint).
   */
  checkpointHighWatermark(): Promise<void> {
    if (this.#state !== 'open') return Promise.resolve();
    return this.#writeCheckpoint(false);
  }

  /** Makes every append issued so far durable (whatever flushIntervalMs says). */
  flush(): Promise<void> {
    return this.#writer.flush();
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
   * logStartOffset (and the first leader epoch's start with it). Returns the
   * number of segments deleted. Either a clock reading, or overrides of the
   * retention settings (topic config changes).
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
    // NB: a stale epoch file is cut to logStartOffset again on open, so its write may lag the deletion.
    if (this.#epochs.truncateFromStart(this.#logStartOffset)) await this.#writeLeaderEpochs();
    for (const s of removed) await s.delete();
    return n;
  }

  /**
   * Removes every batch at or after the one containing `offset` (replication
   * divergence, KIP-101/279), with their leader epochs. Waits for in-flight appends.
   */
  async truncateTo(offset: number): Promise<void> {
    await this.flush();
    // The writer lets go of its pin (the segment it holds may be deleted below).
    await this.#writer.whenIdle();
    if (offset >= this.logEndOffset) return;
    const target = Math.max(offset, this.#logStartOffset);
    const k = segmentIndexOf(this.#segments, target);
    for (const s of this.#segments.splice(k + 1)) await s.delete();
    const segment = this.#segments[k];
    const end = await segment.truncateTo(target);
    this.#writeSegment = segment;
    this.#pipeline.reset(end);
    this.#tail.truncateFrom(end);
    // NB: entries past the new end left in the file are dropped again on open (log-loader.ts).
    if (this.#epochs.truncateFromEnd(end)) await this.#writeLeaderEpochs();
    this.#producers = await reloadProducerState(this.#dir, this.#segments, this.#options.maxProducersPerPartition);
    await this.#snapshots.load();
    this.#recoveryPoint = segment.baseOffset;
    await this.#writeCheckpoint(false);
  }

  /**
   * Replication (Kafka's truncateFullyAndStartAt): drops every batch and
   * restarts the log empty at `offset`, which may lie past its end: a follower
   * whose log ends below the leader's log start (retention deleted what it
   * needs) continues from there. Producer state and leader epochs start
   * empty; the high watermark is `offset`. Crash order: the new segment file,
   * then the checkpoint naming `offset` as log start, then the deletions (the
   * loader drops segments wholly below the log start).
   */
  async truncateFullyAndStartAt(offset: number): Promise<void> {
    assert(Number.isSafeInteger(offset) && offset >= 0, `truncateFullyAndStartAt(${offset}): a safe integer >= 0 is required`);
    await this.flush();
    await this.#writer.whenIdle();
    const now = this.#options.nowMs();
    const old = this.#segments.splice(0);
    const reused = old.find((s) => s.baseOffset === offset);
    const next = reused ?? new Segment(offset, this.#segmentConfig, now, now);
    if (reused) await reused.truncateTo(offset);
    await next.becomeActive();
    this.#segments.push(next);
    this.#writeSegment = next;
    this.#logStartOffset = offset;
    this.#recoveryPoint = offset;
    this.#pipeline.restartAt(offset);
    this.#tail.clear();
    await this.#writeCheckpoint(false);
    for (const s of old) if (s !== next) await s.delete();
    if (this.#epochs.truncateFromEnd(0)) await this.#writeLeaderEpochs();
    this.#producers = new ProducerStateTable(this.#options.maxProducersPerPartition);
    await this.#snapshots.clear();
  }

  /** Finishes in-flight appends, fdatasyncs, writes indexes, a producer snapshot and the clean-shutdown checkpoint. */
  async close(): Promise<void> {
    const isFailed = this.#writer.failure !== null;
    // A log that failed (even while closing) closes its files without flushing.
    if (this.#state === 'closed' || (this.#state === 'closing' && !isFailed)) return;
    const wasOpen = this.#state === 'open' && !isFailed;
    this.#state = 'closing';
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    if (wasOpen) {
      await this.flush();
      await this.#writer.whenIdle();
      await this.#writeSegment.writeIndexes(this.#dir);
      await this.#snapshots.write(this.logEndOffset, this.#producers.encodeSnapshot());
      this.#recoveryPoint = this.logEndOffset;
      await this.#writeCheckpoint(true);
    }
    for (const s of this.#segments) await s.close();
    this.#tail.clear();
    this.#state = 'closed';
  }
}

/** The batch's stored CRC field (uint32 at BatchField.crc): a 4-byte read, no allocation. Callers checked the length. */
function crcFieldOf(batch: Uint8Array): number {
  const i = BatchField.crc;
  return ((batch[i] << 24) | (batch[i + 1] << 16) | (batch[i + 2] << 8) | batch[i + 3]) >>> 0;
}
