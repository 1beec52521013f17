import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TokenBucket } from './token-bucket.ts';

test('starts full, takes, refuses with the wait, refills at the rate', () => {
  const b = new TokenBucket({ perSecond: 100, burst: 50 }, 0);
  assert.equal(b.tokensAt(0), 50);
  assert.equal(b.tryTake(30, 0), 0);
  assert.equal(b.tryTake(30, 0), 100, '10 missing at 100/s = 100 ms');
  assert.equal(b.tokensAt(0), 20, 'a refusal takes nothing');
  assert.equal(b.tryTake(30, 99), 1);
  assert.equal(b.tryTake(30, 100), 0);
  assert.equal(b.tokensAt(100_000), 50, 'never more than the burst');
});

test('a cost above the burst passes only from a full bucket and leaves a debt', () => {
  const b = new TokenBucket({ perSecond: 1000, burst: 100 }, 0);
  assert.equal(b.tryTake(250, 0), 0);
  assert.equal(b.tokensAt(0), -150);
  assert.equal(b.waitMs(1, 0), 151);
  assert.equal(b.waitMs(250, 0), 250, 'the next large one waits until full');
  assert.equal(b.tryTake(250, 249), 1);
  assert.equal(b.tryTake(250, 250), 0);
});

test('charge debits unconditionally; a clock stepping back refills nothing', () => {
  const b = new TokenBucket({ perSecond: 10, burst: 10 }, 1000);
  b.charge(25, 1000);
  assert.equal(b.tokensAt(1000), -15);
  assert.equal(b.tokensAt(500), -15);
  assert.equal(b.tokensAt(2000), -5);
  assert.equal(b.isFullAt(2000), false);
  assert.equal(b.isFullAt(3500), true);
});

test('fractional clocks (performance.now()) gain only whole milliseconds, exactly', () => {
  const b = new TokenBucket({ perSecond: 1000, burst: 1000 }, 0.25);
  b.charge(1000, 0.25);
  assert.equal(b.tokensAt(0.75), 0);
  assert.equal(b.tokensAt(1.3), 1);
  assert.equal(b.tokensAt(10.2), 9);
});

test('misuse is an assertion', () => {
  assert.throws(() => new TokenBucket({ perSecond: 0, burst: 1 }, 0), /perSecond/);
  assert.throws(() => new TokenBucket({ perSecond: 1, burst: 0.5 }, 0), /burst/);
  assert.throws(() => new TokenBucket({ perSecond: 1, burst: 1 }, 0).tryTake(-1, 0), /cost/);
});

const rate = fc.record({ perSecond: fc.integer({ min: 1, max: 5000 }), burst: fc.integer({ min: 1, max: 5000 }) });
const steps = fc.array(fc.record({ gapMs: fc.nat(300), cost: fc.nat(6000) }), { minLength: 1, maxLength: 200 });

test('property: over any window admitted costs ≤ max(burst, largest cost) + rate × window', () => {
  fc.assert(fc.property(rate, steps, (r, s) => {
    const b = new TokenBucket(r, 0);
    let now = 0;
    const admitted: { at: number; cost: number }[] = [];
    for (const { gapMs, cost } of s) {
      now += gapMs;
      if (b.tryTake(cost, now) === 0) admitted.push({ at: now, cost });
    }
    for (let i = 0; i < admitted.length; i++) {
      let sum = 0;
      let largest = 0;
      for (let j = i; j < admitted.length; j++) {
        sum += admitted[j].cost;
        largest = Math.max(largest, admitted[j].cost);
        const bound = Math.max(r.burst, largest) + (r.perSecond * (admitted[j].at - admitted[i].at)) / 1000;
        assert.ok(sum <= bound, `window ${admitted[i].at}..${admitted[j].at}: ${sum} > ${bound}`);
      }
    }
  }));
});

test('property: with costs within the burst the classic bound holds: ≤ burst + rate × window', () => {
  fc.assert(fc.property(rate, steps, (r, s) => {
    const b = new TokenBucket(r, 0);
    let now = 0;
    const admitted: { at: number; cost: number }[] = [];
    for (const { gapMs, cost } of s) {
      now += gapMs;
      const c = cost % (r.burst + 1);
      if (b.tryTake(c, now) === 0) admitted.push({ at: now, cost: c });
    }
    for (let i = 0; i < admitted.length; i++) {
      let sum = 0;
      for (let j = i; j < admitted.length; j++) {
        sum += admitted[j].cost;
        assert.ok(sum <= r.burst + (r.perSecond * (admitted[j].at - admitted[i].at)) / 1000);
      }
    }
  }));
});

test('property: the throttle hint is exact: refused now, admitted after retryAfterMs, not 1 ms earlier', () => {
  fc.assert(fc.property(rate, steps, fc.nat(6000), (r, s, cost) => {
    const b = new TokenBucket(r, 0);
    let now = 0;
    for (const { gapMs, cost: c } of s) {
      now += gapMs;
      b.tryTake(c, now);
    }
    const waitMs = b.waitMs(cost, now);
    if (waitMs === 0) return;
    const probe = new TokenBucket(r, 0);
    let t = 0;
    for (const { gapMs, cost: c } of s) {
      t += gapMs;
      probe.tryTake(c, t);
    }
    assert.ok(probe.waitMs(cost, now + waitMs - 1) > 0, 'not earlier');
    assert.equal(b.tryTake(cost, now + waitMs), 0, 'admitted at the hint');
  }));
});

test('debtMs: 0 unless in debt, then the whole milliseconds until tokens are back at zero', () => {
  const b = new TokenBucket({ perSecond: 300, burst: 100 }, 0);
  assert.equal(b.debtMs(0), 0);
  b.charge(100, 0);
  assert.equal(b.debtMs(0), 0, 'at zero is not in debt');
  b.charge(100, 0);
  assert.equal(b.debtMs(0), 334, '100 tokens at 0.3 per ms, rounded up');
  assert.equal(b.debtMs(333), 1);
  assert.equal(b.debtMs(334), 0);
});
