/**
 * What the controller changes in partition leadership (pure: no IO, no
 * timers, no clock; the driver is controller.ts). Input: the live brokers
 * (with the time each became live), every partition's leadership, `nowMs`.
 * Output: compare-and-swap writes, each against the leadership it was
 * decided from, and when to look again.
 *
 * Rules (docs/cluster.md "Controller"; Kafka's offline and preferred
 * replica elections):
 * - leader not live → the first replica, in `replicas` order, that is live
 *   AND in the ISR; `leaderEpoch + 1`; ISR = old ISR ∩ live brokers (the
 *   dead leader and any other dead member leave it, as in Kafka's offline
 *   election, so the new leader's high watermark does not wait on them).
 * - no live ISR member → `leader: -1` (offline), `leaderEpoch + 1` (fences
 *   the old leader should it still run, cut off), ISR unchanged: its
 *   members hold every acknowledged record, so one of them must lead next.
 *   Invariant: never an unclean election (a leader outside the ISR).
 * - offline partition → the first replica that is live and in the ISR
 *   (ISR ∩ live, as above).
 * - preferred leader (`replicas[0]`) live for `preferredLeaderDelayMs`, in
 *   the ISR, not leading, and the leader live → move leadership back
 *   (`leaderEpoch + 1`, ISR unchanged).
 *
 * Invariants of every write: the new leader is -1 or in the old ISR and
 * live; the new ISR ⊆ old ISR, non-empty, and holds the new leader;
 * `leaderEpoch` strictly increases; `replicas` never change.
 */
import type { PartitionLeadership, VersionedLeadership } from './cluster-state.ts';

export interface ControllerInput {
  nowMs: number;
  /** Live broker id → when the controller first saw its current registration (ms). */
  liveSinceMs: ReadonlyMap<number, number>;
  leaderships: readonly VersionedLeadership[];
  preferredLeaderDelayMs: number;
}

export type ElectionReason = 'leader-down' | 'offline' | 'back-online' | 'preferred-leader' | 'isr-fenced';

export interface LeadershipWrite {
  /** Compare-and-swap against this (its `revision`); if the key moved on, re-read and decide again. */
  expected: VersionedLeadership;
  next: PartitionLeadership;
  reason: ElectionReason;
}

export interface ControllerDecisions {
  /** Independent writes, one per partition, in input order. */
  writes: LeadershipWrite[];
  /** Decide again at this time even if nothing changes (a preferred leader's delay ends); undefined: only on change. */
  wakeAtMs: number | undefined;
}

export interface PartitionDecision {
  write?: LeadershipWrite;
  wakeAtMs?: number;
}

/** One partition. */
export function decidePartition(l: VersionedLeadership, input: Omit<ControllerInput, 'leaderships'>): PartitionDecision {
  const isLive = (id: number) => input.liveSinceMs.has(id);
  const leaderLive = l.leader >= 0 && isLive(l.leader);
  if (!leaderLive) {
    const candidate = l.replicas.find((id) => l.isr.includes(id) && isLive(id));
    if (candidate === undefined) {
      if (l.leader === -1) return {}; // already offline: wait for an ISR member to come back
      return { write: { expected: l, next: { leader: -1, leaderEpoch: l.leaderEpoch + 1, isr: [...l.isr], replicas: [...l.replicas] }, reason: 'offline' } };
    }
    const isr = l.isr.filter(isLive);
    return {
      write: { expected: l, next: { leader: candidate, leaderEpoch: l.leaderEpoch + 1, isr, replicas: [...l.replicas] }, reason: l.leader === -1 ? 'back-online' : 'leader-down' },
    };
  }
  // A follower that is not live (lease gone: SIGKILLed, or reported down by the probe) leaves the ISR now, not after the
  // leader's replicaLagTimeMs: acks=all stops waiting for it at once (Kafka's KIP-841). Same epoch: the leader stays; it
  // re-adds the follower when it has caught up again. Safe: a smaller ISR only narrows who may be elected.
  const liveIsr = l.isr.filter(isLive);
  if (liveIsr.length < l.isr.length) {
    return { write: { expected: l, next: { leader: l.leader, leaderEpoch: l.leaderEpoch, isr: liveIsr, replicas: [...l.replicas] }, reason: 'isr-fenced' } };
  }
  const preferred = l.replicas[0];
  if (preferred === l.leader || !l.isr.includes(preferred)) return {};
  const since = input.liveSinceMs.get(preferred);
  if (since === undefined) return {};
  const dueAtMs = since + input.preferredLeaderDelayMs;
  if (input.nowMs < dueAtMs) return { wakeAtMs: dueAtMs };
  return { write: { expected: l, next: { leader: preferred, leaderEpoch: l.leaderEpoch + 1, isr: [...l.isr], replicas: [...l.replicas] }, reason: 'preferred-leader' } };
}

/** Every partition. */
export function decideLeadership(input: ControllerInput): ControllerDecisions {
  const writes: LeadershipWrite[] = [];
  let wakeAtMs: number | undefined;
  for (const l of input.leaderships) {
    const decision = decidePartition(l, input);
    if (decision.write) writes.push(decision.write);
    if (decision.wakeAtMs !== undefined) wakeAtMs = wakeAtMs === undefined ? decision.wakeAtMs : Math.min(wakeAtMs, decision.wakeAtMs);
  }
  return { writes, wakeAtMs };
}
