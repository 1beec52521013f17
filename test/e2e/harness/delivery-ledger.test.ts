/**
 * The ledger checks the browser tests rely on must catch what they claim
 * to: a gap, a duplicate, reordering, a missing tail, offsets beyond the
 * high watermark; and exactlyOnceProblems a lost, doubled or foreign id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryLedger, exactlyOnceProblems } from './delivery-ledger.ts';

const ledger = (rows: [number, number][]): DeliveryLedger => {
  const l = new DeliveryLedger();
  l.record(rows.map(([partition, offset]) => ({ partition, offset })));
  return l;
};

test('exactly once, in order: no problems; reached() follows the high watermarks', () => {
  const l = ledger([[0, 0], [1, 0], [0, 1], [1, 1], [0, 2]]);
  assert.deepEqual(l.problems([3, 2]), []);
  assert.equal(l.reached([3, 2]), true);
  assert.equal(l.reached([4, 2]), false);
});

test('gap, duplicate, reorder, missing tail and overshoot are each reported', () => {
  assert.match(ledger([[0, 0], [0, 2]]).problems([3]).join(), /gap: expected 1, got 2/);
  assert.match(ledger([[0, 0], [0, 1], [0, 1]]).problems([2]).join(), /duplicate or out of order: offset 1/);
  assert.match(ledger([[0, 1], [0, 0]]).problems([2]).join(), /gap: expected 0, got 1.*duplicate or out of order: offset 0/);
  assert.match(ledger([[0, 0]]).problems([3]).join(), /missing offsets 1..2/);
  assert.match(ledger([[0, 0], [0, 1]]).problems([1]).join(), /beyond the high watermark 1/);
  assert.match(ledger([[2, 0]]).problems([1]).join(), /partition 2 does not exist/);
  assert.match(ledger([]).problems([0, 1]).join(), /partition 1: missing offsets 0..0/);
});

test('exactlyOnceProblems: lost, doubled and never-produced ids', () => {
  assert.deepEqual(exactlyOnceProblems(['a', 'b'], ['b', 'a']), []);
  assert.deepEqual(exactlyOnceProblems(['a', 'b', 'c'], ['a', 'a', 'c', 'z']), ['a: 2 times in the log', 'b: lost', 'z: in the log but never produced']);
});
