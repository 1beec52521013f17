import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { lastSequenceOf, PRODUCER_BATCHES_RETAINED, ProducerStateTable, type ProducerBatchHeader } from './producer-state.ts';

const INT32_MAX = 0x7fff_ffff;
const h = (producerId: number, producerEpoch: number, baseSequence: number, lastOffsetDelta = 0): ProducerBatchHeader => ({ producerId, producerEpoch, baseSequence, lastOffsetDelta });

test('in-order batches append; the last five retried come back as duplicates; older ones and gaps are rejected (property)', () => {
  const startSeq = fc.oneof(fc.constant(0), fc.integer({ min: INT32_MAX - 300, max: INT32_MAX }), fc.nat(INT32_MAX));
  fc.assert(fc.property(startSeq, fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }), fc.nat(), (seq0, deltas, pick) => {
    const table = new ProducerStateTable(10);
    let seq = seq0;
    let offset = 1000;
    const sent: { header: ProducerBatchHeader; baseOffset: number }[] = [];
    for (const delta of deltas) {
      const header = h(7, 3, seq, delta);
      assert.deepEqual(table.check(header), { kind: 'append' });
      table.record(header, offset);
      sent.push({ header, baseOffset: offset });
      offset += delta + 1;
      seq = lastSequenceOf(seq, delta + 1);
    }
    const i = pick % sent.length;
    const retry = table.check(sent[i].header);
    if (i >= sent.length - PRODUCER_BATCHES_RETAINED) {
      assert.deepEqual(retry, { kind: 'duplicate', baseOffset: sent[i].baseOffset, lastOffset: sent[i].baseOffset + sent[i].header.lastOffsetDelta });
    } else {
      assert.equal(retry.kind === 'reject' && retry.code, 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    }
    const gap = table.check(h(7, 3, lastSequenceOf(seq, 1)));
    assert.equal(gap.kind === 'reject' && gap.code, 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    assert.deepEqual(table.check(h(7, 3, seq)), { kind: 'append' }, 'the next sequence is accepted');
  }));
});

test('sequences wrap at int32 like Kafka', () => {
  assert.equal(lastSequenceOf(INT32_MAX, 0), INT32_MAX);
  assert.equal(lastSequenceOf(INT32_MAX, 1), 0);
  assert.equal(lastSequenceOf(INT32_MAX - 1, 3), 1);
  const table = new ProducerStateTable(10);
  table.record(h(1, 0, INT32_MAX - 1, 1), 0);
  assert.deepEqual(table.check(h(1, 0, 0)), { kind: 'append' });
});

test('epoch rules: fenced older epoch, new epoch from 0, non-idempotent and unknown producers pass', () => {
  const table = new ProducerStateTable(10);
  table.record(h(5, 2, 0, 9), 0);
  const cases: [ProducerBatchHeader, string][] = [
    [h(5, 1, 10), 'INVALID_PRODUCER_EPOCH'],
    [h(5, 3, 4), 'OUT_OF_ORDER_SEQUENCE_NUMBER'],
    [h(5, 3, 0), 'append'],
    [h(5, 2, 10), 'append'],
    [h(5, 2, 11), 'OUT_OF_ORDER_SEQUENCE_NUMBER'],
    [h(-1, -1, -1), 'append'],
    [h(6, 0, 42), 'append'],
    [h(6, 0, -1), 'INVALID_RECORD'],
  ];
  for (const [header, want] of cases) {
    const got = table.check(header);
    assert.equal(got.kind === 'reject' ? got.code : got.kind, want, JSON.stringify(header));
  }
  table.record(h(5, 3, 0), 10);
  assert.equal(table.entry(5)!.batches.length, 1, 'a new epoch forgets the old batches');
});

test('least recently written producer is evicted past maxProducers; removeBefore drops retention-deleted producers', () => {
  const table = new ProducerStateTable(2);
  table.record(h(1, 0, 0), 0);
  table.record(h(2, 0, 0), 1);
  table.record(h(1, 0, 1), 2);
  table.record(h(3, 0, 0), 3);
  assert.equal(table.size, 2);
  assert.equal(table.entry(2), undefined);
  table.removeBefore(3);
  assert.deepEqual([table.entry(1), table.entry(3)?.producerId], [undefined, 3]);
});

test('snapshot round trip; corrupt snapshots are refused (property)', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(1000), fc.nat(5), fc.nat(INT32_MAX), fc.nat(100)), { maxLength: 40 }), (ops) => {
    const table = new ProducerStateTable(1000);
    let offset = 0;
    for (const [id, epoch, seq, delta] of ops) {
      table.record(h(id, epoch, seq, delta), offset);
      offset += delta + 1;
    }
    const bytes = table.encodeSnapshot();
    const back = ProducerStateTable.decodeSnapshot(bytes, 1000);
    assert.ok(back);
    assert.deepEqual(back.encodeSnapshot(), bytes);
    for (const [id] of ops) assert.deepEqual(back.entry(id), table.entry(id));
    const flipped = bytes.slice();
    flipped[Math.floor(bytes.length / 2)] ^= 1;
    assert.equal(ProducerStateTable.decodeSnapshot(flipped, 1000), null);
    assert.equal(ProducerStateTable.decodeSnapshot(bytes.subarray(0, bytes.length - 1), 1000), null);
  }));
});
