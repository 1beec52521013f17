import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAST_RETRY_MAX_DELAY_MS, FAST_RETRY_WINDOW_MS, ReconnectPolicy, STABLE_SESSION_MS, backoffDelayMs, seededRandom, type ReconnectOptions } from './reconnect-policy.ts';

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

test('policy rotates URLs on failed dials, grows per round of the list', () => {
  const p = new ReconnectPolicy(3, options, () => 0.999999);
  assert.equal(p.currentUrlIndex, 0);
  const steps = [p.failed(), p.failed(), p.failed(), p.failed()];
  assert.deepEqual(steps.map((s) => s.urlIndex), [1, 2, 0, 1]);
  assert.deepEqual(steps.map((s) => s.delayMs), [99, 99, 99, 199]);
});

test('a lost session dials the next URL at once; a failure after it backs off; a stable session resets the count', () => {
  const p = new ReconnectPolicy(3, options, () => 0.999999);
  for (let i = 0; i < 9; i++) p.failed(); // three rounds of failures: ceiling 800
  p.connected(10_000);
  assert.deepEqual(p.lost(10_000 + STABLE_SESSION_MS), { delayMs: 0, urlIndex: 1, attempt: 0 });
  assert.deepEqual([p.failed(), p.failed(), p.failed()].map((s) => [s.urlIndex, s.delayMs]), [[2, 99], [0, 99], [1, 199]]);
});

test('a session shorter than STABLE_SESSION_MS counts as a failure: no redial loop against a broker that closes at once', () => {
  const p = new ReconnectPolicy(2, options, () => 0.999999);
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    p.connected(i * 100);
    delays.push(p.lost(i * 100 + 10).delayMs);
  }
  assert.deepEqual(delays, [0, 99, 199, 199, 399, 399]);
});

test('one URL: a lost session backs off (round 0) and honours the broker hint; several URLs: the hint does not hold up another broker', () => {
  const one = new ReconnectPolicy(1, options, () => 0.999999);
  one.connected(0);
  assert.deepEqual(one.lost(STABLE_SESSION_MS, 2_000), { delayMs: 2_000, urlIndex: 0, attempt: 0 });
  assert.equal(one.failed(3_000).delayMs, 3_000);
  const two = new ReconnectPolicy(2, options, () => 0.999999);
  two.connected(0);
  assert.equal(two.lost(STABLE_SESSION_MS, 2_000).delayMs, 0);
  assert.equal(two.failed(2_000).delayMs, 99);
});

test('after a stable session drops, failures within FAST_RETRY_WINDOW_MS stay under FAST_RETRY_MAX_DELAY_MS; then the plain backoff', () => {
  const p = new ReconnectPolicy(1, options, () => 0.999999);
  p.connected(0);
  const lostAt = STABLE_SESSION_MS;
  assert.equal(p.lost(lostAt).delayMs, 99);
  const fast = [1, 2, 3, 4, 5, 6, 7].map((i) => p.failed(0, lostAt + i * 400).delayMs);
  assert.deepEqual(fast, [199, 399, FAST_RETRY_MAX_DELAY_MS - 1, FAST_RETRY_MAX_DELAY_MS - 1, FAST_RETRY_MAX_DELAY_MS - 1, FAST_RETRY_MAX_DELAY_MS - 1, FAST_RETRY_MAX_DELAY_MS - 1]);
  assert.equal(p.failed(0, lostAt + FAST_RETRY_WINDOW_MS).delayMs, 4_999, 'window over: the ceiling of the attempt count');
  assert.equal(p.failed(0).delayMs, 4_999, 'no time given: no window');
});

test('the fast window keeps the broker hint as a floor; a short session opens no window; hurry() opens one and resets the count', () => {
  const hinted = new ReconnectPolicy(1, options, () => 0.999999);
  hinted.connected(0);
  hinted.lost(STABLE_SESSION_MS);
  assert.equal(hinted.failed(2_000, STABLE_SESSION_MS + 1).delayMs, 2_000);
  const short = new ReconnectPolicy(1, options, () => 0.999999);
  for (let i = 0; i < 8; i++) { short.connected(i * 100); short.lost(i * 100 + 10); }
  assert.equal(short.failed(0, 900).delayMs, 4_999, 'a broker that keeps closing short sessions is backed off from');
  short.hurry(1_000);
  assert.deepEqual([short.failed(0, 1_001), short.failed(0, 1_002), short.failed(0, 1_003)].map((s) => s.delayMs), [99, 199, 399]);
  assert.equal(short.failed(0, 1_004).delayMs, FAST_RETRY_MAX_DELAY_MS - 1);
});
