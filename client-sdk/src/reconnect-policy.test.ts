import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReconnectPolicy, backoffDelayMs, seededRandom, type ReconnectOptions } from './reconnect-policy.ts';

const options: ReconnectOptions = { initialDelayMs: 100, maxDelayMs: 5_000, multiplier: 2 };

test('backoff ceiling table (random = 0.999…)', () => {
  const max = () => 0.999999;
  const table: [attempt: number, retryAfterMs: number, expected: number][] = [
    [0, 0, 99], [1, 0, 199], [2, 0, 399], [5, 0, 3199], [6, 0, 4999], [30, 0, 4999], [1000, 0, 4999],
    [0, 2_000, 2_000], // broker hint is a floor
    [0, 60_000, 5_000], // hint capped by maxDelayMs
  ];
  for (const [attempt, hint, expected] of table) {
    assert.equal(backoffDelayMs(attempt, options, max, hint), expected, `attempt ${attempt} hint ${hint}`);
  }
});

test('full jitter: random = 0 gives 0 unless the broker hints', () => {
  assert.equal(backoffDelayMs(7, options, () => 0), 0);
  assert.equal(backoffDelayMs(7, options, () => 0, 250), 250);
});

test('seeded jitter is reproducible and stays under the ceiling', () => {
  const a = seededRandom(42), b = seededRandom(42);
  for (let i = 0; i < 100; i++) {
    const da = backoffDelayMs(i % 8, options, a), db = backoffDelayMs(i % 8, options, b);
    assert.equal(da, db);
    assert.ok(da >= 0 && da < Math.min(5_000, 100 * 2 ** (i % 8)));
  }
});

test('policy rotates URLs, grows per round, resets on connect', () => {
  const p = new ReconnectPolicy(3, options, () => 0.999999);
  assert.equal(p.currentUrlIndex, 0);
  const steps = [p.failed(), p.failed(), p.failed(), p.failed()];
  assert.deepEqual(steps.map((s) => s.urlIndex), [1, 2, 0, 1]);
  assert.deepEqual(steps.map((s) => s.delayMs), [99, 99, 99, 199]);
  p.connected();
  assert.equal(p.failed().delayMs, 99);
});
