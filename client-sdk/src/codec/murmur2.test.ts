/** murmur2 and partitionForKey agree with kafkajs's default (Java-compatible) partitioner. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import fc from 'fast-check';
import { murmur2, partitionForKey } from './murmur2.ts';

const require = createRequire(import.meta.url);
const kafkaMurmur2: (key: Buffer | string) => number = require('kafkajs/src/producer/partitioners/default/murmur2');
const { Partitioners: { DefaultPartitioner } } = require('kafkajs');

test('known Java values (Kafka UtilsTest.testMurmur2)', () => {
  const cases: [string, number][] = [
    ['21', -973932308], ['foobar', -790332482], ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829], ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ];
  for (const [key, expected] of cases) assert.equal(murmur2(new TextEncoder().encode(key)), expected, key);
  assert.equal(murmur2(new Uint8Array([97, 98, 99])), 479470107); // {'a','b','c'}
});

test('murmur2 equals kafkajs on thousands of random keys', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (key) => {
    assert.equal(murmur2(key), kafkaMurmur2(Buffer.from(key)));
  }), { numRuns: 5000 });
});

test('partitionForKey equals kafkajs DefaultPartitioner', () => {
  const partitioner = DefaultPartitioner();
  fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 1000 }), (key, n) => {
    const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0 }));
    const expected = partitioner({ topic: 't', partitionMetadata, message: { key: Buffer.from(key), value: null } });
    assert.equal(partitionForKey(key, n), expected);
  }), { numRuns: 5000 });
});

test('partitionForKey rejects a non-positive partition count', () => {
  assert.throws(() => partitionForKey(new Uint8Array(1), 0), RangeError);
});
