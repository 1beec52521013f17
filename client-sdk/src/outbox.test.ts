/**
 * Outbox accumulator (sans-IO): records gather per partition (also when
 * sends alternate between partitions: the last-used accumulator is only a
 * shortcut), a frozen accumulator is never reused, a record not frozen yet
 * can be withdrawn (an aborted send), and `isIdle` says whether a partition
 * has a batch waiting for its ack (then the producer lingers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecordBatch } from './codec/record-batch.ts';
import { validateClientLimits } from './limits.ts';
import { Outbox } from './outbox.ts';
import type { OutboxRecord } from './storage.ts';

let nextId = 1;
const record = (topic: string, n: number): OutboxRecord => ({ id: nextId++, topic, partition: -1, key: null, value: new TextEncoder().encode(String(n)), headers: [], timestampMs: 1_700_000_000_000 });

function outbox(limits = {}): { o: Outbox; batchId: () => number } {
  const o = new Outbox(validateClientLimits(limits));
  o.producer = { producerId: 7, producerEpoch: 0, producerSecret: 's', sequences: {} };
  let id = 1;
  return { o, batchId: () => id++ };
}

const values = (bytes: Uint8Array): number[] => {
  const d = decodeRecordBatch(bytes);
  assert.ok(d.ok);
  return d.value.records.map((r) => Number(new TextDecoder().decode(r.value!)));
};

function add(o: Outbox, r: OutboxRecord, partition: number) {
  o.track(r);
  return o.accumulate(r, partition);
}

test('records alternating between partitions and topics each go to their own batch, in order', () => {
  const { o, batchId } = outbox();
  for (let n = 0; n < 12; n++) add(o, record(n % 4 < 2 ? 'a' : 'b', n), n % 2);
  const batches = o.freeze(batchId).map((b) => `${b.topic}/${b.partition}:${values(b.bytes).join(',')}`).sort();
  assert.deepEqual(batches, ['a/0:0,4,8', 'a/1:1,5,9', 'b/0:2,6,10', 'b/1:3,7,11']);
});

test('a frozen accumulator is not reused: the next record starts a new batch with the next sequence', () => {
  const { o, batchId } = outbox();
  const first = add(o, record('t', 1), 0);
  add(o, record('t', 2), 0);
  const [b1] = o.freeze(batchId, first);
  const second = add(o, record('t', 3), 0);
  assert.notEqual(second, first);
  const [b2] = o.freeze(batchId);
  assert.deepEqual([values(b1.bytes), values(b2.bytes)], [[1, 2], [3]]);
  assert.deepEqual([b1.baseSequence, b2.baseSequence], [0, 2]);
});

test('batchFull at maxBatchRecords; isIdle until a frozen batch of the partition leaves the queue', () => {
  const { o, batchId } = outbox({ maxBatchRecords: 2 });
  const acc = add(o, record('t', 1), 0);
  assert.equal(o.batchFull(acc), false);
  assert.equal(o.isIdle(acc), true);
  add(o, record('t', 2), 0);
  assert.equal(o.batchFull(acc), true);
  const [b] = o.freeze(batchId, acc);
  const next = add(o, record('t', 3), 0);
  assert.equal(o.isIdle(next), false, 'a batch of the partition awaits its ack');
  assert.equal(o.isIdle(add(o, record('t', 4), 1)), true, 'another partition is idle');
  o.remove(b);
  assert.equal(o.isIdle(next), true);
});

test('withdraw takes a record out of its accumulator (not of a frozen batch); an emptied accumulator is gone', () => {
  const { o, batchId } = outbox();
  const a = record('t', 1), b = record('t', 2), c = record('t', 3);
  for (const r of [a, b]) add(o, r, 0);
  assert.equal(o.withdraw(a), true);
  assert.equal(o.withdraw(a), false, 'once');
  const [frozen] = o.freeze(batchId);
  assert.deepEqual(values(frozen.bytes), [2]);
  assert.equal(o.withdraw(b), false, 'frozen: not withdrawn');
  add(o, c, 0);
  assert.equal(o.withdraw(c), true);
  assert.deepEqual(o.freeze(batchId), [], 'nothing left accumulated');
  assert.equal(o.accumulated('t', 0), undefined);
});
