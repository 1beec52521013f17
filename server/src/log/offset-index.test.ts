import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OffsetIndex } from './offset-index.ts';

/** Random segment layout: consecutive batches with record counts and byte sizes. */
const layout = fc.array(fc.record({ records: fc.integer({ min: 1, max: 50 }), bytes: fc.integer({ min: 61, max: 5000 }) }), { minLength: 1, maxLength: 200 });

function build(base: number, batches: { records: number; bytes: number }[], interval: number) {
  const index = new OffsetIndex(base, 2);
  const starts: { offset: number; position: number; last: number }[] = [];
  let offset = base;
  let position = 0;
  let sinceEntry = Infinity;
  for (const b of batches) {
    if (sinceEntry >= interval) {
      index.append(offset, position);
      sinceEntry = 0;
    }
    starts.push({ offset, position, last: offset + b.records - 1 });
    offset += b.records;
    position += b.bytes;
    sinceEntry += b.bytes;
  }
  return { index, starts, end: offset };
}

test('lookup returns the greatest indexed batch start <= target (property)', () => {
  fc.assert(fc.property(fc.nat(1e9), layout, fc.integer({ min: 1, max: 20000 }), fc.nat(), (base, batches, interval, pick) => {
    const { index, starts, end } = build(base, batches, interval);
    const target = base + (pick % (end - base));
    const hit = index.lookup(target);
    assert.ok(hit.offset <= target);
    const batch = starts.find((s) => s.offset === hit.offset);
    assert.ok(batch, 'entry points at a batch start');
    assert.equal(batch.position, hit.position);
    // No batch start between the entry and the target is more than `interval` bytes of scan away.
    const containing = starts.find((s) => s.offset <= target && target <= s.last)!;
    assert.ok(containing.position - hit.position < interval + 5000);
  }));
});

test('encode/decode round trip and truncation (property)', () => {
  fc.assert(fc.property(fc.nat(1e9), layout, fc.integer({ min: 1, max: 5000 }), fc.nat(), (base, batches, interval, pick) => {
    const { index, end, starts } = build(base, batches, interval);
    const size = starts[starts.length - 1].position + 5000;
    const decoded = OffsetIndex.decode(index.encode(), base, size);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value.encode(), index.encode());
    const cut = base + (pick % (end - base + 1));
    index.truncateToOffset(cut);
    assert.ok(index.lookup(end).offset < Math.max(cut, base + 1) || index.entryCount === 0);
  }));
});

test('decode rejects torn, unordered and out-of-segment indexes', () => {
  const index = new OffsetIndex(100);
  index.append(100, 0);
  index.append(110, 4096);
  const bytes = index.encode();
  assert.equal(OffsetIndex.decode(bytes.subarray(0, 12), 100, 10_000).ok, false, 'torn');
  assert.equal(OffsetIndex.decode(bytes, 100, 4096).ok, false, 'position past the segment end');
  const swapped = new Uint8Array([...bytes.subarray(8), ...bytes.subarray(0, 8)]);
  assert.equal(OffsetIndex.decode(swapped, 100, 10_000).ok, false, 'unordered');
  assert.equal(OffsetIndex.decode(new Uint8Array(0), 100, 0).ok, true, 'empty index is valid');
});

test('append refuses non-increasing entries and lookup below the first entry gives the segment start', () => {
  const index = new OffsetIndex(50);
  assert.deepEqual(index.lookup(10), { offset: 50, position: 0 });
  index.append(60, 100);
  assert.throws(() => index.append(60, 200), RangeError);
  assert.throws(() => index.append(61, 100), RangeError);
  assert.deepEqual(index.lookup(59), { offset: 50, position: 0 });
  assert.deepEqual(index.lookup(1000), { offset: 60, position: 100 });
});
