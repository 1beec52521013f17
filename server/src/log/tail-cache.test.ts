import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TailCache } from './tail-cache.ts';

/** A stored batch of the reference log: offsets [base, next) and its bytes (a tag byte per batch, to compare). */
interface Batch { base: number; next: number; bytes: Uint8Array }

function batchBytes(length: number, tag: number): Uint8Array {
  return new Uint8Array(length).fill(tag & 0xff);
}

/** log-reader.ts's rules over every batch of the log: what a file read answers. */
function referenceRead(log: Batch[], offset: number, maxBytes: number, maxOffset: number): { bytes: number[]; firstOffset: number; nextOffset: number } {
  const start = log.findIndex((b) => b.next - 1 >= offset);
  if (start < 0 || log[start].next - 1 >= maxOffset) return { bytes: [], firstOffset: offset, nextOffset: offset };
  let total = log[start].bytes.length;
  let i = start + 1;
  for (; i < log.length && total < maxBytes; i++) {
    if (log[i].next - 1 >= maxOffset || total + log[i].bytes.length > maxBytes) break;
    total += log[i].bytes.length;
  }
  return { bytes: log.slice(start, i).flatMap((b) => [...b.bytes]), firstOffset: log[start].base, nextOffset: log[i - 1].next };
}

test('a read the cache answers is exactly what the file read answers; the cache answers every offset it holds', () => {
  // Weighted so that the cache usually holds several batches when it is read.
  const op = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), records: fc.integer({ min: 1, max: 5 }), length: fc.oneof(fc.constantFrom(100, 200, 300), fc.integer({ min: 61, max: 400 })) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), gap: fc.integer({ min: 0, max: 20 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('written' as const), behind: fc.nat({ max: 12 }) }) },
    // Multiples of the batch sizes too, so answers land exactly on the byte bound; offsets and maxOffset near the end.
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('read' as const), back: fc.nat({ max: 40 }), maxBytes: fc.oneof(fc.integer({ min: 1, max: 15 }).map((k) => k * 100), fc.integer({ min: 1, max: 1500 })), below: fc.nat({ max: 6 }) }) },
  );
  fc.assert(fc.property(fc.oneof(fc.integer({ min: 0, max: 20 }).map((k) => k * 100), fc.integer({ min: 0, max: 2000 })), fc.array(op, { maxLength: 80 }), (maxBytes, ops) => {
    const cache = new TailCache(maxBytes);
    let log: Batch[] = [];
    let end = 0;
    /** Offsets below it are in the file (the log's writtenEnd): reads never ask past it. */
    let written = 0;
    let tag = 0;
    for (const o of ops) {
      if (o.kind === 'append') {
        const b = { base: end, next: end + o.records, bytes: batchBytes(o.length, ++tag) };
        log.push(b);
        cache.append(b.base, b.next - 1, b.bytes);
        end = b.next;
        if (maxBytes > 0) assert.ok(cache.read(b.base, 1, end)?.bytes.length, 'the batch just appended is held until it is written');
      } else if (o.kind === 'truncate') {
        // The log truncates at a batch boundary (the batch containing the offset goes).
        if (log.length === 0) continue;
        const k = o.at % log.length;
        end = log[k].base;
        log = log.slice(0, k);
        written = Math.min(written, end);
        cache.truncateFrom(end);
      } else if (o.kind === 'restart') {
        // truncateFullyAndStartAt: an empty log at or past the old end.
        end += o.gap;
        written = end;
        log = [];
        cache.clear();
      } else if (o.kind === 'clear') {
        cache.clear();
      } else if (o.kind === 'written') {
        // Writes complete in order, at batch boundaries.
        const k = log.findIndex((b) => b.next > written);
        if (k < 0) continue;
        written = log[Math.min(log.length - 1, k + o.behind % (log.length - k))].next;
        cache.written(written);
      } else {
        const offset = Math.max(0, end - o.back);
        const maxOffset = Math.max(0, written - o.below);
        const got = cache.read(offset, o.maxBytes, maxOffset);
        if (got) assert.deepEqual({ bytes: [...got.bytes], firstOffset: got.firstOffset, nextOffset: got.nextOffset }, referenceRead(log, offset, o.maxBytes, maxOffset));
      }
      assert.ok(cache.writtenBytes <= maxBytes, `cache holds ${cache.writtenBytes} written bytes > ${maxBytes}`);
      const unwritten = log.filter((b) => b.next > written).reduce((n, b) => n + b.bytes.length, 0);
      assert.ok(cache.bytes <= maxBytes + unwritten, `cache holds ${cache.bytes} > ${maxBytes} + ${unwritten} unwritten`);
    }
  }), { numRuns: 500 });
});

test('eviction keeps the newest written batches within the byte bound; batches waiting for their write stay', () => {
  const cache = new TailCache(1000);
  for (let i = 0; i < 10; i++) cache.append(i * 10, i * 10 + 9, batchBytes(300, i));
  assert.deepEqual([cache.bytes, cache.writtenBytes], [3000, 0], 'nothing written yet: all held (the write queue holds them anyway)');
  cache.written(50);
  assert.deepEqual([cache.bytes, cache.writtenBytes], [2400, 900]);
  assert.equal(cache.read(10, 10_000, 50), null, 'offset 10 was let go once written');
  cache.written(100);
  assert.deepEqual([cache.bytes, cache.writtenBytes], [900, 900]);
  assert.equal(cache.read(60, 10_000, 100), null, 'offset 60 was let go');
  const got = cache.read(75, 10_000, 100)!;
  assert.deepEqual([got.firstOffset, got.nextOffset, got.bytes.length], [70, 100, 900]);
  assert.deepEqual([got.bytes[0], got.bytes[899]], [7, 9]);
});

test('maxOffset and maxBytes bound the answer like a file read; a written batch larger than the cache is let go', () => {
  const cache = new TailCache(1000);
  cache.append(0, 4, batchBytes(100, 1));
  cache.append(5, 9, batchBytes(100, 2));
  cache.append(10, 14, batchBytes(100, 3));
  cache.written(15);
  assert.deepEqual(cache.read(7, 1, 15)!.bytes.length, 100, 'the first batch is always whole');
  assert.deepEqual([cache.read(0, 150, 15)!.nextOffset], [5], 'the second batch would pass maxBytes');
  const hidden = cache.read(10, 1000, 14)!;
  assert.deepEqual([hidden.bytes.length, hidden.firstOffset, hidden.nextOffset], [0, 10, 10], 'a batch reaching maxOffset is not served');
  assert.equal(cache.read(15, 1000, 15), null, 'past the end: the file answers');
  cache.append(15, 15, batchBytes(1001, 4));
  cache.written(16);
  assert.deepEqual([cache.size, cache.bytes], [0, 0]);
  assert.equal(cache.read(15, 1000, 16), null);
});

test('a truncation drops the batches from the new end; an append that does not continue the cache restarts it', () => {
  const cache = new TailCache(10_000);
  cache.append(0, 9, batchBytes(100, 1));
  cache.append(10, 19, batchBytes(100, 2));
  cache.truncateFrom(10);
  assert.equal(cache.read(10, 1000, 100), null);
  cache.append(10, 12, batchBytes(50, 3));
  assert.deepEqual(cache.read(10, 1000, 100)!.bytes[0], 3, 'the re-appended batch, not the truncated one');
  cache.append(100, 100, batchBytes(10, 4));
  assert.equal(cache.read(5, 1000, 200), null, 'the gap restarted the cache');
  assert.equal(cache.read(100, 1000, 200)!.bytes[0], 4);
});

test('a long run of appends and writes keeps the bound and the newest batches (the entry array is compacted as it goes)', () => {
  const cache = new TailCache(1000);
  for (let i = 0; i < 5000; i++) {
    cache.append(i, i, batchBytes(100, i));
    if (i % 3 === 2) cache.written(i + 1);
  }
  cache.written(5000);
  assert.deepEqual([cache.size, cache.bytes, cache.writtenBytes], [10, 1000, 1000]);
  assert.equal(cache.read(4989, 1, 5000), null);
  const got = cache.read(4990, 10_000, 5000)!;
  assert.deepEqual([got.firstOffset, got.nextOffset, got.bytes[0], got.bytes[999]], [4990, 5000, 4990 & 0xff, 4999 & 0xff]);
});
