import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OffsetTracker } from './offset-tracker.ts';

test('accepts each offset once, in order, for any interleaving of redeliveries', () => {
  // A delivery is a contiguous run [start, start+len) where start is at or
  // below what was delivered so far (a redelivery or a continuation).
  const runs = fc.array(fc.record({ back: fc.nat(20), len: fc.integer({ min: 0, max: 30 }), partition: fc.integer({ min: 0, max: 2 }) }), { maxLength: 60 });
  fc.assert(fc.property(runs, fc.nat(5), (deliveries, start) => {
    const tracker = new OffsetTracker();
    const delivered = new Map<number, number[]>();
    const frontier = new Map<number, number>();
    for (let p = 0; p < 3; p++) {
      tracker.seek(p, start);
      delivered.set(p, []);
      frontier.set(p, start);
    }
    for (const { back, len, partition } of deliveries) {
      const from = Math.max(0, frontier.get(partition)! - back);
      for (let o = from; o < from + len; o++) {
        if (tracker.accept(partition, o)) {
          delivered.get(partition)!.push(o);
          tracker.markHandled(partition, o);
        }
      }
      frontier.set(partition, Math.max(frontier.get(partition)!, from + len));
    }
    for (let p = 0; p < 3; p++) {
      const got = delivered.get(p)!;
      const expected = Array.from({ length: frontier.get(p)! - start }, (_, i) => start + i);
      assert.deepEqual(got, expected);
      assert.equal(tracker.handledOffset(p), frontier.get(p));
    }
  }));
});

test('takeCommit returns only changed partitions, then nothing', () => {
  const t = new OffsetTracker();
  t.seek(0, 10);
  t.seek(1, 0);
  assert.equal(t.takeCommit(), null);
  assert.equal(t.accept(0, 9), false);
  assert.equal(t.accept(0, 10), true);
  t.markHandled(0, 10);
  assert.deepEqual([...t.takeCommit()!], [[0, 11]]);
  assert.equal(t.takeCommit(), null);
  assert.equal(t.isBehind(0, 10), true);
  assert.equal(t.isBehind(0, 11), false);
});

test('an unknown partition accepts nothing', () => {
  const t = new OffsetTracker();
  assert.equal(t.accept(3, 0), false);
});

test('advance moves the position up to a frame end once, never back, and marks no commit; an unknown partition stays unknown', () => {
  const t = new OffsetTracker();
  t.seek(0, 5);
  t.advance(0, 12);
  assert.equal(t.position(0), 12);
  assert.equal(t.accept(0, 11), false, 'offsets below the advanced position are not handed out again');
  t.advance(0, 8);
  assert.equal(t.position(0), 12);
  assert.equal(t.takeCommit(), null, 'advancing is not handling');
  t.advance(1, 3);
  assert.equal(t.position(1), undefined);
});
