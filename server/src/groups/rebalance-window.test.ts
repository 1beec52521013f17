import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decidePush, type PushDecision, type PushState } from './rebalance-window.ts';

test('push decisions: an isolated change pushes at once; changes soon after a push share one window, up to the cap', () => {
  const cases: [string, PushState, number, PushDecision][] = [
    ['first change of a group', {}, 1000, { kind: 'pushNow' }],
    ['long after the last push', { lastPushMs: 500 }, 1000, { kind: 'pushNow' }],
    ['exactly delayMs after the last push', { lastPushMs: 900 }, 1000, { kind: 'pushNow' }],
    ['soon after a push: a window opens', { lastPushMs: 950 }, 1000, { kind: 'arm', window: { openedMs: 1000, dueMs: 1100 } }],
    ['a change inside the window moves the push', { pending: { openedMs: 1000, dueMs: 1100 } }, 1050, { kind: 'arm', window: { openedMs: 1000, dueMs: 1150 } }],
    ['the push never passes openedMs + max', { pending: { openedMs: 1000, dueMs: 1950 } }, 1990, { kind: 'arm', window: { openedMs: 1000, dueMs: 2000 } }],
    ['at the cap the armed timer stays', { pending: { openedMs: 1000, dueMs: 2000 } }, 1999, { kind: 'keep' }],
  ];
  for (const [name, state, nowMs, expected] of cases) assert.deepEqual(decidePush(state, nowMs, 100, 1000), expected, name);
});

test('push decisions, simulated: every change is pushed within maxDelayMs; pushes at least delayMs apart', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 2000 }), fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 80 }),
    (delayMs, extraMs, gaps) => {
      const maxDelayMs = delayMs + extraMs;
      const state: PushState = {};
      let nowMs = 0;
      const pushes: number[] = [];
      const runDue = (untilMs: number) => {
        if (state.pending && state.pending.dueMs <= untilMs) {
          pushes.push(state.pending.dueMs);
          state.lastPushMs = state.pending.dueMs;
          state.pending = undefined;
        }
      };
      for (const gap of gaps) {
        nowMs += gap;
        runDue(nowMs);
        const d = decidePush(state, nowMs, delayMs, maxDelayMs);
        if (d.kind === 'pushNow') {
          pushes.push(nowMs);
          state.lastPushMs = nowMs;
        } else if (d.kind === 'arm') {
          if (state.pending) assert.ok(d.window.dueMs >= state.pending.dueMs, 'dueMs never moves earlier');
          assert.ok(d.window.dueMs <= d.window.openedMs + maxDelayMs, 'never past the cap');
          assert.ok(d.window.dueMs >= nowMs);
          state.pending = d.window;
        }
        const pushedBy = state.pending ? state.pending.dueMs : nowMs;
        assert.ok(pushedBy - nowMs <= maxDelayMs, 'this change is pushed within maxDelayMs');
      }
      runDue(Number.POSITIVE_INFINITY);
      assert.ok(pushes.length <= gaps.length);
      for (let i = 1; i < pushes.length; i++) assert.ok(pushes[i] - pushes[i - 1] >= delayMs, 'pushes at least delayMs apart');
    },
  ));
});
