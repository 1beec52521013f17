import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { Partitioner } from './partitioner.ts';
import { seededRandom } from './reconnect-policy.ts';

const require = createRequire(import.meta.url);
const { Partitioners } = require('kafkajs');

test('keyed partitioning equals kafkajs DefaultPartitioner for string keys', () => {
  const kafkajs = Partitioners.DefaultPartitioner();
  const ours = new Partitioner(seededRandom(1));
  const encoder = new TextEncoder();
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 60, unit: 'grapheme' }), fc.integer({ min: 1, max: 512 }), (key, n) => {
    const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0 }));
    const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: 'v' } });
    assert.equal(ours.partition('t', encoder.encode(key), n), expected);
  }), { numRuns: 3000 });
});

test('keyless records stick until their batch completes, then switch', () => {
  const p = new Partitioner(seededRandom(7));
  const first = p.partition('t', null, 6);
  for (let i = 0; i < 100; i++) assert.equal(p.partition('t', null, 6), first);
  p.batchCompleted('t', (first + 1) % 6, 6); // another partition's batch: no switch
  assert.equal(p.partition('t', null, 6), first);
  p.batchCompleted('t', first, 6);
  const second = p.partition('t', null, 6);
  assert.notEqual(second, first);
  assert.ok(second >= 0 && second < 6);
});

test('sticky partitions spread over all partitions over time', () => {
  const p = new Partitioner(seededRandom(3));
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const part = p.partition('t', null, 4);
    seen.add(part);
    p.batchCompleted('t', part, 4);
  }
  assert.equal(seen.size, 4);
});
