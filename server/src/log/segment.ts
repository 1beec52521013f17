/**
 * One log segment: a `<base>.log` file of concatenated RecordBatch v2 bytes
 * plus its in-memory offset and time indexes (written to `.index` and
 * `.timeindex` when the segment is sealed or the log closes cleanly).
 *
 * Invariants: batches in the file have contiguous offsets starting at
 * `baseOffset`; `sizeBytes`/`nextOffset` count batches assigned to the
 * segment (possibly not yet written); index entries are added by one rule
 * (`recordBatch`) whether appending or rebuilding, so a rebuilt index equals
 * the one written live.
 * File handles come from the broker's FileHandleCache (maxOpenFiles): the
 * log's writer pins the active segment's handle while it has appends to
 * write or fdatasync (`acquireWrite`/`releaseWrite`); every read or scan pins
 * the handle for its I/O (`withFile`). No segment holds a handle for its
 * life: an idle partition's may be closed and is reopened on demand.
 */
import { BATCH_OVERHEAD_BYTES, RunnelError, type Crc32cFn } from '@runnel/client/codec';
import type { CachedFile, FileHandleCache } from './file-handle-cache.ts';
import { MAX_RELATIVE_VALUE, OffsetIndex } from './offset-index.ts';
import { scanChunk, type ChunkScan, type ScannedBatch, type TailProblem } from './recovery.ts';
import { segmentFileName, type LogDirectory, type SegmentFile } from './segment-file.ts';
import { TimeIndex } from './time-index.ts';

/** Bytes read per I/O while scanning a segment (recovery, index rebuild, timestamp search). */
export const SCAN_CHUNK_BYTES = 8 * 1024 * 1024;

export interface SegmentConfig {
  indexIntervalBytes: number;
  maxBatchBytes: number;
  crc: Crc32cFn;
  /** The partition directory holding the segment files. */
  dir: LogDirectory;
  /** Where the segment's file handle lives (bounded by maxOpenFiles). */
  files: FileHandleCache;
}

export interface ScanResult {
  /** Position after the last good batch. */
  endPosition: number;
  /** Offset after the last good batch. */
  nextOffset: number;
  problem: { reason: TailProblem; position: number; message: string } | null;
}

export class Segment {
  sizeBytes = 0;
  nextOffset: number;
  offsetIndex: OffsetIndex;
  timeIndex: TimeIndex;
  maxTimestamp = -Infinity;
  offsetOfMaxTimestamp: number;
  /** CRCs of every batch were checked in this process (validated at open or appended here). */
  isVerified = true;
  #bytesSinceIndexEntry = 0;
  #readers = 0;
  #isDeleted = false;
  readonly #handle: CachedFile;
  #isActive = false;

  constructor(readonly baseOffset: number, readonly config: SegmentConfig, public createdMs: number, public lastModifiedMs: number) {
    this.nextOffset = baseOffset;
    this.offsetOfMaxTimestamp = baseOffset;
    this.offsetIndex = new OffsetIndex(baseOffset);
    this.timeIndex = new TimeIndex(baseOffset);
    this.#handle = config.files.file(config.dir, this.logFileName);
  }

  get logFileName(): string {
    return segmentFileName(this.baseOffset, '.log');
  }

  /** Accounts one batch placed at `position` (append or rebuild). Adds index entries every indexIntervalBytes. */
  recordBatch(position: number, totalBytes: number, baseOffset: number, lastOffset: number, maxTimestamp: number): void {
    if (maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = maxTimestamp;
      this.offsetOfMaxTimestamp = baseOffset;
    }
    if (this.#bytesSinceIndexEntry >= this.config.indexIntervalBytes) {
      this.offsetIndex.append(baseOffset, position);
      this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      this.#bytesSinceIndexEntry = 0;
    }
    this.#bytesSinceIndexEntry += totalBytes;
    this.sizeBytes = position + totalBytes;
    this.nextOffset = lastOffset + 1;
  }

  /** Resets indexes and counters before a rebuild scan from position 0. */
  resetIndexes(): void {
    this.offsetIndex = new OffsetIndex(this.baseOffset);
    this.timeIndex = new TimeIndex(this.baseOffset);
    this.#bytesSinceIndexEntry = 0;
    this.maxTimestamp = -Infinity;
    this.offsetOfMaxTimestamp = this.baseOffset;
    this.sizeBytes = 0;
    this.nextOffset = this.baseOffset;
  }

  /** Loads `.index`/`.timeindex`; false when missing or failing their sanity check (caller rebuilds). */
  async loadIndexes(dir: LogDirectory, fileBytes: number): Promise<boolean> {
    const [offsetBytes, timeBytes] = await Promise.all([
      dir.readWhole(segmentFileName(this.baseOffset, '.index')),
      dir.readWhole(segmentFileName(this.baseOffset, '.timeindex')),
    ]);
    if (!offsetBytes || !timeBytes) return false;
    const offsets = OffsetIndex.decode(offsetBytes, this.baseOffset, Math.max(fileBytes, 1));
    const times = TimeIndex.decode(timeBytes, this.baseOffset, MAX_RELATIVE_VALUE);
    if (!offsets.ok || !times.ok) return false;
    this.offsetIndex = offsets.value;
    this.timeIndex = times.value;
    this.maxTimestamp = times.value.lastTimestamp;
    this.offsetOfMaxTimestamp = times.value.lookup(Infinity);
    return true;
  }

  /** Writes both index files atomically, with a final time index entry for the segment's max timestamp. */
  async writeIndexes(dir: LogDirectory): Promise<void> {
    if (this.maxTimestamp > -Infinity) this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    await dir.writeAtomic(segmentFileName(this.baseOffset, '.index'), this.offsetIndex.encode());
    await dir.writeAtomic(segmentFileName(this.baseOffset, '.timeindex'), this.timeIndex.encode());
  }

  /**
   * Walks batches from (`position`, `offset`) to `endPosition` (at most the written end: pass Infinity for it) in large reads.
   * `visit` returns false to stop early. Stops at the first torn/corrupt batch (reported, not thrown).
   */
  scan(position: number, offset: number, endPosition: number, verifyCrc: boolean, visit: (b: ScannedBatch, chunk: Uint8Array, at: number) => boolean): Promise<ScanResult> {
    return this.withFile((file) => this.#scan(file, position, offset, Math.min(endPosition, file.size), verifyCrc, visit));
  }

  async #scan(file: SegmentFile, position: number, offset: number, endPosition: number, verifyCrc: boolean, visit: (b: ScannedBatch, chunk: Uint8Array, at: number) => boolean): Promise<ScanResult> {
    let pos = position;
    let next = offset;
    let chunkBytes = Math.max(SCAN_CHUNK_BYTES, this.config.maxBatchBytes);
    while (pos < endPosition) {
      const length = Math.min(chunkBytes, endPosition - pos);
      const chunk = await file.read(pos, length);
      const isEnd = pos + chunk.length >= endPosition || chunk.length < length;
      const step: ChunkScan = scanChunk(chunk, pos, next, isEnd, { maxBatchBytes: this.config.maxBatchBytes, verifyCrc, crc: this.config.crc });
      for (const b of step.batches) {
        if (!visit(b, chunk, b.position - pos)) return { endPosition: b.position, nextOffset: b.header.baseOffset, problem: null };
        next = b.header.baseOffset + b.header.lastOffsetDelta + 1;
      }
      pos += step.consumedBytes;
      if (step.problem) return { endPosition: pos, nextOffset: next, problem: step.problem };
      if (isEnd && !step.needsMore) break;
      if (step.needsMore && step.consumedBytes === 0) chunkBytes = Math.max(chunkBytes, this.config.maxBatchBytes + BATCH_OVERHEAD_BYTES);
    }
    return { endPosition: pos, nextOffset: next, problem: null };
  }

  /**
   * Cuts the file before the batch containing `offset` (durably) and rebuilds
   * the indexes from what is left; the segment becomes the active one.
   * Returns the new next offset (the base offset of the first removed batch).
   */
  async truncateTo(offset: number): Promise<number> {
    await this.becomeActive();
    return this.withFile((file) => this.#truncateTo(file, offset));
  }

  async #truncateTo(file: SegmentFile, offset: number): Promise<number> {
    const hint = this.offsetIndex.lookup(offset);
    let cut = { position: file.size, offset: this.nextOffset };
    await this.scan(hint.position, hint.offset, file.size, false, (b) => {
      if (b.header.baseOffset + b.header.lastOffsetDelta < offset) return true;
      cut = { position: b.position, offset: b.header.baseOffset };
      return false;
    });
    await file.truncate(cut.position);
    this.resetIndexes();
    await this.scan(0, this.baseOffset, cut.position, false, (b) => {
      this.recordBatch(b.position, b.header.totalBytes, b.header.baseOffset, b.header.baseOffset + b.header.lastOffsetDelta, b.header.maxTimestamp);
      return true;
    });
    return cut.offset;
  }

  /**
   * Runs `fn` with the segment's file pinned open; retention deletes the
   * segment only after the last such call returns.
   */
  async withFile<T>(fn: (file: SegmentFile) => Promise<T>): Promise<T> {
    this.#readers++;
    try {
      const file = await this.#handle.acquire();
      try {
        return await fn(file);
      } finally {
        this.#handle.release();
      }
    } finally {
      this.#readers--;
      if (this.#readers === 0 && this.#isDeleted) await this.removeFiles();
    }
  }

  /**
   * Makes this the segment appends go to, creating its file if missing. Idempotent.
   * Pins nothing: the writer pins the handle while it writes (`acquireWrite`).
   */
  async becomeActive(): Promise<void> {
    if (this.#isActive) return;
    await this.#handle.acquire({ create: true });
    this.#handle.release();
    this.#isActive = true;
  }

  /** No more appends go here (a later segment became active). */
  seal(): void {
    this.#isActive = false;
  }

  /**
   * Pins the handle for the writer (reopening it, creating the file, if the
   * LRU closed it) until `releaseWrite`. A failed acquire needs no release:
   * LIMIT_EXCEEDED (`isDescriptorShortage`) when no descriptor is free.
   */
  acquireWrite(): Promise<SegmentFile> {
    return this.#handle.acquire({ create: true });
  }

  releaseWrite(): void {
    this.#handle.release();
  }

  get isActive(): boolean {
    return this.#isActive;
  }

  /** Deletes the segment's files now, or after the last reader releases it. */
  async delete(): Promise<void> {
    this.#isDeleted = true;
    if (this.#readers === 0) await this.removeFiles();
  }

  /** Closes the handle (log close). */
  async close(): Promise<void> {
    this.#isActive = false;
    await this.#handle.close();
  }

  private async removeFiles(): Promise<void> {
    const dir = this.config.dir;
    await this.close();
    await dir.remove(this.logFileName);
    await dir.remove(segmentFileName(this.baseOffset, '.index'));
    await dir.remove(segmentFileName(this.baseOffset, '.timeindex'));
  }

  /** The handle while the caller holds a pin on it (`acquireWrite`, inside `withFile`). */
  requireFile(): SegmentFile {
    const file = this.#handle.openHandle;
    if (!file) throw new RunnelError('KAFKA_STORAGE_ERROR', `segment ${this.logFileName} has no open handle (not pinned, deleted or closed)`);
    return file;
  }
}
