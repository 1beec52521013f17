/**
 * The byte layout of every protocol v3 frame, as data: for each frame type,
 * its fields in wire order and their wire types. frame-codec.ts interprets
 * these tables to encode and decode; docs/protocol.md is written from them.
 * Stable: append fields only with a protocol version bump.
 *
 * Wire types: integers big-endian; `i64` is a JS safe integer (|v| ≤ 2^53−1);
 * `string` = u16 byte length + UTF-8; `bytes` = u32 length + bytes;
 * arrays = u32 count + elements; `startPosition` = u8 tag (0 earliest,
 * 1 latest, 2 offset, 3 timestamp) + i64 for tags 2 and 3; `acks` = i8 in {−1, 0, 1}.
 */
import type { Frame, FrameType } from './protocol.ts';

export type ScalarType = 'i8' | 'i16' | 'u16' | 'i32' | 'u32' | 'i64' | 'string' | 'bytes' | 'acks' | 'startPosition';
export type FieldType = ScalarType | { array: FieldType } | { struct: Fields };
export type Fields = readonly (readonly [name: string, type: FieldType])[];

type FrameOf<K extends FrameType> = Extract<Frame, { type: K }>;
/** Field names are checked against protocol.ts; completeness is proven by the round-trip tests. */
type FieldsOf<T> = readonly (readonly [name: Exclude<keyof T, 'type'> & string, type: FieldType])[];

/** StartPosition tags on the wire. */
export const StartPositionTag = { earliest: 0, latest: 1, offset: 2, timestamp: 3 } as const;

const committedOffset: Fields = [['topic', 'string'], ['partition', 'i32'], ['offset', 'i64'], ['metadata', 'string']];
const partitionMetadata: Fields = [
  ['partition', 'i32'], ['leader', 'i32'], ['leaderEpoch', 'i32'], ['replicas', { array: 'i32' }], ['isr', { array: 'i32' }],
  ['logStartOffset', 'i64'], ['highWatermark', 'i64'],
];
const topicMetadata: Fields = [['name', 'string'], ['topicId', 'string'], ['errorCode', 'i16'], ['partitions', { array: { struct: partitionMetadata } }]];

/** Field tables of the frames of `K` (what a Connection can encode and decode: see `Connection.speak`). */
export type FrameSchemas<K extends FrameType = FrameType> = { readonly [P in K]: FieldsOf<FrameOf<P>> };

/** Frames every connection speaks: session, metadata, errors, keep-alive, token refresh (connection.ts). */
export const coreFrames: FrameSchemas<'hello' | 'helloOk' | 'metadataRequest' | 'metadata' | 'error' | 'ping' | 'pong' | 'authenticate' | 'authenticateOk'> = {
  hello: [['minVersion', 'u16'], ['maxVersion', 'u16'], ['clientId', 'string'], ['token', 'string']],
  helloOk: [
    ['version', 'u16'], ['brokerId', 'i32'], ['sessionId', 'string'],
    ['maxFrameBytes', 'u32'], ['maxBatchBytes', 'u32'], ['maxInflightProduce', 'u32'], ['tokenExpiresAtMs', 'i64'],
  ],
  metadataRequest: [['requestId', 'u32'], ['topics', { array: 'string' }], ['allowAutoTopicCreation', 'i8']],
  metadata: [
    ['requestId', 'u32'],
    ['brokers', { array: { struct: [['id', 'i32'], ['url', 'string']] } }],
    ['topics', { array: { struct: topicMetadata } }],
  ],
  error: [['requestId', 'u32'], ['errorCode', 'i16'], ['message', 'string'], ['retryAfterMs', 'u32']],
  ping: [['nonce', 'u32']],
  pong: [['nonce', 'u32']],
  authenticate: [['requestId', 'u32'], ['token', 'string']],
  authenticateOk: [['requestId', 'u32'], ['errorCode', 'i16'], ['tokenExpiresAtMs', 'i64']],
};

/** A producer's frames (producer.ts). */
export const producerFrames: FrameSchemas<'initProducer' | 'initProducerOk' | 'produce' | 'produceAck'> = {
  initProducer: [['requestId', 'u32'], ['producerId', 'i64'], ['producerEpoch', 'i16'], ['producerSecret', 'string']],
  initProducerOk: [['requestId', 'u32'], ['producerId', 'i64'], ['producerEpoch', 'i16'], ['errorCode', 'i16'], ['producerSecret', 'string']],
  produce: [['requestId', 'u32'], ['topic', 'string'], ['partition', 'i32'], ['acks', 'acks'], ['batch', 'bytes']],
  produceAck: [
    ['requestId', 'u32'], ['topic', 'string'], ['partition', 'i32'], ['errorCode', 'i16'],
    ['baseOffset', 'i64'], ['logAppendTimeMs', 'i64'], ['logStartOffset', 'i64'],
  ],
};

/** A consumer's frames (partition-stream.ts). */
export const consumerFrames: FrameSchemas<'subscribe' | 'subscribed' | 'unsubscribe' | 'records' | 'credit'> = {
  subscribe: [
    ['requestId', 'u32'], ['topic', 'string'], ['partition', 'i32'], ['topicId', 'string'],
    ['from', 'startPosition'], ['creditBytes', 'u32'],
  ],
  subscribed: [
    ['requestId', 'u32'], ['topic', 'string'], ['partition', 'i32'], ['errorCode', 'i16'], ['topicId', 'string'],
    ['startOffset', 'i64'], ['logStartOffset', 'i64'], ['highWatermark', 'i64'],
  ],
  unsubscribe: [['requestId', 'u32'], ['topic', 'string'], ['partition', 'i32']],
  // NB: frame-codec.ts hand-writes this layout in encodeRecordsFrame/decodeRecordsFrame (hot path).
  records: [['topic', 'string'], ['partition', 'i32'], ['highWatermark', 'i64'], ['batches', 'bytes']],
  credit: [['topic', 'string'], ['partition', 'i32'], ['bytes', 'u32']],
};

/** Consumer groups and their committed offsets (group-consumer.ts, Node). */
export const groupFrames: FrameSchemas<'offsetCommit' | 'offsetCommitAck' | 'offsetFetch' | 'offsetFetchResult' | 'groupJoin' | 'groupAssignment' | 'groupHeartbeat' | 'groupLeave'> = {
  offsetCommit: [
    ['requestId', 'u32'], ['group', 'string'], ['generationId', 'i32'], ['memberId', 'string'],
    ['offsets', { array: { struct: committedOffset } }],
  ],
  offsetCommitAck: [['requestId', 'u32'], ['errorCode', 'i16']],
  offsetFetch: [['requestId', 'u32'], ['group', 'string'], ['topics', { array: 'string' }]],
  offsetFetchResult: [['requestId', 'u32'], ['errorCode', 'i16'], ['offsets', { array: { struct: committedOffset } }]],
  groupJoin: [
    ['requestId', 'u32'], ['group', 'string'], ['memberId', 'string'], ['topics', { array: 'string' }], ['sessionTimeoutMs', 'u32'],
  ],
  groupAssignment: [
    ['requestId', 'u32'], ['group', 'string'], ['memberId', 'string'], ['generationId', 'i32'], ['errorCode', 'i16'],
    ['assignments', { array: { struct: [['topic', 'string'], ['partitions', { array: 'i32' }]] } }],
  ],
  groupHeartbeat: [['group', 'string'], ['memberId', 'string'], ['generationId', 'i32']],
  groupLeave: [['group', 'string'], ['memberId', 'string']],
};

/**
 * Every frame (broker, docs, tests). Split by who speaks them so that a client bundles only the tables its
 * parts use; NB: `@__PURE__`, so a bundle that never reads the whole table drops it.
 */
export const FrameSchema: FrameSchemas = /* @__PURE__ */ Object.assign({}, coreFrames, producerFrames, consumerFrames, groupFrames);
