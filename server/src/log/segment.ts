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
 */
import { BATCH_HEADER_BYTES, BATCH_OVERHEAD_BYTES, RunnelError, verifyBatchCrc, readBatchHeader, type Crc32cFn } from '@runnel/client/codec';
import { OffsetIndex } from './offset-index.ts';
import { scanChunk, type ChunkScan, type ScannedBatch, type TailProblem } from './recovery.ts';
import { segmentFileName, type LogDirectory, type SegmentFile } from './segment-file.ts';
import { TimeIndex } from './time-index.ts';

/** Bytes read per I/O while scanning a segment (recovery, index rebuild, timestamp search). */
export const SCAN_CHUNK_BYTES = 8 * 1024 * 1024;

export interface SegmentConfig {
  indexIntervalBytes: number;
  maxBatchBytes: number;
  crc: Crc32cFn;
}

export interface ScanResult {
  /** Position after the last good batch. */
  endPosition: number;
  /** Offset after the last good batch. */
  nextOffset: number;
  problem: { reason: TailProblem; position: number; message: string } | null;
}

/** A contiguous run of stored batches, sliced out of one read. */
export interface SegmentSlice {
  bytes: Uint8Array;
  firstOffset: number;
  nextOffset: number;
}

export class Segment {
  file: SegmentFile | null = null;
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

  constructor(readonly baseOffset: number, private readonly config: SegmentConfig, public createdMs: number, public lastModifiedMs: number) {
    this.nextOffset = baseOffset;
    this.offsetOfMaxTimestamp = baseOffset;
    this.offsetIndex = new OffsetIndex(baseOffset);
    this.timeIndex = new TimeIndex(baseOffset);
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
    const times = TimeIndex.decode(timeBytes, this.baseOffset, 0xffff_ffff);
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
   * Walks batches from (`position`, `offset`) to `endPosition` in large reads.
   * `visit` returns false to stop early. Stops at the first torn/corrupt batch (reported, not thrown).
   */
  async scan(position: number, offset: number, endPosition: number, verifyCrc: boolean, visit: (b: ScannedBatch, chunk: Uint8Array, at: number) => boolean): Promise<ScanResult> {
    const file = this.requireFile();
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
   * Whole batches starting with the one that contains `offset`, at most
   * `maxBytes` (but always one whole batch when any), all with lastOffset < `maxOffset`.
   * Null when `offset` is at or past this segment's end. Stored bytes, verbatim.
   * NB: `writtenBytes` bounds the read so unwritten positions are never touched.
   */
  async read(offset: number, maxBytes: number, maxOffset: number, writtenBytes: number): Promise<SegmentSlice | null> {
    if (offset >= this.nextOffset || offset >= maxOffset) return null;
    const file = this.requireFile();
    const hint = this.offsetIndex.lookup(offset);
    let pos = hint.position;
    // One read usually covers the index gap plus the answer.
    let want = maxBytes + this.config.indexIntervalBytes;
    for (;;) {
      const chunk = await file.read(pos, Math.min(want, writtenBytes - pos));
      const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let at = 0;
      let start = -1;
      let firstOffset = 0;
      let nextOffset = 0;
      let hitMaxOffset = false;
      while (at + BATCH_HEADER_BYTES <= chunk.length) {
        const total = BATCH_OVERHEAD_BYTES + view.getInt32(at + 8);
        if (at + total > chunk.length) break;
        const base = view.getUint32(at) * 0x1_0000_0000 + view.getUint32(at + 4);
        const last = base + view.getInt32(at + 23);
        if (last >= maxOffset) {
          hitMaxOffset = true;
          break;
        }
        if (last >= offset) {
          if (start < 0) {
            start = at;
            firstOffset = base;
          } else if (at + total - start > maxBytes) break;
          if (!this.isVerified) this.verify(chunk, at, base);
          nextOffset = last + 1;
        }
        at += total;
        if (start >= 0 && at - start >= maxBytes) break;
      }
      if (start >= 0) return { bytes: chunk.subarray(start, at), firstOffset, nextOffset };
      if (hitMaxOffset || pos + at >= writtenBytes) return null;
      // The wanted batch starts past this chunk or is larger than it: read on from the last whole batch.
      if (at === 0) want = Math.max(want * 2, (chunk.length >= 12 ? view.getInt32(8) : 0) + BATCH_OVERHEAD_BYTES);
      pos += at;
    }
  }

  private verify(chunk: Uint8Array, at: number, baseOffset: number): void {
    const header = readBatchHeader(chunk, at, { maxBatchBytes: this.config.maxBatchBytes });
    if (!header.ok || !verifyBatchCrc(chunk, at, header.value, this.config.crc)) {
      throw new RunnelError('KAFKA_STORAGE_ERROR', `stored batch at offset ${baseOffset} in ${this.logFileName} failed its CRC check; it is not served`, { details: { baseOffset, segment: this.logFileName } });
    }
  }

  /** Keeps the file open while a read runs, so retention deletes it only afterwards. */
  acquire(): void {
    this.#readers++;
  }

  async release(dir: LogDirectory): Promise<void> {
    this.#readers--;
    if (this.#readers === 0 && this.#isDeleted) await this.removeFiles(dir);
  }

  /** Deletes the segment's files now, or after the last reader releases it. */
  async delete(dir: LogDirectory): Promise<void> {
    this.#isDeleted = true;
    if (this.#readers === 0) await this.removeFiles(dir);
  }

  private async removeFiles(dir: LogDirectory): Promise<void> {
    const file = this.file;
    this.file = null;
    await file?.close();
    await dir.remove(this.logFileName);
    await dir.remove(segmentFileName(this.baseOffset, '.index'));
    await dir.remove(segmentFileName(this.baseOffset, '.timeindex'));
  }

  requireFile(): SegmentFile {
    if (!this.file) throw new RunnelError('KAFKA_STORAGE_ERROR', `segment ${this.logFileName} is not open (deleted or closed)`);
    return this.file;
  }
}
