import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultLimits, validateLimits } from './limits.ts';

test('defaults pass validateLimits', () => {
  assert.deepEqual(validateLimits({}), defaultLimits);
});

test('validateLimits names every combination that cannot work', () => {
  assert.throws(() => validateLimits({ maxBatchBytes: 2 * 1024 * 1024, maxPendingProduceBytes: 1024 * 1024 }), (e: Error) => {
    assert.match(e.message, /maxFrameBytes \(\d+\) must be >= maxBatchBytes/);
    assert.match(e.message, /maxPendingProduceBytes \(1048576\) must be >= maxBatchBytes \(2097152\)/);
    return true;
  });
  assert.throws(() => validateLimits({ maxBackpressureBytes: 64 * 1024 }), /maxBackpressureBytes \(65536\) must be >= maxFrameBytes/);
  assert.throws(() => validateLimits({ maxConnections: 0 }), /maxConnections/);
});
