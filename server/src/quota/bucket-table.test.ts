import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BucketTable } from './bucket-table.ts';

const RATE = { perSecond: 10, burst: 10 };

test('the table never holds more than maxKeys buckets; least recently used go first', () => {
  const table = new BucketTable(3, 100);
  const a = table.get('a', RATE, 0);
  a.tryTake(10, 0); // active
  table.get('b', RATE, 0);
  table.get('c', RATE, 0);
  table.get('a', RATE, 0); // a is now most recent
  table.get('d', RATE, 0); // evicts b (idle: full)
  assert.deepEqual(table.stats(), { size: 3, evictedIdle: 1, evictedActive: 0 });
  assert.equal(table.get('a', RATE, 0), a, 'a survived');
  table.get('e', RATE, 0); // evicts c
  table.get('f', RATE, 0); // evicts d
  table.get('g', RATE, 0); // evicts a, still in debt at 0 ms: an active eviction
  assert.deepEqual(table.stats(), { size: 3, evictedIdle: 3, evictedActive: 1 });
});

test('sweep drops refilled buckets only, inspecting at most sweepBatch', () => {
  const table = new BucketTable(100, 2);
  for (const key of ['a', 'b', 'c']) table.get(key, RATE, 0).tryTake(10, 0);
  assert.equal(table.sweep(500), 0, 'nothing refilled yet');
  assert.equal(table.sweep(1000), 2, 'batch of two');
  assert.equal(table.sweep(1000), 1);
  assert.equal(table.stats().size, 0);
});

test('property: size ≤ maxKeys whatever the access pattern', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.tuple(fc.nat(50), fc.nat(100)), { maxLength: 300 }), (max, accesses) => {
    const table = new BucketTable(max, 10);
    let now = 0;
    for (const [key, gap] of accesses) {
      now += gap;
      table.get(String(key), RATE, now).tryTake(1, now);
      assert.ok(table.stats().size <= max);
    }
  }));
});
