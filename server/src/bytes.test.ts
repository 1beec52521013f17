import assert from 'node:assert/strict';
import { test } from 'node:test';
import { concatBytes } from './bytes.ts';

test('concatBytes: one part is returned as it is (no copy); several are copied in order into one buffer, counted or given their total', () => {
  const a = new Uint8Array([1, 2, 3]);
  assert.equal(concatBytes([a]), a, 'the same view');
  const b = new Uint8Array([9, 8, 7, 6]).subarray(1, 3);
  assert.deepEqual([...concatBytes([a, b])], [1, 2, 3, 8, 7]);
  assert.deepEqual([...concatBytes([a, b, a], 8)], [1, 2, 3, 8, 7, 1, 2, 3]);
  assert.equal(concatBytes([]).byteLength, 0);
  assert.equal(concatBytes([new Uint8Array(0), new Uint8Array(0)]).byteLength, 0);
});
