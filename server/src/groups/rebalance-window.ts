/**
 * When a group's assignment push runs (sans-IO; time comes in as `nowMs`):
 * leading and trailing edge. A membership change with no push in the last
 * `delayMs` (groupRebalanceDelayMs) is pushed at once, so an isolated join
 * or leave costs no delay. A change within `delayMs` of a push opens a
 * window instead: each change inside it moves the push to `nowMs + delayMs`,
 * but never past `openedMs + maxDelayMs` (groupRebalanceMaxDelayMs), and all
 * of them share one push. Kafka's group.initial.rebalance.delay.ms delays a
 * group's first rebalance the same way.
 *
 * Invariant: an armed window's `dueMs` never moves earlier and never passes
 * `openedMs + maxDelayMs` (for `maxDelayMs >= delayMs`, checked by
 * validateLimits), so every change is pushed within `maxDelayMs`; and two
 * pushes of a group are at least `delayMs` apart, so a burst of N changes
 * costs at most one push per member per `delayMs`, not one per change.
 */

export interface PushWindow {
  /** The change that opened the window. */
  readonly openedMs: number;
  /** When the push runs: the driver (re)arms its timer to fire at this time. */
  readonly dueMs: number;
}

export interface PushState {
  /** When the group's last push ran; undefined = never. */
  lastPushMs?: number;
  /** The armed window, if any. */
  pending?: PushWindow;
}

export type PushDecision =
  /** Push now (and record `nowMs` as the last push). */
  | { kind: 'pushNow' }
  /** (Re)arm the group's timer to push at `window.dueMs`. */
  | { kind: 'arm'; window: PushWindow }
  /** The armed timer already covers this change. */
  | { kind: 'keep' };

/** What one more membership change at `nowMs` means for the group's push. */
export function decidePush(state: PushState, nowMs: number, delayMs: number, maxDelayMs: number): PushDecision {
  const { pending, lastPushMs } = state;
  if (pending) {
    const dueMs = Math.max(pending.dueMs, Math.min(nowMs + delayMs, pending.openedMs + maxDelayMs));
    return dueMs === pending.dueMs ? { kind: 'keep' } : { kind: 'arm', window: { openedMs: pending.openedMs, dueMs } };
  }
  if (lastPushMs === undefined || nowMs - lastPushMs >= delayMs) return { kind: 'pushNow' };
  return { kind: 'arm', window: { openedMs: nowMs, dueMs: nowMs + delayMs } };
}
