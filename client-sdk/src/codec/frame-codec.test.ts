/**
 * Frame codec: property round trips of every frame type, the records hot
 * path, peekFrameKind, and every class of bad input → typed error.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeFrame, decodeRecordsFrame, encodeFrame, encodeRecordsFrame, peekFrameKind } from './frame-codec.ts';
import { anyFrame, frameArbitraries } from './frame-arbitraries.ts';
import { FrameKind, type Frame, type FrameType } from './protocol.ts';

/** Uint8Array views compare by content. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? { bytes: [...v] } : v)));
}

for (const type of Object.keys(FrameKind) as FrameType[]) {
  test(`${type} round trips (property)`, () => {
    fc.assert(fc.property(frameArbitraries[type] as fc.Arbitrary<Frame>, (frame) => {
      const encoded = encodeFrame(frame);
      assert.equal(encoded[0], FrameKind[type]);
      assert.equal(peekFrameKind(encoded), type);
      const decoded = decodeFrame(encoded);
      assert.ok(decoded.ok, !decoded.ok ? decoded.message : '');
      assert.deepEqual(plain(decoded.value), plain(frame));
    }), { numRuns: 150 });
  });
}

test('encodeRecordsFrame = encodeFrame(records), decoded batches are a view', () => {
  fc.assert(fc.property(frameArbitraries.records, (frame) => {
    const fast = encodeRecordsFrame(frame.topic, frame.partition, frame.highWatermark, frame.batches);
    assert.deepEqual(fast, encodeFrame(frame));
    const decoded = decodeRecordsFrame(fast);
    assert.ok(decoded.ok);
    assert.equal(decoded.value.batches.buffer, fast.buffer);
    assert.deepEqual(plain(decoded.value), plain(frame));
  }), { numRuns: 300 });
});

test('ping layout is [kind][u32 nonce] big-endian', () => {
  assert.deepEqual([...encodeFrame({ type: 'ping', nonce: 0x01020304 })], [23, 1, 2, 3, 4]);
  assert.deepEqual([...encodeFrame({ type: 'subscribe', requestId: 1, topic: 't', partition: 2, topicId: '', from: { kind: 'latest' }, creditBytes: 5 })],
    [9, 0, 0, 0, 1, 0, 1, 116, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 5]);
});

test('metadata v3 layout: partition, leader, leaderEpoch, replicas, isr, logStartOffset, highWatermark', () => {
  const partition = { partition: 1, leader: 2, leaderEpoch: 7, replicas: [2, 3], isr: [2], logStartOffset: 4, highWatermark: 9 };
  const bytes = encodeFrame({ type: 'metadata', requestId: 5, brokers: [], topics: [{ name: 't', topicId: '', errorCode: 0, partitions: [partition] }] });
  const i64 = (n: number) => [0, 0, 0, 0, 0, 0, 0, n];
  assert.deepEqual([...bytes], [
    4, 0, 0, 0, 5, 0, 0, 0, 0, // kind, requestId, no brokers
    0, 0, 0, 1, 0, 1, 116, 0, 0, 0, 0, 0, 0, 0, 1, // one topic 't', topicId '', errorCode 0, one partition
    0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 7, // partition 1, leader 2, leaderEpoch 7
    0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, // replicas [2, 3], isr [2]
    ...i64(4), ...i64(9),
  ]);
  // NB: the v2 layout (no leaderEpoch) does not decode as v3: hence the version bump, not a silent extension.
  const v2 = new Uint8Array([...bytes.subarray(0, 32), ...bytes.subarray(36)]);
  expectError(decodeFrame(v2), 'INVALID_FRAME');
});

function expectError(result: { ok: boolean }, code: string): void {
  assert.equal(result.ok, false, 'expected an error');
  assert.equal((result as unknown as { code: string }).code, code);
}

test('unknown kind, empty frame, truncation and trailing bytes → INVALID_FRAME', () => {
  expectError(decodeFrame(new Uint8Array(0)), 'INVALID_FRAME');
  expectError(decodeFrame(new Uint8Array([0])), 'INVALID_FRAME');
  expectError(decodeFrame(new Uint8Array([200, 1, 2])), 'INVALID_FRAME');
  assert.equal(peekFrameKind(new Uint8Array([200])), null);
  fc.assert(fc.property(anyFrame, (frame) => {
    const encoded = encodeFrame(frame);
    for (let cut = 1; cut < encoded.length; cut++) expectError(decodeFrame(encoded.subarray(0, cut)), 'INVALID_FRAME');
    const longer = new Uint8Array(encoded.length + 1);
    longer.set(encoded);
    expectError(decodeFrame(longer), 'INVALID_FRAME');
  }), { numRuns: 300 });
});

test('limits: frame, string and array sizes → MESSAGE_TOO_LARGE', () => {
  const frame = encodeFrame({ type: 'metadataRequest', requestId: 1, topics: ['abc', 'de', 'f'], allowAutoTopicCreation: 0 });
  expectError(decodeFrame(frame, { maxFrameBytes: frame.length - 1 }), 'MESSAGE_TOO_LARGE');
  expectError(decodeFrame(frame, { maxStringBytes: 2 }), 'MESSAGE_TOO_LARGE');
  expectError(decodeFrame(frame, { maxArrayLength: 2 }), 'MESSAGE_TOO_LARGE');
  assert.equal(decodeFrame(frame, { maxFrameBytes: frame.length, maxStringBytes: 3, maxArrayLength: 3 }).ok, true);
  const records = encodeRecordsFrame('topic', 0, 0, new Uint8Array(10));
  expectError(decodeFrame(records, { maxStringBytes: 4 }), 'MESSAGE_TOO_LARGE');
  expectError(decodeRecordsFrame(records, { maxFrameBytes: 10 }), 'MESSAGE_TOO_LARGE');
});

test('forged counts, bad enums, bad UTF-8 and unsafe int64 → INVALID_FRAME', () => {
  // metadataRequest claiming 2^32-1 topics in 4 bytes: refused before allocating.
  expectError(decodeFrame(new Uint8Array([3, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0]), { maxArrayLength: 2 ** 32 }), 'INVALID_FRAME');
  const produce = encodeFrame({ type: 'produce', requestId: 1, topic: 't', partition: 0, acks: 1, batch: new Uint8Array(1) });
  produce[1 + 4 + 3 + 4] = 2; // acks := 2
  expectError(decodeFrame(produce), 'INVALID_FRAME');
  const hello = encodeFrame({ type: 'hello', minVersion: 1, maxVersion: 1, clientId: 'ab', token: '' });
  hello[7] = 0xff; // clientId := 'a\xff'
  expectError(decodeFrame(hello), 'INVALID_FRAME');
  const ack = encodeFrame({ type: 'produceAck', requestId: 1, topic: 't', partition: 0, errorCode: 0, baseOffset: 0, logAppendTimeMs: 0, logStartOffset: 0 });
  ack[1 + 4 + 3 + 4 + 2] = 0x7f; // baseOffset high byte := 2^62
  expectError(decodeFrame(ack), 'INVALID_FRAME');
  const sub = encodeFrame({ type: 'subscribe', requestId: 1, topic: 't', partition: 0, topicId: '', from: { kind: 'earliest' }, creditBytes: 0 });
  sub[1 + 4 + 3 + 4 + 2] = 9; // unknown start position tag
  expectError(decodeFrame(sub), 'INVALID_FRAME');
  expectError(decodeRecordsFrame(encodeFrame({ type: 'ping', nonce: 1 })), 'INVALID_FRAME');
});

test('encoding values that do not fit the wire type is an assertion', () => {
  assert.throws(() => encodeFrame({ type: 'ping', nonce: -1 }), /nonce/);
  assert.throws(() => encodeFrame({ type: 'credit', topic: 't', partition: 2 ** 31, bytes: 1 }), /partition/);
  assert.throws(() => encodeFrame({ type: 'records', topic: 'x'.repeat(70_000), partition: 0, highWatermark: 0, batches: new Uint8Array(0) }), /65535/);
  assert.throws(() => encodeFrame({ type: 'initProducer', requestId: 1, producerId: 2 ** 53, producerEpoch: 0, producerSecret: '' }), /producerId/);
});
