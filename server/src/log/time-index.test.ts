import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TimeIndex } from './time-index.ts';

const batchesArb = fc.array(fc.record({ records: fc.integer({ min: 1, max: 20 }), maxTs: fc.integer({ min: 0, max: 10_000 }) }), { minLength: 1, maxLength: 150 });

test('starting at lookup(ts) never skips the first batch with maxTimestamp >= ts (property)', () => {
  fc.assert(fc.property(fc.nat(1e6), batchesArb, fc.integer({ min: 1, max: 10 }), fc.integer({ min: -5, max: 10_005 }), (base, batches, every, ts) => {
    const index = new TimeIndex(base, 1);
    let offset = base;
    let runningMax = -Infinity;
    let offsetOfMax = base;
    const starts: { offset: number; maxTs: number }[] = [];
    batches.forEach((b, i) => {
      starts.push({ offset, maxTs: b.maxTs });
      if (b.maxTs > runningMax) {
        runningMax = b.maxTs;
        offsetOfMax = offset;
      }
      if (i % every === 0) index.maybeAppend(runningMax, offsetOfMax);
      offset += b.records;
    });
    const expected = starts.find((s) => s.maxTs >= ts)?.offset ?? null;
    const from = index.lookup(ts);
    const viaIndex = starts.find((s) => s.offset >= from && s.maxTs >= ts)?.offset ?? null;
    assert.equal(viaIndex, expected);
    const decoded = TimeIndex.decode(index.encode(), base, offset - base);
    assert.ok(decoded.ok);
    assert.equal(decoded.value.lookup(ts), from);
  }));
});

test('maybeAppend ignores non-advancing entries; decode rejects torn and unordered files', () => {
  const index = new TimeIndex(0);
  index.maybeAppend(100, 0);
  index.maybeAppend(100, 5);
  index.maybeAppend(90, 6);
  index.maybeAppend(200, 10);
  assert.equal(index.entryCount, 2);
  assert.equal(index.lookup(100), 0);
  assert.equal(index.lookup(101), 0);
  assert.equal(index.lookup(250), 10);
  const bytes = index.encode();
  assert.equal(TimeIndex.decode(bytes.subarray(0, 13), 0, 100).ok, false);
  assert.equal(TimeIndex.decode(new Uint8Array([...bytes.subarray(12), ...bytes.subarray(0, 12)]), 0, 100).ok, false);
  assert.equal(TimeIndex.decode(bytes, 0, 5).ok, false, 'offset past the segment end');
  index.truncateToOffset(10);
  assert.equal(index.entryCount, 1);
});
