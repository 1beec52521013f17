import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32c } from '@runnel/client/codec';
import { lastSequenceOf, PRODUCER_BATCHES_RETAINED, REQUEST_SEQUENCED_PRODUCER_ID_MIN, ProducerStateTable, sequencePrecedes, type ProducerBatchHeader, type ProducerCheck } from './producer-state.ts';

const INT32_MAX = 0x7fff_ffff;
const h = (producerId: number, producerEpoch: number, baseSequence: number, lastOffsetDelta = 0): ProducerBatchHeader => ({ producerId, producerEpoch, baseSequence, lastOffsetDelta });

test('in-order batches append; the last five retried come back as duplicates; older ones are DUPLICATE_SEQUENCE_NUMBER, gaps OUT_OF_ORDER (property)', () => {
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
      assert.equal(retry.kind === 'reject' && retry.code, 'DUPLICATE_SEQUENCE_NUMBER', 'older than the remembered five: already written');
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

// ---- issue 11, finding 6: "already written, below what I remember" vs "a gap" ----

const answer = (c: ProducerCheck): string => (c.kind === 'reject' ? c.code : c.kind);

/** A table remembering producer 1 (epoch 0) with batches of 10 records from `firstSequence` (wrapping), `count` of them. */
function history(firstSequence: number, count: number): { table: ProducerStateTable; bases: number[]; next: number } {
  const table = new ProducerStateTable(10);
  const bases: number[] = [];
  let seq = firstSequence;
  for (let i = 0; i < count; i++) {
    table.record(h(1, 0, seq, 9), i * 10);
    bases.push(seq);
    seq = lastSequenceOf(seq, 10);
  }
  return { table, bases, next: seq };
}

test('outside the remembered window (table): entirely below it DUPLICATE_SEQUENCE_NUMBER; a gap, or an overlap with other bounds, OUT_OF_ORDER', () => {
  const { table, bases, next } = history(0, 8); // remembers 30..79, next 80
  assert.deepEqual([bases[3], next], [30, 80]);
  const cases: [ProducerBatchHeader, string, string][] = [
    [h(1, 0, 0, 9), 'DUPLICATE_SEQUENCE_NUMBER', 'a whole batch older than the five remembered'],
    [h(1, 0, 20, 9), 'DUPLICATE_SEQUENCE_NUMBER', 'the batch just below the oldest remembered'],
    [h(1, 0, 25, 4), 'DUPLICATE_SEQUENCE_NUMBER', 'ends at 29, just below 30 (other bounds: still all written)'],
    [h(1, 0, 25, 5), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'ends at 30: overlaps the window with other bounds'],
    [h(1, 0, 42, 3), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'inside the window, matching no batch'],
    [h(1, 0, 30, 9), 'duplicate', 'the oldest remembered: original offsets'],
    [h(1, 0, 70, 9), 'duplicate', 'the latest'],
    [h(1, 0, 80, 9), 'append', 'the next'],
    [h(1, 0, 81, 0), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'a gap of one'],
    [h(1, 0, 1_000_000, 0), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'a large gap'],
    [h(1, 1, 0, 0), 'append', 'a new epoch from 0'],
    [h(1, 1, 5, 0), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'a new epoch not from 0'],
  ];
  for (const [header, want, why] of cases) assert.equal(answer(table.check(header)), want, `${why}: ${JSON.stringify(header)}`);
  const refused = table.check(h(1, 0, 0, 9));
  assert.ok(refused.kind === 'reject' && /sequences 0\.\.9 are below the oldest of the last 5 batches remembered \(sequence 30\): already written/.test(refused.message), JSON.stringify(refused));
  const gap = table.check(h(1, 0, 90, 0));
  assert.ok(gap.kind === 'reject' && /expected sequence 80, got 90: sequences 80\.\.89 are missing/.test(gap.message), JSON.stringify(gap));
});

test('across the int32 wrap: "below" and "gap" are serial-number comparisons, not numeric ones', () => {
  // Batches of 10 from INT32_MAX - 44: remembered INT32_MAX - 14 .. 34 (wrapped), next 35.
  const across = history(INT32_MAX - 44, 8);
  assert.deepEqual([across.bases[3], across.next], [INT32_MAX - 14, 35]);
  assert.equal(answer(across.table.check(h(1, 0, INT32_MAX - 44, 9))), 'DUPLICATE_SEQUENCE_NUMBER', 'written before the wrap, below the window');
  assert.equal(answer(across.table.check(h(1, 0, INT32_MAX - 24, 9))), 'DUPLICATE_SEQUENCE_NUMBER', 'the batch just below the oldest');
  assert.equal(answer(across.table.check(h(1, 0, 40, 0))), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'numerically below the oldest, but a gap after the wrapped next');
  assert.equal(answer(across.table.check(h(1, 0, 35, 0))), 'append');
  // Remembered 5..54 after the wrap: a resend from before the wrap is numerically huge but below.
  const after = history(INT32_MAX - 24, 8);
  assert.equal(after.bases[3], 5);
  assert.equal(answer(after.table.check(h(1, 0, INT32_MAX - 4, 9))), 'DUPLICATE_SEQUENCE_NUMBER', 'the batch that wrapped (INT32_MAX - 4 .. 4) is below 5');
  assert.equal(answer(after.table.check(h(1, 0, INT32_MAX - 3, 0))), 'DUPLICATE_SEQUENCE_NUMBER', 'numerically above the next, yet written before the wrap');
  // Serial order itself: half the space ahead precedes, the other half follows.
  assert.ok(sequencePrecedes(INT32_MAX, 0) && sequencePrecedes(INT32_MAX - 5, 3) && !sequencePrecedes(3, INT32_MAX - 5) && !sequencePrecedes(7, 7));
  assert.ok(sequencePrecedes(0, 2 ** 30 - 1) && !sequencePrecedes(0, 2 ** 30));
});

test('property: after any history (wrapping or not), every batch sent before the last five is DUPLICATE_SEQUENCE_NUMBER and every gap OUT_OF_ORDER', () => {
  const start = fc.oneof(fc.constant(0), fc.integer({ min: INT32_MAX - 2000, max: INT32_MAX }), fc.nat(INT32_MAX));
  fc.assert(fc.property(start, fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 6, maxLength: 40 }), fc.nat(), fc.integer({ min: 1, max: 2 ** 30 - 1 }), (seq0, deltas, pick, gapBy) => {
    const table = new ProducerStateTable(10);
    const sent: ProducerBatchHeader[] = [];
    let seq = seq0;
    for (const [i, delta] of deltas.entries()) {
      const header = h(3, 0, seq, delta);
      table.record(header, i * 1000);
      sent.push(header);
      seq = lastSequenceOf(seq, delta + 1);
    }
    const old = sent[pick % (sent.length - PRODUCER_BATCHES_RETAINED)];
    assert.equal(answer(table.check(old)), 'DUPLICATE_SEQUENCE_NUMBER', `resend of ${old.baseSequence}+${old.lastOffsetDelta}`);
    assert.equal(answer(table.check(h(3, 0, lastSequenceOf(seq, gapBy), 0))), 'OUT_OF_ORDER_SEQUENCE_NUMBER', `gap of ${gapBy} after ${seq}`);
  }), { numRuns: 500 });
});

test('the window rebuilt from a snapshot gives the same answers (a restart does not turn written into lost)', () => {
  const { table, next } = history(INT32_MAX - 44, 8);
  const restored = ProducerStateTable.decodeSnapshot(table.encodeSnapshot(), 10)!;
  for (const header of [h(1, 0, INT32_MAX - 44, 9), h(1, 0, INT32_MAX - 14, 9), h(1, 0, 40, 0), h(1, 0, next, 0)]) {
    assert.deepEqual(restored.check(header), table.check(header), JSON.stringify(header));
  }
  assert.equal(restored.entry(1)!.historyLength, 80, 'the snapshot keeps the history length');
  // Replayed from the log alone after retention deleted the producer's batches below 70: its history starts there.
  const replayed = new ProducerStateTable(10);
  for (let seq = 70; seq < 160; seq += 10) replayed.record(h(1, 0, seq, 9), seq);
  assert.equal(answer(replayed.check(h(1, 0, 80, 9))), 'DUPLICATE_SEQUENCE_NUMBER', 'below the window, inside the replayed history');
  const unknown = replayed.check(h(1, 0, 30, 9));
  assert.equal(answer(unknown), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'below the replayed history: not known to be written');
  assert.ok(unknown.kind === 'reject' && /history this partition has of the producer \(it starts at sequence 70/.test(unknown.message), JSON.stringify(unknown));
});

test('an entry that began mid-stream (state evicted, then a later batch accepted as unknown) never calls what is below it written', () => {
  const table = new ProducerStateTable(1);
  for (let seq = 0; seq < 990; seq += 10) table.record(h(1, 0, seq, 9), seq);
  table.record(h(2, 0, 0, 0), 1000); // evicts producer 1
  assert.equal(table.entry(1), undefined);
  // Producer 1's 990..999 failed (say LIMIT_EXCEEDED) but its 1000..1009 was accepted: the broker no longer knew it.
  assert.equal(answer(table.check(h(1, 0, 1000, 9))), 'append');
  table.record(h(1, 0, 1000, 9), 1001);
  for (let seq = 1010; seq < 1060; seq += 10) table.record(h(1, 0, seq, 9), seq);
  assert.equal(answer(table.check(h(1, 0, 990, 9))), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'the retry of 990 is not dropped as written (it was lost)');
  assert.equal(answer(table.check(h(1, 0, 1000, 9))), 'DUPLICATE_SEQUENCE_NUMBER', '1000 is below the window and inside what this table saw');
});

test('a snapshot of the earlier format (RPS1, no history) is read with the window as its only history', () => {
  const { table } = history(0, 8);
  const v2 = table.encodeSnapshot();
  // RPS1 = RPS2 without the 8-byte historyLength after each producer's batchCount, magic "RPS1", its own CRC.
  const producerAt = 8;
  const v1Body = new Uint8Array(v2.length - 8 - 4);
  v1Body.set(v2.subarray(0, producerAt + 11), 0);
  v1Body.set(v2.subarray(producerAt + 19, v2.length - 4), producerAt + 11);
  new DataView(v1Body.buffer).setUint32(0, 0x52505331);
  const v1 = new Uint8Array(v1Body.length + 4);
  v1.set(v1Body);
  new DataView(v1.buffer).setUint32(v1Body.length, crc32c(v1Body, 0, v1Body.length));
  const restored = ProducerStateTable.decodeSnapshot(v1, 10)!;
  assert.ok(restored, 'RPS1 still decodes');
  assert.deepEqual(restored.entry(1)!.batches, table.entry(1)!.batches);
  assert.equal(restored.entry(1)!.historyLength, 50, 'the five remembered batches');
  assert.equal(answer(restored.check(h(1, 0, 20, 9))), 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'below the window: unknown, as before the upgrade');
  assert.equal(answer(restored.check(h(1, 0, 30, 9))), 'duplicate');
});

test('a request-sequenced producer (id >= 2^52) takes one sequence per batch, whatever its record count; the same rule after a snapshot', () => {
  const id = REQUEST_SEQUENCED_PRODUCER_ID_MIN + 12345;
  const table = new ProducerStateTable(10);
  // Batches of 3, 1 and 5 records carry sequences 0, 1, 2 (a Durable Streams producer numbers its appends).
  table.record(h(id, 0, 0, 2), 0);
  assert.deepEqual(table.check(h(id, 0, 1, 0)), { kind: 'append' }, 'the next request follows a 3-record batch at sequence 1');
  assert.equal((table.check(h(id, 0, 3, 0)) as { code?: string }).code, 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'sequence 3 after 0 is a gap');
  table.record(h(id, 0, 1, 0), 3);
  table.record(h(id, 0, 2, 4), 4);
  assert.deepEqual(table.entry(id)?.batches.map((b) => [b.baseSequence, b.lastSequence, b.baseOffset, b.lastOffset]), [[0, 0, 0, 2], [1, 1, 3, 3], [2, 2, 4, 8]]);
  assert.deepEqual(table.check(h(id, 0, 2, 4)), { kind: 'duplicate', baseOffset: 4, lastOffset: 8 });
  assert.deepEqual(table.check(h(id, 0, 3, 7)), { kind: 'append' });
  const restored = ProducerStateTable.decodeSnapshot(table.encodeSnapshot(), 10);
  assert.deepEqual(restored?.check(h(id, 0, 3, 7)), { kind: 'append' });
  assert.deepEqual(restored?.check(h(id, 0, 0, 2)), { kind: 'duplicate', baseOffset: 0, lastOffset: 2 });
  // Below the id range the record count still counts: a 3-record batch at 0 expects 3 next.
  const plain = new ProducerStateTable(10);
  plain.record(h(REQUEST_SEQUENCED_PRODUCER_ID_MIN - 1, 0, 0, 2), 0);
  assert.equal((plain.check(h(REQUEST_SEQUENCED_PRODUCER_ID_MIN - 1, 0, 1, 0)) as { code?: string }).code, 'OUT_OF_ORDER_SEQUENCE_NUMBER');
  assert.deepEqual(plain.check(h(REQUEST_SEQUENCED_PRODUCER_ID_MIN - 1, 0, 3, 0)), { kind: 'append' });
});
