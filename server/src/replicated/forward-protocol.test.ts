import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RunnelError } from '@runnel/client/codec';
import {
  decodeProduceAnswer, decodeProduceForward, decodeProducerStateAnswer, decodeProducerStateForward, decodeReadAnswer, decodeReadForward,
  decodeStatusAnswer, decodeTimestampAnswer, decodeTimestampForward, encodeErrorAnswer, encodeStatusAnswer, encodeProduceAnswer, encodeProduceForward, encodeProducerStateAnswer,
  encodeProducerStateForward, encodeReadAnswer, encodeReadForward, encodeTimestampAnswer, encodeTimestampForward,
} from './forward-protocol.ts';

test('forwarded requests and answers round-trip', () => {
  const batch = new Uint8Array([1, 2, 3, 4, 5]);
  assert.deepEqual(decodeProduceForward(encodeProduceForward({ topicId: 'AbC_-', partition: 7, acks: -1, batch })), { topicId: 'AbC_-', partition: 7, acks: -1, batch });
  assert.deepEqual(decodeReadForward(encodeReadForward({ topicId: 't', partition: 0, offset: 2 ** 40, maxBytes: 65536, waitMs: 500 })), { topicId: 't', partition: 0, offset: 2 ** 40, maxBytes: 65536, waitMs: 500 });
  assert.deepEqual(decodeTimestampForward(encodeTimestampForward({ topicId: 't', partition: 1, timestampMs: 1_700_000_000_000 })), { topicId: 't', partition: 1, timestampMs: 1_700_000_000_000 });
  const ack = { baseOffset: 10, lastOffset: 19, logAppendTimeMs: 123, duplicate: true, logStartOffset: 0 };
  assert.deepEqual(decodeProduceAnswer(encodeProduceAnswer(ack)), ack);
  const read = { firstOffset: 3, nextOffset: 9, highWatermark: 9, logStartOffset: 1, batches: new Uint8Array([9, 9]) };
  assert.deepEqual(decodeReadAnswer(encodeReadAnswer(read)), read);
  assert.equal(decodeTimestampAnswer(encodeTimestampAnswer(null)), null);
  assert.equal(decodeTimestampAnswer(encodeTimestampAnswer(42)), 42);
  const id = 2 ** 52 + 12345;
  assert.deepEqual(decodeProducerStateForward(encodeProducerStateForward({ topicId: 't', partition: 0, producerId: id })), { topicId: 't', partition: 0, producerId: id });
  const entry = { producerId: id, producerEpoch: 32767, historyLength: 2 ** 31, batches: [{ baseSequence: 0, lastSequence: 0, baseOffset: 0, lastOffset: 4 }, { baseSequence: 1, lastSequence: 2 ** 31 - 1, baseOffset: 5, lastOffset: 2 ** 40 }] };
  assert.deepEqual(decodeProducerStateAnswer(encodeProducerStateAnswer(entry), id), entry);
  assert.equal(decodeProducerStateAnswer(encodeProducerStateAnswer(undefined), id), undefined);
});

test("an error answer throws the leader's error code and message", () => {
  const answer = encodeErrorAnswer(new RunnelError('NOT_ENOUGH_REPLICAS', 'isr 1 < min 2'));
  for (const decode of [decodeProduceAnswer, decodeReadAnswer, decodeTimestampAnswer, (b: Uint8Array) => decodeProducerStateAnswer(b, 1)]) {
    assert.throws(() => decode(answer), (e: unknown) => e instanceof RunnelError && e.errorName === 'NOT_ENOUGH_REPLICAS' && e.message === 'isr 1 < min 2');
  }
  assert.throws(() => decodeProduceAnswer(encodeErrorAnswer(new Error('boom'))), (e: unknown) => e instanceof RunnelError && e.errorName === 'UNKNOWN_SERVER_ERROR');
});

test('any bytes decode to a value or an INVALID_REQUEST/answer RunnelError, never another throw', () => {
  const decoders = [
    decodeProduceForward, decodeReadForward, decodeTimestampForward, decodeProducerStateForward,
    decodeProduceAnswer, decodeReadAnswer, decodeTimestampAnswer, (b: Uint8Array) => decodeProducerStateAnswer(b, 1), decodeStatusAnswer,
  ];
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(decoders.length - 1), (bytes, k) => {
    try {
      decoders[k](bytes);
    } catch (e) {
      assert.ok(e instanceof RunnelError, `threw ${String(e)}`);
    }
  }), { numRuns: 5000 });
  assert.throws(() => decodeProduceForward(new Uint8Array([0, 1, 65, 0, 0, 0, 0, 5])), (e: unknown) => e instanceof RunnelError && e.errorName === 'INVALID_REQUEST');
});

test('trailing bytes and a bad acks are refused', () => {
  const ok = encodeReadForward({ topicId: 't', partition: 0, offset: 0, maxBytes: 1, waitMs: 0 });
  assert.throws(() => decodeReadForward(new Uint8Array([...ok, 0])), /trailing/);
  const bad = encodeProduceForward({ topicId: 't', partition: 0, acks: 1, batch: new Uint8Array(0) });
  bad[2 + 1 + 4] = 5;
  assert.throws(() => decodeProduceForward(bad), /acks 5/);
  assert.throws(() => decodeProducerStateForward(encodeProducerStateForward({ topicId: 't', partition: 0, producerId: -1 })), /producer id -1/);
  const tooMany = { producerId: 1, producerEpoch: 0, historyLength: 6, batches: Array.from({ length: 6 }, (_, i) => ({ baseSequence: i, lastSequence: i, baseOffset: i, lastOffset: i })) };
  assert.throws(() => decodeProducerStateAnswer(encodeProducerStateAnswer(tooMany), 1), /6 batches/);
});

test('status answers carry the etcd contact age; the one-byte answer of the previous version still decodes (age unknown)', () => {
  assert.deepEqual(decodeStatusAnswer(encodeStatusAnswer(true, 42.4)), { etcdConnected: true, etcdContactAgeMs: 42 });
  assert.deepEqual(decodeStatusAnswer(encodeStatusAnswer(false, null)), { etcdConnected: false, etcdContactAgeMs: null });
  assert.deepEqual(decodeStatusAnswer(encodeStatusAnswer(false, 1e12)), { etcdConnected: false, etcdContactAgeMs: null }, 'beyond u32: as never');
  assert.deepEqual(decodeStatusAnswer(Uint8Array.of(1)), { etcdConnected: true, etcdContactAgeMs: null });
  for (const bad of [new Uint8Array(0), Uint8Array.of(2), new Uint8Array(3), new Uint8Array(6)]) {
    assert.throws(() => decodeStatusAnswer(bad), (e: unknown) => e instanceof RunnelError && e.errorName === 'INVALID_REQUEST');
  }
});
