import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { largestLags, type PartitionLag } from './consumer-lag.ts';

const lag = (group: string, lag: number, partition = 0): PartitionLag => ({ group, topic: 't', partition, lag });

test('largestLags keeps the max largest lags, ties by name', () => {
  assert.deepEqual(largestLags([lag('a', 1), lag('b', 5), lag('c', 5), lag('d', 0)], 2), [lag('b', 5), lag('c', 5)]);
  assert.deepEqual(largestLags([lag('a', 1)], 0), []);
  assert.deepEqual(largestLags([lag('a', 1, 1), lag('a', 1, 0)], 5), [lag('a', 1, 0), lag('a', 1, 1)]);
});

test('largestLags: at most max entries, none smaller than one left out', () => {
  const arb = fc.array(fc.record({ group: fc.string({ maxLength: 3 }), topic: fc.constant('t'), partition: fc.nat(3), lag: fc.nat(100) }), { maxLength: 60 });
  fc.assert(fc.property(arb, fc.nat(70), (lags, max) => {
    const kept = largestLags(lags, max);
    assert.equal(kept.length, Math.min(max, lags.length));
    const smallestKept = Math.min(...kept.map((l) => l.lag));
    const leftOut = lags.filter((l) => !kept.includes(l));
    for (const l of leftOut) assert.ok(l.lag <= smallestKept);
  }));
});
