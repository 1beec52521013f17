import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { overPausedBudget } from './paused-budget.ts';

test('under or at the budget nothing is closed', () => {
  assert.deepEqual(overPausedBudget([{ socket: 'a', bufferedBytes: 60 }, { socket: 'b', bufferedBytes: 40 }], 100), []);
  assert.deepEqual(overPausedBudget([], 0), []);
});

test('over the budget the most-buffered sockets go first, only as many as needed', () => {
  const paused = [{ socket: 'a', bufferedBytes: 30 }, { socket: 'b', bufferedBytes: 80 }, { socket: 'c', bufferedBytes: 50 }];
  assert.deepEqual(overPausedBudget(paused, 100), ['b']);
  assert.deepEqual(overPausedBudget(paused, 40), ['b', 'c']);
  assert.deepEqual(overPausedBudget(paused, 0), ['b', 'c', 'a']);
});

test('property: the survivors fit the budget, and keeping any closed socket would not', () => {
  fc.assert(fc.property(fc.array(fc.nat(10_000), { maxLength: 40 }), fc.nat(100_000), (sizes, budget) => {
    const paused = sizes.map((bufferedBytes, socket) => ({ socket, bufferedBytes }));
    const closed = new Set(overPausedBudget(paused, budget));
    const kept = paused.filter((p) => !closed.has(p.socket)).reduce((n, p) => n + p.bufferedBytes, 0);
    assert.ok(kept <= budget);
    const smallestClosed = Math.min(...paused.filter((p) => closed.has(p.socket)).map((p) => p.bufferedBytes));
    if (closed.size > 0) assert.ok(kept + smallestClosed > budget, 'closed no more than needed');
  }));
});
