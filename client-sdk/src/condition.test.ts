import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Condition } from './condition.ts';

const settledSoon = async <T>(p: Promise<T>): Promise<boolean> => {
  let settled = false;
  void p.then(() => { settled = true; });
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  return settled;
};

test('until() resolves at once when the predicate holds, else at the notify() that makes it hold', async () => {
  const c = new Condition();
  let level = 0;
  assert.equal(await settledSoon(c.until(() => level === 0)), true);
  const atTwo = c.until(() => level >= 2);
  const atOne = c.until(() => level >= 1);
  level = 1;
  assert.equal(await settledSoon(atTwo), false, 'state changes are not seen until notify()');
  c.notify();
  assert.equal(await settledSoon(atOne), true);
  assert.equal(await settledSoon(atTwo), false, 'a waiter whose predicate is false keeps waiting');
  level = 2;
  c.notify();
  assert.equal(await settledSoon(atTwo), true);
  let checks = 0;
  const counted = c.until(() => (checks++, true));
  await counted;
  c.notify();
  c.notify();
  assert.equal(checks, 1, 'a resolved waiter is dropped: its predicate is not run again');
});
