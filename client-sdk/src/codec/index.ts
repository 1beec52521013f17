/**
 * The Runnel wire codec, shared by broker and SDK (no Node APIs):
 * error table, protocol frame types, CRC-32C, Kafka RecordBatch v2,
 * zig-zag varints, the frame codec and Kafka's murmur2 partitioner.
 */
export { ErrorTable, ErrorCode, RunnelError, AssertionError, assert, assertNever, errorNameOf, isRetryable } from './errors.ts';
export type { ErrorName, Decoded } from './errors.ts';
export * from './protocol.ts';
export { crc32c, crc32cUpdate } from './crc32c.ts';
export type { Crc32cFn } from './crc32c.ts';
export {
  BATCH_HEADER_BYTES, BATCH_OVERHEAD_BYTES, BATCH_CRC_START, RECORD_BATCH_MAGIC, MIN_RECORD_BYTES, BatchField, BatchAttributes,
  readBatchHeader, verifyBatchCrc, validateBatch, validateRecords, batchLastOffset, setBaseOffset, setPartitionLeaderEpoch,
  readBaseOffset, batchRecordCount, iterateBatches, encodeRecordBatch, decodeRecordBatch, forEachRecord, readRecordHeaders,
} from './record-batch.ts';
export type { BatchHeader, BatchReadOptions, RecordBatchInput, RecordInput, RecordHeader, DecodedRecord, RecordView } from './record-batch.ts';
export { readVarint, readVarlong, writeVarint, writeVarlong, varintSize, varlongSize, VARINT_ERROR, MAX_VARINT_BYTES, MAX_VARLONG_BYTES } from './varint.ts';
export type { Cursor } from './varint.ts';
export { murmur2, toPositive, partitionForKey } from './murmur2.ts';
export { encodeFrame, decodeFrame, encodeFrameWith, decodeFrameWith, encodeRecordsFrame, decodeRecordsFrame, peekFrameKind } from './frame-codec.ts';
export type { FrameLimits, SomeFrameSchemas } from './frame-codec.ts';
export { FrameSchema, StartPositionTag, coreFrames, producerFrames, consumerFrames, groupFrames } from './frame-schema.ts';
export type { FieldType, Fields, FrameSchemas, ScalarType } from './frame-schema.ts';
