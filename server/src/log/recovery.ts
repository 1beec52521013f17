/**
 * Crash recovery decisions (pure; the I/O driver is log-loader.ts).
 *
 * `scanChunk` walks whole batches of a segment chunk and stops at the first
 * that is torn (file ends inside it), fails its structure or CRC check, or
 * breaks offset contiguity. Everything from that position on is a torn or
 * corrupt tail: the loader truncates it, because an acknowledged batch was
 * fdatasync'ed whole and can only be followed by bytes nobody was promised.
 *
 * `decideRecovery` picks which segments need full validation: none after a
 * clean shutdown (only the tail after the last index entry is re-checked),
 * from the segment holding the recovery point after a crash, all of them
 * when no checkpoint survives.
 */
import { readBatchHeader, verifyBatchCrc, BATCH_HEADER_BYTES, BATCH_OVERHEAD_BYTES, BatchField, type BatchHeader, type Crc32cFn } from '@runnel/client/codec';

export type TailProblem = 'torn-header' | 'torn-body' | 'bad-structure' | 'corrupt-crc' | 'offset-gap';

export interface ScannedBatch {
  /** File position of the batch. */
  position: number;
  header: BatchHeader;
}

export interface ChunkScan {
  batches: ScannedBatch[];
  /** Bytes of the chunk covered by `batches` (whole, valid batches). */
  consumedBytes: number;
  /** The chunk ends inside a batch and more file follows: read again from `chunkPosition + consumedBytes`. */
  needsMore: boolean;
  /** First invalid batch: the log must be cut at `position`. Null when the chunk is clean. */
  problem: { reason: TailProblem; position: number; message: string } | null;
}

export interface ScanOptions {
  maxBatchBytes: number;
  /** Check CRC-32C (full validation) or only structure and offsets (index rebuild of trusted data). */
  verifyCrc: boolean;
  crc?: Crc32cFn;
}

/**
 * Scans `chunk` (file bytes starting at `chunkPosition`) for whole valid
 * batches with contiguous offsets starting at `expectedOffset`.
 * `isEndOfFile`: the chunk reaches the end of the file, so a partial batch is torn.
 */
export function scanChunk(chunk: Uint8Array, chunkPosition: number, expectedOffset: number, isEndOfFile: boolean, options: ScanOptions): ChunkScan {
  const batches: ScannedBatch[] = [];
  let at = 0;
  let next = expectedOffset;
  const cut = (reason: TailProblem, message: string): ChunkScan =>
    ({ batches, consumedBytes: at, needsMore: false, problem: { reason, position: chunkPosition + at, message } });
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  while (at < chunk.length) {
    const remaining = chunk.length - at;
    if (remaining < BATCH_OVERHEAD_BYTES) {
      if (isEndOfFile) return cut('torn-header', `${remaining} bytes left, a batch needs ${BATCH_HEADER_BYTES}`);
      break;
    }
    // The length field alone first: a torn or foreign length must be told apart from a short chunk.
    const totalBytes = BATCH_OVERHEAD_BYTES + view.getInt32(at + BatchField.batchLength);
    if (totalBytes < BATCH_HEADER_BYTES || totalBytes > options.maxBatchBytes) {
      return cut('bad-structure', `batch length field gives ${totalBytes} bytes (allowed ${BATCH_HEADER_BYTES}..${options.maxBatchBytes})`);
    }
    if (totalBytes > remaining) {
      if (isEndOfFile) return cut(remaining < BATCH_HEADER_BYTES ? 'torn-header' : 'torn-body', `batch of ${totalBytes} bytes, file ends after ${remaining}`);
      break;
    }
    const header = readBatchHeader(chunk, at, { maxBatchBytes: options.maxBatchBytes });
    if (!header.ok) return cut('bad-structure', header.message);
    if (options.verifyCrc && !verifyBatchCrc(chunk, at, header.value, options.crc)) return cut('corrupt-crc', `batch at offset ${header.value.baseOffset} failed its CRC-32C`);
    if (header.value.baseOffset !== next) return cut('offset-gap', `batch base offset ${header.value.baseOffset}, expected ${next}`);
    batches.push({ position: chunkPosition + at, header: header.value });
    next = header.value.baseOffset + header.value.lastOffsetDelta + 1;
    at += totalBytes;
  }
  return { batches, consumedBytes: at, needsMore: at < chunk.length, problem: null };
}

/** What the partition checkpoint file says about the last shutdown. */
export interface RecoveryCheckpoint {
  /** Every offset below it is fdatasync'ed and its segment's index files are written. */
  recoveryPoint: number;
  /** The previous process closed the log (everything synced, indexes written). */
  isCleanShutdown: boolean;
}

export type RecoveryPlan =
  /** Clean shutdown: trust all segments; re-check only the tail of the last one after its last index entry. */
  | { kind: 'clean' }
  /** Validate segments from `firstSegment` on (CRC, indexes rebuilt); earlier ones are trusted. */
  | { kind: 'validate'; firstSegment: number };

/** `segmentBaseOffsets` ascending. */
export function decideRecovery(segmentBaseOffsets: readonly number[], checkpoint: RecoveryCheckpoint | null): RecoveryPlan {
  if (segmentBaseOffsets.length === 0) return { kind: 'validate', firstSegment: 0 };
  if (!checkpoint) return { kind: 'validate', firstSegment: 0 };
  if (checkpoint.isCleanShutdown) return { kind: 'clean' };
  let first = 0;
  for (let i = 0; i < segmentBaseOffsets.length; i++) {
    if (segmentBaseOffsets[i] <= checkpoint.recoveryPoint) first = i;
  }
  return { kind: 'validate', firstSegment: first };
}
