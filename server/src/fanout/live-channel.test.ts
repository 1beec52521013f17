/**
 * LiveChannel: credit and room accounting against a naive per-subscriber
 * model (every subscriber's delivered bytes tracked one by one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LiveChannel } from './live-channel.ts';
import { MinHeap } from './min-heap.ts';

test('MinHeap pops in key order and supports re-key/delete', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: -1000, max: 1000 }))), (ops) => {
    const heap = new MinHeap<number>();
    const model = new Map<number, number>();
    for (const [item, key] of ops) {
      if (key % 7 === 0 && model.has(item)) {
        heap.delete(item);
        model.delete(item);
      } else {
        heap.set(item, key);
        model.set(item, key);
      }
    }
    const expected = [...model.values()].sort((a, b) => a - b);
    const got: number[] = [];
    while (heap.size > 0) {
      got.push(heap.peekKey());
      heap.pop();
    }
    assert.deepEqual(got, expected);
  }));
});

test('a live subscriber is evicted exactly when the next frame exceeds its credit', () => {
  const ch = new LiveChannel<string>(0);
  ch.join('a', 250, 1e9);
  ch.join('b', 1000, 1e9);
  assert.equal(ch.nextAction(100, 120), undefined);
  ch.published(100, 120, 10);
  ch.published(100, 120, 20); // a has 50 left
  const action = ch.nextAction(100, 120);
  assert.deepEqual(action, { kind: 'evictCredit', subscriber: 'a', remainingCredit: 50 });
  assert.equal(ch.nextAction(100, 120), undefined);
  ch.published(100, 120, 30);
  assert.equal(ch.has('a'), false);
  assert.equal(ch.remainingCredit('b'), 700);
  assert.equal(ch.addCredit('b', 300), true);
  assert.equal(ch.remainingCredit('b'), 1000);
  assert.equal(ch.addCredit('a', 300), false);
});

test('room runs out → measure, setRoom re-arms, leave returns credit', () => {
  const ch = new LiveChannel<string>(5);
  ch.join('a', 1e6, 300);
  ch.published(100, 150, 6);
  assert.deepEqual(ch.nextAction(100, 151), { kind: 'measure', subscriber: 'a' });
  ch.setRoom('a', 1000);
  assert.equal(ch.nextAction(100, 151), undefined);
  ch.published(100, 151, 7);
  assert.equal(ch.leave('a'), 1e6 - 200);
  assert.equal(ch.size, 0);
  ch.skipTo(9);
  assert.equal(ch.lastPublishedEnd, 9);
});

test('property: delivered payload never exceeds granted credit; eviction only when needed', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('join' as const), who: fc.integer({ min: 0, max: 9 }), credit: fc.integer({ min: 0, max: 5000 }) }),
    fc.record({ kind: fc.constant('credit' as const), who: fc.integer({ min: 0, max: 9 }), bytes: fc.integer({ min: 1, max: 3000 }) }),
    fc.record({ kind: fc.constant('publish' as const), bytes: fc.integer({ min: 1, max: 1500 }) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
    const ch = new LiveChannel<number>(0);
    const granted = new Map<number, number>();
    const delivered = new Map<number, number>();
    let end = 0;
    for (const o of ops) {
      if (o.kind === 'join') {
        if (ch.has(o.who)) continue;
        granted.set(o.who, o.credit);
        delivered.set(o.who, 0);
        ch.join(o.who, o.credit, 1e12);
      } else if (o.kind === 'credit') {
        if (ch.addCredit(o.who, o.bytes)) granted.set(o.who, (granted.get(o.who) ?? 0) + o.bytes);
      } else {
        for (let a = ch.nextAction(o.bytes, o.bytes); a; a = ch.nextAction(o.bytes, o.bytes)) {
          assert.equal(a.kind, 'evictCredit');
          const who = a.subscriber;
          const left = granted.get(who)! - delivered.get(who)!;
          assert.equal(a.kind === 'evictCredit' && a.remainingCredit, left);
          assert.ok(left < o.bytes, 'evicted only when the frame does not fit');
        }
        end += 1;
        for (const who of granted.keys()) {
          if (ch.has(who)) delivered.set(who, delivered.get(who)! + o.bytes);
        }
        ch.published(o.bytes, o.bytes, end);
      }
      for (const who of granted.keys()) {
        assert.ok(delivered.get(who)! <= granted.get(who)!, `subscriber ${who} over credit`);
        if (ch.has(who)) assert.equal(ch.remainingCredit(who), granted.get(who)! - delivered.get(who)!);
      }
    }
  }));
});
