import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppendQueue } from './append-queue.ts';

test('absolute indexes stay valid across trims', () => {
  const q = new AppendQueue<number>();
  for (let i = 0; i < 5000; i++) q.push(i);
  q.trimBefore(3000);
  assert.equal(q.start, 3000);
  assert.equal(q.at(4999), 4999);
  assert.throws(() => q.at(10), RangeError);
  q.trimBefore(5000);
  assert.equal(q.end, 5000);
  q.push(5000);
  assert.equal(q.at(5000), 5000);
});
