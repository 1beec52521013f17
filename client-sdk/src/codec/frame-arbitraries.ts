/**
 * fast-check arbitraries for every protocol frame (test support only; not
 * exported from index.ts). Used by the codec's round-trip and fuzz tests and
 * available to the broker's live-server fuzz test.
 */
import fc from 'fast-check';
import type { Frame, FrameType } from './protocol.ts';

type FrameOf<K extends FrameType> = Extract<Frame, { type: K }>;

const str = fc.string({ maxLength: 20, unit: 'grapheme' });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const i16 = fc.integer({ min: -32768, max: 32767 });
const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const i64 = fc.maxSafeInteger();
const offset = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 64 });
const startPosition = fc.oneof(
  fc.constant({ kind: 'earliest' as const }), fc.constant({ kind: 'latest' as const }),
  fc.record({ kind: fc.constant('offset' as const), offset }), fc.record({ kind: fc.constant('timestamp' as const), timestampMs: i64 }),
);
const committedOffset = fc.record({ topic: str, partition: i32, offset: i64, metadata: str });
const partitionMetadata = fc.record({ partition: i32, leader: i32, leaderEpoch: i32, replicas: fc.array(i32, { maxLength: 5 }), isr: fc.array(i32, { maxLength: 5 }), logStartOffset: i64, highWatermark: i64 });
const tag = <K extends FrameType>(type: K) => fc.constant(type);

/** One arbitrary per frame type; the mapped type makes a missing one a compile error. */
export const frameArbitraries: { [K in FrameType]: fc.Arbitrary<FrameOf<K>> } = {
  hello: fc.record({ type: tag('hello'), minVersion: u16, maxVersion: u16, clientId: str, token: str }),
  helloOk: fc.record({ type: tag('helloOk'), version: u16, brokerId: i32, sessionId: str, maxFrameBytes: u32, maxBatchBytes: u32, maxInflightProduce: u32, tokenExpiresAtMs: i64 }),
  metadataRequest: fc.record({ type: tag('metadataRequest'), requestId: u32, topics: fc.array(str, { maxLength: 5 }), allowAutoTopicCreation: fc.constantFrom(0, 1) }),
  metadata: fc.record({
    type: tag('metadata'), requestId: u32, brokers: fc.array(fc.record({ id: i32, url: str }), { maxLength: 3 }),
    topics: fc.array(fc.record({ name: str, topicId: str, errorCode: i16, partitions: fc.array(partitionMetadata, { maxLength: 4 }) }), { maxLength: 3 }),
  }),
  initProducer: fc.record({ type: tag('initProducer'), requestId: u32, producerId: i64, producerEpoch: i16, producerSecret: str }),
  initProducerOk: fc.record({ type: tag('initProducerOk'), requestId: u32, producerId: i64, producerEpoch: i16, errorCode: i16, producerSecret: str }),
  produce: fc.record({ type: tag('produce'), requestId: u32, topic: str, partition: i32, acks: fc.constantFrom(-1 as const, 0 as const, 1 as const), batch: bytes }),
  produceAck: fc.record({ type: tag('produceAck'), requestId: u32, topic: str, partition: i32, errorCode: i16, baseOffset: i64, logAppendTimeMs: i64, logStartOffset: i64 }),
  subscribe: fc.record({ type: tag('subscribe'), requestId: u32, topic: str, partition: i32, topicId: str, from: startPosition, creditBytes: u32 }),
  subscribed: fc.record({ type: tag('subscribed'), requestId: u32, topic: str, partition: i32, errorCode: i16, topicId: str, startOffset: i64, logStartOffset: i64, highWatermark: i64 }),
  unsubscribe: fc.record({ type: tag('unsubscribe'), requestId: u32, topic: str, partition: i32 }),
  records: fc.record({ type: tag('records'), topic: str, partition: i32, highWatermark: i64, batches: bytes }),
  credit: fc.record({ type: tag('credit'), topic: str, partition: i32, bytes: u32 }),
  offsetCommit: fc.record({ type: tag('offsetCommit'), requestId: u32, group: str, generationId: i32, memberId: str, offsets: fc.array(committedOffset, { maxLength: 4 }) }),
  offsetCommitAck: fc.record({ type: tag('offsetCommitAck'), requestId: u32, errorCode: i16 }),
  offsetFetch: fc.record({ type: tag('offsetFetch'), requestId: u32, group: str, topics: fc.array(str, { maxLength: 4 }) }),
  offsetFetchResult: fc.record({ type: tag('offsetFetchResult'), requestId: u32, errorCode: i16, offsets: fc.array(committedOffset, { maxLength: 4 }) }),
  groupJoin: fc.record({ type: tag('groupJoin'), requestId: u32, group: str, memberId: str, topics: fc.array(str, { maxLength: 4 }), sessionTimeoutMs: u32 }),
  groupAssignment: fc.record({
    type: tag('groupAssignment'), requestId: u32, group: str, memberId: str, generationId: i32, errorCode: i16,
    assignments: fc.array(fc.record({ topic: str, partitions: fc.array(i32, { maxLength: 6 }) }), { maxLength: 4 }),
  }),
  groupHeartbeat: fc.record({ type: tag('groupHeartbeat'), group: str, memberId: str, generationId: i32 }),
  groupLeave: fc.record({ type: tag('groupLeave'), group: str, memberId: str }),
  error: fc.record({ type: tag('error'), requestId: u32, errorCode: i16, message: str, retryAfterMs: u32 }),
  ping: fc.record({ type: tag('ping'), nonce: u32 }),
  pong: fc.record({ type: tag('pong'), nonce: u32 }),
  authenticate: fc.record({ type: tag('authenticate'), requestId: u32, token: str }),
  authenticateOk: fc.record({ type: tag('authenticateOk'), requestId: u32, errorCode: i16, tokenExpiresAtMs: i64 }),
};
export const anyFrame: fc.Arbitrary<Frame> = fc.oneof(...Object.values(frameArbitraries) as fc.Arbitrary<Frame>[]);
