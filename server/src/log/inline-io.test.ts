import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InlineIoGovernor } from './inline-io.ts';

/** Runs `n` calls of `durationMs` each, `gapMs` apart from `t`; returns how many ran inline and the end time. */
function run(g: InlineIoGovernor, t: number, n: number, durationMs: number, gapMs = 1): { inline: number; t: number } {
  let inline = 0;
  for (let i = 0; i < n; i++, t += gapMs) {
    if (!g.shouldInline(t)) continue;
    inline++;
    g.observe(durationMs, t);
  }
  return { inline, t };
}

test('a fast disk stays inline, and one slow call among fast ones does not leave it', () => {
  const g = new InlineIoGovernor(0.25);
  let r = run(g, 0, 1000, 0.04);
  assert.equal(r.inline, 1000);
  r = run(g, r.t, 1, 5);
  assert.equal(g.isInline, true, `mean ${g.meanMs}`);
  assert.equal(run(g, r.t, 100, 0.04).inline, 100);
});

test('a disk that turns slow goes to the thread pool within a few calls, probing inline once per interval', () => {
  const g = new InlineIoGovernor(0.25, 1000);
  let r = run(g, 0, 100, 0.04);
  r = run(g, r.t, 20, 2);
  assert.equal(g.isInline, false);
  // 10 s of calls every ms on the slow disk: about one inline probe per second.
  const slow = run(g, r.t, 10_000, 2);
  assert.ok(slow.inline >= 9 && slow.inline <= 11, `${slow.inline} probes`);
  assert.equal(g.isInline, false);
  // The disk is fast again: the next probe brings the calls back.
  const back = run(g, slow.t, 2000, 0.04);
  assert.equal(g.isInline, true);
  assert.ok(back.inline > 900, `${back.inline} inline`);
});

test('maxMs 0 never runs inline', () => {
  const g = new InlineIoGovernor(0);
  assert.equal(run(g, 0, 5000, 0.01).inline, 0);
  assert.equal(g.pooledCalls, 5000);
});

test('property: after every call, inline mode means a moving mean of at most maxMs; every call is counted once', () => {
  fc.assert(fc.property(fc.array(fc.double({ min: 0, max: 20, noNaN: true }), { minLength: 1, maxLength: 2000 }), (durations) => {
    const maxMs = 0.25;
    const g = new InlineIoGovernor(maxMs, 1000);
    let t = 0;
    for (const d of durations) {
      t += 1;
      if (!g.shouldInline(t)) continue;
      g.observe(d, t);
      assert.ok(!g.isInline || g.meanMs <= maxMs, `inline with mean ${g.meanMs}`);
    }
    assert.equal(g.inlineCalls + g.pooledCalls, durations.length);
  }));
});

test('a disk near the limit leaves inline mode at most once per probe interval', () => {
  const g = new InlineIoGovernor(0.25, 1000);
  let leaves = 0;
  let t = 0;
  for (let i = 0; i < 20_000; i++, t += 0.5) {
    const wasInline = g.isInline;
    if (g.shouldInline(t)) g.observe(i % 3 === 0 ? 0.15 : 0.32, t);
    if (wasInline && !g.isInline) leaves++;
  }
  // 10 s of calls every 0.5 ms, mean ~0.26 ms: it leaves, comes back at a fast probe, leaves again, never faster than per interval.
  assert.ok(leaves >= 1 && leaves <= 11, `${leaves} times`);
});
