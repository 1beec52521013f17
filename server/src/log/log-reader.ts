/**
 * The read path of a partition log: read by offset, offset for a timestamp,
 * and CRC-on-read for segments trusted after a clean shutdown. See
 * docs/storage.md (Reads).
 *
 * Ordering contract: a read never returns a batch with an offset at or above
 * `maxOffset` (default the high watermark) nor bytes past the written end of
 * the file; bytes of a segment not verified in this process are served only
 * after their CRC-32C passed (else KAFKA_STORAGE_ERROR, never the bytes).
 * Per batch header, never per record.
 */
import { BATCH_HEADER_BYTES, BATCH_OVERHEAD_BYTES, BatchField, RunnelError, readBatchHeader, verifyBatchCrc } from '@runnel/client/codec';
import type { Segment } from './segment.ts';
import type { SegmentFile } from './segment-file.ts';
import type { TailCache } from './tail-cache.ts';

export interface ReadResult {
  /** Whole stored batches, concatenated, verbatim. Empty at the end of the visible log. */
  batches: Uint8Array;
  firstOffset: number;
  /** Offset to read next. */
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

/** What the reader sees of the log, read at call time (PartitionLog passes a live view). */
export interface ReadableLog {
  /** Oldest first; the last one is active. */
  readonly segments: readonly Segment[];
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly highWatermark: number;
  /** Offsets below it are written to their file (maybe not yet durable). */
  readonly writtenEndOffset: number;
  /** The newest batches in memory: asked first, with the same bounds; the file answers what it cannot. */
  readonly tail?: TailCache;
}

/** A contiguous run of stored batches, sliced out of one read. */
interface SegmentSlice {
  bytes: Uint8Array;
  firstOffset: number;
  nextOffset: number;
}

const EMPTY = new Uint8Array(0);
/** baseOffset is an int64 read as two uint32 halves (offsets stay below 2^53). */
const TWO_32 = 0x1_0000_0000;

/**
 * Batches from the one containing `offset`, at most `maxBytes` (at least one whole batch if any).
 * OFFSET_OUT_OF_RANGE below logStartOffset or above logEndOffset.
 */
export async function readLog(log: ReadableLog, offset: number, maxBytes: number, opts: { maxOffset?: number } = {}): Promise<ReadResult> {
  if (!(offset >= log.logStartOffset && offset <= log.logEndOffset)) {
    throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${offset} outside [${log.logStartOffset}, ${log.logEndOffset}]`, { details: { logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset } });
  }
  const maxOffset = Math.min(opts.maxOffset ?? log.highWatermark, log.writtenEndOffset);
  const segments = log.segments;
  if (offset < maxOffset) {
    const cached = log.tail?.read(offset, maxBytes, maxOffset);
    if (cached) return { batches: cached.bytes, firstOffset: cached.firstOffset, nextOffset: cached.nextOffset, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset };
    for (let i = segmentIndexOf(segments, offset); i < segments.length; i++) {
      const segment = segments[i];
      if (segment.baseOffset >= maxOffset) break;
      const slice = await readSegment(segment, offset, maxBytes, maxOffset);
      if (slice) return { batches: slice.bytes, firstOffset: slice.firstOffset, nextOffset: slice.nextOffset, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset };
    }
  }
  return { batches: EMPTY, firstOffset: offset, nextOffset: offset, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset };
}

/** First offset whose batch has maxTimestamp >= `timestampMs`, below the high watermark; null if none. */
export async function offsetForTimestamp(log: ReadableLog, timestampMs: number): Promise<number | null> {
  const hw = log.highWatermark;
  for (const segment of [...log.segments]) {
    if (segment.baseOffset >= hw) break;
    if (segment.maxTimestamp < timestampMs) continue;
    const hint = segment.offsetIndex.lookup(segment.timeIndex.lookup(timestampMs));
    let found: number | null = null;
    await segment.scan(hint.position, hint.offset, Infinity, false, (b) => {
      if (b.header.baseOffset >= hw) return false;
      if (b.header.maxTimestamp >= timestampMs) found = b.header.baseOffset;
      return found === null;
    });
    if (found !== null) return Math.max(found, log.logStartOffset);
  }
  return null;
}

/** Index of the segment holding `offset` (binary search on base offsets; the first one below all). */
export function segmentIndexOf(segments: readonly Segment[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (segments[mid].baseOffset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Whole batches of one segment starting with the one that contains `offset`,
 * at most `maxBytes` (but always one whole batch when any), all with
 * lastOffset < `maxOffset`. Null when `offset` is at or past the segment's end.
 */
function readSegment(segment: Segment, offset: number, maxBytes: number, maxOffset: number): Promise<SegmentSlice | null> {
  if (offset >= segment.nextOffset || offset >= maxOffset) return Promise.resolve(null);
  return segment.withFile((file) => readSlice(segment, file, offset, maxBytes, maxOffset));
}

/** NB: the file's written size bounds the read so unwritten positions are never touched. */
async function readSlice(segment: Segment, file: SegmentFile, offset: number, maxBytes: number, maxOffset: number): Promise<SegmentSlice | null> {
  const writtenBytes = file.size;
  let pos = segment.offsetIndex.lookup(offset).position;
  // One read usually covers the index gap plus the answer.
  let want = maxBytes + segment.config.indexIntervalBytes;
  for (;;) {
    const chunk = await file.read(pos, Math.min(want, writtenBytes - pos));
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    let start = -1;
    let firstOffset = 0;
    let nextOffset = 0;
    let hitMaxOffset = false;
    // Hot: header fields straight from the DataView at the codec's BatchField positions (stored
    // batches passed readBatchHeader's checks when written or recovered; CRC-on-read below).
    while (at + BATCH_HEADER_BYTES <= chunk.length) {
      const total = BATCH_OVERHEAD_BYTES + view.getInt32(at + BatchField.batchLength);
      if (at + total > chunk.length) break;
      const base = view.getUint32(at + BatchField.baseOffset) * TWO_32 + view.getUint32(at + BatchField.baseOffset + 4);
      const last = base + view.getInt32(at + BatchField.lastOffsetDelta);
      if (last >= maxOffset) {
        hitMaxOffset = true;
        break;
      }
      if (last >= offset) {
        if (start < 0) {
          start = at;
          firstOffset = base;
        } else if (at + total - start > maxBytes) break;
        if (!segment.isVerified) verifyStoredBatch(segment, chunk, at, base);
        nextOffset = last + 1;
      }
      at += total;
      if (start >= 0 && at - start >= maxBytes) break;
    }
    if (start >= 0) return { bytes: chunk.subarray(start, at), firstOffset, nextOffset };
    if (hitMaxOffset || pos + at >= writtenBytes) return null;
    // The wanted batch starts past this chunk or is larger than it: read on from the last whole batch.
    if (at === 0) want = Math.max(want * 2, (chunk.length >= BATCH_OVERHEAD_BYTES ? view.getInt32(BatchField.batchLength) : 0) + BATCH_OVERHEAD_BYTES);
    pos += at;
  }
}

/** CRC-on-read for segments trusted (not validated) at open after a clean shutdown. */
function verifyStoredBatch(segment: Segment, chunk: Uint8Array, at: number, baseOffset: number): void {
  const header = readBatchHeader(chunk, at, { maxBatchBytes: segment.config.maxBatchBytes });
  if (!header.ok || !verifyBatchCrc(chunk, at, header.value, segment.config.crc)) {
    throw new RunnelError('KAFKA_STORAGE_ERROR', `stored batch at offset ${baseOffset} in ${segment.logFileName} failed its CRC check; it is not served`, { details: { baseOffset, segment: segment.logFileName } });
  }
}
