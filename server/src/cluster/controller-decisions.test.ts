import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { VersionedLeadership } from './cluster-state.ts';
import { decideLeadership, decidePartition, type ElectionReason } from './controller-decisions.ts';

const l = (leader: number, isr: number[], replicas = [1, 2, 3], leaderEpoch = 4): VersionedLeadership => ({
  topicId: 't', partition: 0, revision: '10', leader, leaderEpoch, isr, replicas,
});

const live = (...entries: [number, number][]) => new Map(entries);
const since0 = (...ids: number[]) => live(...ids.map((id): [number, number] => [id, 0]));
const DELAY = 1000;

interface Row {
  name: string;
  leadership: VersionedLeadership;
  live: Map<number, number>;
  nowMs?: number;
  expect: { leader: number; isr: number[]; reason: ElectionReason } | 'none' | { wakeAtMs: number };
}

const rows: Row[] = [
  { name: 'leader live, preferred leading: nothing', leadership: l(1, [1, 2, 3]), live: since0(1, 2, 3), expect: 'none' },
  { name: 'leader down: next replica in preferred order from the ISR; ISR minus the dead', leadership: l(1, [1, 2, 3]), live: since0(2, 3), expect: { leader: 2, isr: [2, 3], reason: 'leader-down' } },
  { name: 'leader down: replicas order, not ISR order', leadership: l(1, [3, 2, 1], [1, 3, 2]), live: since0(2, 3), expect: { leader: 3, isr: [3, 2], reason: 'leader-down' } },
  { name: 'leader down: a live replica outside the ISR is never elected', leadership: l(1, [1, 3]), live: since0(2, 3), expect: { leader: 3, isr: [3], reason: 'leader-down' } },
  { name: 'leader down: dead ISR members leave the ISR too', leadership: l(1, [1, 2, 3]), live: since0(3), expect: { leader: 3, isr: [3], reason: 'leader-down' } },
  { name: 'leader down, no live ISR member: offline, ISR kept (no unclean election)', leadership: l(1, [1, 2]), live: since0(3), expect: { leader: -1, isr: [1, 2], reason: 'offline' } },
  { name: 'offline stays offline while no ISR member is live', leadership: l(-1, [1, 2]), live: since0(3), expect: 'none' },
  { name: 'offline: an ISR member returns and leads', leadership: l(-1, [1, 2]), live: since0(2, 3), expect: { leader: 2, isr: [2], reason: 'back-online' } },
  { name: 'offline: first returning ISR member in replicas order', leadership: l(-1, [1, 2, 3]), live: since0(3, 1), expect: { leader: 1, isr: [1, 3], reason: 'back-online' } },
  { name: 'preferred live long enough, in ISR: moves back, ISR unchanged', leadership: l(2, [2, 3, 1]), live: live([1, 0], [2, 0], [3, 0]), nowMs: DELAY, expect: { leader: 1, isr: [2, 3, 1], reason: 'preferred-leader' } },
  { name: 'preferred live but not long enough: wake when the delay ends', leadership: l(2, [2, 3, 1]), live: live([1, 500], [2, 0], [3, 0]), nowMs: 900, expect: { wakeAtMs: 1500 } },
  { name: 'preferred live but outside the ISR: nothing (it must catch up first)', leadership: l(2, [2, 3]), live: since0(1, 2, 3), nowMs: 10 * DELAY, expect: 'none' },
  { name: 'preferred not live: nothing', leadership: l(2, [2, 3]), live: since0(2, 3), nowMs: 10 * DELAY, expect: 'none' },
  { name: 'a follower not live leaves the ISR at once, same leader and epoch (KIP-841)', leadership: l(2, [2, 3, 1]), live: since0(2, 3), expect: { leader: 2, isr: [2, 3], reason: 'isr-fenced' } },
  { name: 'empty ISR offline partition: nothing to elect', leadership: l(-1, []), live: since0(1, 2, 3), expect: 'none' },
];

for (const row of rows) {
  test(`decidePartition: ${row.name}`, () => {
    const decision = decidePartition(row.leadership, { nowMs: row.nowMs ?? 0, liveSinceMs: row.live, preferredLeaderDelayMs: DELAY });
    if (row.expect === 'none') {
      assert.deepEqual(decision, {});
    } else if ('wakeAtMs' in row.expect) {
      assert.deepEqual(decision, { wakeAtMs: row.expect.wakeAtMs });
    } else {
      assert.ok(decision.write);
      assert.equal(decision.write.expected, row.leadership);
      // Every leader change bumps the epoch; an ISR-only change (isr-fenced) keeps it.
      const epoch = row.expect.reason === 'isr-fenced' ? row.leadership.leaderEpoch : row.leadership.leaderEpoch + 1;
      assert.deepEqual(decision.write.next, { leader: row.expect.leader, leaderEpoch: epoch, isr: row.expect.isr, replicas: row.leadership.replicas });
      assert.equal(decision.write.reason, row.expect.reason);
    }
  });
}

test('decideLeadership: one write per partition that needs one, the earliest wake-up', () => {
  const a = { ...l(1, [1, 2]), partition: 0 };
  const b = { ...l(2, [2, 1], [1, 2]), partition: 1 };
  const c = { ...l(3, [3, 1], [1, 3]), partition: 2 };
  const out = decideLeadership({ nowMs: 100, liveSinceMs: live([1, 50], [2, 0]), leaderships: [a, b, c], preferredLeaderDelayMs: 100 });
  assert.deepEqual(out.writes.map((w) => [w.expected.partition, w.reason, w.next.leader, w.next.isr]), [[2, 'leader-down', 1, [1]]]);
  assert.equal(out.wakeAtMs, 150, 'partition 1: preferred 1 live since 50, due at 150');
});

const brokerId = fc.integer({ min: 1, max: 6 });
const arbLeadership = fc.uniqueArray(brokerId, { minLength: 1, maxLength: 5 }).chain((replicas) =>
  fc.record({
    replicas: fc.constant(replicas),
    isr: fc.subarray(replicas),
    leaderPick: fc.nat(),
    offline: fc.boolean(),
    leaderEpoch: fc.nat({ max: 1000 }),
  }).map(({ replicas, isr, leaderPick, offline, leaderEpoch }): VersionedLeadership => {
    const leader = offline || isr.length === 0 ? -1 : isr[leaderPick % isr.length];
    return { topicId: 't', partition: 0, revision: '1', replicas, isr, leader, leaderEpoch };
  }));
const arbLive = fc.uniqueArray(fc.tuple(brokerId, fc.nat({ max: 5000 })), { selector: ([id]) => id, maxLength: 6 }).map((e) => new Map(e));

test('property: never elects outside the ISR or a dead broker; epochs strictly increase with every leader change; ISR shrinks only; replicas fixed', () => {
  fc.assert(fc.property(arbLeadership, arbLive, fc.nat({ max: 10_000 }), (leadership, liveSinceMs, nowMs) => {
    const { write } = decidePartition(leadership, { nowMs, liveSinceMs, preferredLeaderDelayMs: DELAY });
    if (!write) return;
    const { next } = write;
    if (write.reason === 'isr-fenced') {
      // Same leader and epoch, only the members that are not live removed (KIP-841).
      assert.equal(next.leader, leadership.leader);
      assert.equal(next.leaderEpoch, leadership.leaderEpoch);
      assert.deepEqual(next.isr, leadership.isr.filter((id) => liveSinceMs.has(id)));
      assert.ok(next.isr.length < leadership.isr.length && next.isr.includes(next.leader));
      return;
    }
    assert.ok(next.leaderEpoch > leadership.leaderEpoch);
    assert.deepEqual(next.replicas, leadership.replicas);
    assert.ok(next.isr.every((id) => leadership.isr.includes(id)), 'new ISR ⊆ old ISR');
    assert.ok(next.isr.length > 0);
    if (next.leader !== -1) {
      assert.ok(leadership.isr.includes(next.leader), 'leader from the old ISR');
      assert.ok(liveSinceMs.has(next.leader), 'leader live');
      assert.ok(next.isr.includes(next.leader));
    } else {
      assert.ok(!leadership.isr.some((id) => liveSinceMs.has(id)), 'offline only when no ISR member is live');
      assert.deepEqual(next.isr, leadership.isr);
    }
  }), { numRuns: 2000 });
});

test('property: applying the decisions reaches a fixed point (a live leader from the ISR, or offline with no live ISR member)', () => {
  fc.assert(fc.property(arbLeadership, arbLive, (leadership, liveSinceMs) => {
    let current = leadership;
    const nowMs = 1e9; // every preferred leader's delay has passed
    for (let step = 0; step < 4; step++) {
      const { write } = decidePartition(current, { nowMs, liveSinceMs, preferredLeaderDelayMs: DELAY });
      if (!write) break;
      current = { ...current, ...write.next, revision: String(step + 2) };
    }
    assert.deepEqual(decidePartition(current, { nowMs, liveSinceMs, preferredLeaderDelayMs: DELAY }), {}, 'stable after at most a few writes');
    if (current.leader === -1) assert.ok(!current.isr.some((id) => liveSinceMs.has(id)));
    else assert.ok(liveSinceMs.has(current.leader) && current.isr.includes(current.leader));
  }), { numRuns: 2000 });
});
