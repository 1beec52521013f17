/**
 * Kafka RecordBatch v2 header (magic 2, KIP-98): layout, structural checks,
 * CRC-32C check and the two fields a broker rewrites in place.
 *
 *   0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32
 *   16 magic int8 | 17 crc uint32 | 21 attributes int16 | 23 lastOffsetDelta int32
 *   27 baseTimestamp int64 | 35 maxTimestamp int64 | 43 producerId int64
 *   51 producerEpoch int16 | 53 baseSequence int32 | 57 recordCount int32 | 61 records
 *
 * Invariant: the CRC covers attributes..end, so baseOffset and
 * partitionLeaderEpoch can be assigned by the leader without re-checksumming.
 * Readers never throw on bad bytes: they return `{ ok: false, code }`.
 */
import { readInt16, readInt32, readInt64, readUint32, writeInt32, writeInt64 } from './big-endian.ts';
import { crc32c, type Crc32cFn } from './crc32c.ts';
import { assert, type Decoded, type ErrorName } from './error-codes.ts';
import { VERBOSE } from '#verbose';

/** Bytes from baseOffset through recordCount; records start here. */
export const BATCH_HEADER_BYTES = 61;
/** baseOffset (8) + batchLength (4): the bytes not counted by batchLength. */
export const BATCH_OVERHEAD_BYTES = 12;
export const RECORD_BATCH_MAGIC = 2;
/** First byte covered by the CRC (attributes). */
export const BATCH_CRC_START = 21;

/** Byte position of each header field inside a batch. */
export const BatchField = {
  baseOffset: 0, batchLength: 8, partitionLeaderEpoch: 12, magic: 16, crc: 17, attributes: 21,
  lastOffsetDelta: 23, baseTimestamp: 27, maxTimestamp: 35, producerId: 43, producerEpoch: 51,
  baseSequence: 53, recordCount: 57,
} as const;

/** Attribute bits (Kafka DefaultRecordBatch). Runnel stores compression 0 (none) only. */
export const BatchAttributes = {
  compressionMask: 0x07, logAppendTime: 0x08, transactional: 0x10, control: 0x20,
} as const;

/** Smallest encoded record: length, attributes, timestampDelta, offsetDelta, keyLength, valueLength, headerCount. */
export const MIN_RECORD_BYTES = 7;

export interface BatchHeader {
  baseOffset: number;
  /** Kafka's `length` field: bytes after itself (partitionLeaderEpoch..end). */
  batchLength: number;
  /** Whole batch on disk and on the wire: 12 + batchLength. */
  totalBytes: number;
  partitionLeaderEpoch: number;
  magic: number;
  /** CRC-32C over attributes..end, unsigned. */
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** Options for every batch reader. `maxBatchBytes` bounds `totalBytes`. */
export interface BatchReadOptions {
  maxBatchBytes?: number;
  /** Checked by validateBatch/decodeRecordBatch/iterateBatches unless false. Default true. */
  verifyCrc?: boolean;
  /** CRC-32C implementation (the server injects a native one). Default: pure-JS `crc32c`. */
  crc?: Crc32cFn;
  /** Headers allowed per record (decoders only). Default unbounded (bytes still bound it). */
  maxHeadersPerRecord?: number;
}

export function fail<T>(code: ErrorName, message: string): Decoded<T> {
  return { ok: false, code, message };
}

/** Reads and structurally checks the header of the batch at `at`. No CRC check. */
export function readBatchHeader(bytes: Uint8Array, at = 0, limits?: BatchReadOptions): Decoded<BatchHeader> {
  if (!Number.isInteger(at) || at < 0 || at > bytes.length) return fail('CORRUPT_MESSAGE', VERBOSE ? `batch position ${at} outside the buffer` : '');
  const available = bytes.length - at;
  if (available < BATCH_OVERHEAD_BYTES) return fail('CORRUPT_MESSAGE', VERBOSE ? `truncated batch: ${available} bytes, offset and length need 12` : '');
  const batchLength = readInt32(bytes, at + BatchField.batchLength);
  const totalBytes = BATCH_OVERHEAD_BYTES + batchLength;
  if (batchLength < BATCH_HEADER_BYTES - BATCH_OVERHEAD_BYTES) return fail('CORRUPT_MESSAGE', VERBOSE ? `batch length ${batchLength} is shorter than the header` : '');
  const maxBatchBytes = limits?.maxBatchBytes;
  if (maxBatchBytes !== undefined && totalBytes > maxBatchBytes) return fail('MESSAGE_TOO_LARGE', VERBOSE ? `batch of ${totalBytes} bytes exceeds maxBatchBytes ${maxBatchBytes}` : '');
  if (totalBytes > available) return fail('CORRUPT_MESSAGE', VERBOSE ? `truncated batch: length says ${totalBytes} bytes, ${available} available` : '');
  const magic = bytes[at + BatchField.magic];
  if (magic !== RECORD_BATCH_MAGIC) return fail('CORRUPT_MESSAGE', VERBOSE ? `batch magic ${magic}, only 2 is supported` : '');
  const attributes = readInt16(bytes, at + BatchField.attributes);
  if ((attributes & BatchAttributes.compressionMask) !== 0) {
    return fail('UNSUPPORTED_COMPRESSION_TYPE', VERBOSE ? `batch compression type ${attributes & BatchAttributes.compressionMask}; Runnel stores uncompressed batches` : '');
  }
  const baseOffset = readInt64(bytes, at + BatchField.baseOffset);
  const lastOffsetDelta = readInt32(bytes, at + BatchField.lastOffsetDelta);
  const recordCount = readInt32(bytes, at + BatchField.recordCount);
  if (!(baseOffset >= 0)) return fail('CORRUPT_MESSAGE', VERBOSE ? 'batch baseOffset is negative or above 2^53-1' : '');
  if (lastOffsetDelta < 0 || !Number.isSafeInteger(baseOffset + lastOffsetDelta)) return fail('CORRUPT_MESSAGE', VERBOSE ? `batch lastOffsetDelta ${lastOffsetDelta} is invalid` : '');
  if (recordCount < 0 || recordCount > lastOffsetDelta + 1) return fail('CORRUPT_MESSAGE', VERBOSE ? `batch recordCount ${recordCount} impossible with lastOffsetDelta ${lastOffsetDelta}` : '');
  if (recordCount * MIN_RECORD_BYTES > totalBytes - BATCH_HEADER_BYTES) return fail('CORRUPT_MESSAGE', VERBOSE ? `batch recordCount ${recordCount} cannot fit in ${totalBytes} bytes` : '');
  const baseTimestamp = readInt64(bytes, at + BatchField.baseTimestamp);
  const maxTimestamp = readInt64(bytes, at + BatchField.maxTimestamp);
  const producerId = readInt64(bytes, at + BatchField.producerId);
  if (Number.isNaN(baseTimestamp) || Number.isNaN(maxTimestamp)) return fail('CORRUPT_MESSAGE', VERBOSE ? 'batch timestamp outside ±(2^53-1)' : '');
  if (Number.isNaN(producerId)) return fail('CORRUPT_MESSAGE', VERBOSE ? 'batch producerId outside ±(2^53-1)' : '');
  return {
    ok: true,
    value: {
      baseOffset, batchLength, totalBytes,
      partitionLeaderEpoch: readInt32(bytes, at + BatchField.partitionLeaderEpoch),
      magic, crc: readUint32(bytes, at + BatchField.crc), attributes, lastOffsetDelta,
      baseTimestamp, maxTimestamp, producerId,
      producerEpoch: readInt16(bytes, at + BatchField.producerEpoch),
      baseSequence: readInt32(bytes, at + BatchField.baseSequence),
      recordCount,
    },
  };
}

/** True when the stored CRC matches CRC-32C of attributes..end (`at + 21` to `at + totalBytes`). */
export function verifyBatchCrc(bytes: Uint8Array, at: number, header: BatchHeader, crc: Crc32cFn = crc32c): boolean {
  return crc(bytes, at + BATCH_CRC_START, at + header.totalBytes) >>> 0 === header.crc;
}

/** Header checks plus CRC (CORRUPT_MESSAGE on mismatch, MESSAGE_TOO_LARGE above maxBatchBytes). */
export function validateBatch(bytes: Uint8Array, at = 0, limits?: BatchReadOptions, crc?: Crc32cFn): Decoded<BatchHeader> {
  const header = readBatchHeader(bytes, at, limits);
  if (!header.ok) return header;
  if (limits?.verifyCrc !== false && !verifyBatchCrc(bytes, at, header.value, crc ?? limits?.crc ?? crc32c)) {
    return fail('CORRUPT_MESSAGE', VERBOSE ? `batch at ${at} failed its CRC-32C check` : '');
  }
  return header;
}

/** Offset of the last record slot of the batch (baseOffset + lastOffsetDelta). */
export function batchLastOffset(header: BatchHeader): number {
  return header.baseOffset + header.lastOffsetDelta;
}

/** Writes baseOffset in place (not covered by the CRC). */
export function setBaseOffset(bytes: Uint8Array, at: number, baseOffset: number): void {
  // NB: the messages are built only on failure: this runs once per appended batch (hot path).
  if (!(Number.isSafeInteger(baseOffset) && baseOffset >= 0)) assert(false, VERBOSE ? `baseOffset must be a safe non-negative integer, got ${baseOffset}` : '');
  if (!(at >= 0 && at + BATCH_HEADER_BYTES <= bytes.length)) assert(false, VERBOSE ? `no batch header at ${at}` : '');
  writeInt64(bytes, at + BatchField.baseOffset, baseOffset);
}

/** Writes partitionLeaderEpoch in place (not covered by the CRC). */
export function setPartitionLeaderEpoch(bytes: Uint8Array, at: number, epoch: number): void {
  if ((epoch | 0) !== epoch) assert(false, VERBOSE ? `partitionLeaderEpoch must be an int32, got ${epoch}` : '');
  if (!(at >= 0 && at + BATCH_HEADER_BYTES <= bytes.length)) assert(false, VERBOSE ? `no batch header at ${at}` : '');
  writeInt32(bytes, at + BatchField.partitionLeaderEpoch, epoch);
}

/** baseOffset of the batch at `at` (NaN if outside the safe range). Callers bounds-check. */
export function readBaseOffset(bytes: Uint8Array, at: number): number {
  return readInt64(bytes, at + BatchField.baseOffset);
}

/** recordCount of the batch at `at`, read from its header alone (fan-out metrics; no decoding). Callers bounds-check. */
export function batchRecordCount(bytes: Uint8Array, at = 0): number {
  const i = at + BatchField.recordCount;
  return ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
}

/**
 * Walks concatenated batches (a segment slice, a RecordsFrame payload). Yields
 * each batch's position and header; on the first bad batch yields its error
 * and stops. CRCs are checked unless `limits.verifyCrc === false`.
 */
export function* iterateBatches(bytes: Uint8Array, limits?: BatchReadOptions): Generator<Decoded<{ at: number; header: BatchHeader }>> {
  let at = 0;
  while (at < bytes.length) {
    const header = validateBatch(bytes, at, limits);
    if (!header.ok) {
      yield fail(header.code, VERBOSE ? `at byte ${at}: ${header.message}` : '');
      return;
    }
    yield { ok: true, value: { at, header: header.value } };
    at += header.value.totalBytes;
  }
}
