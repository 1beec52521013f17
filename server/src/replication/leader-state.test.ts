/**
 * The leader's pure replication state (leader-state.ts) and the divergence
 * rules (divergence.ts): high watermark over the maximal ISR, caught-up
 * timing, ISR shrink and expansion through alterIsr (ok, unavailable,
 * fenced), min ISR, and table tests of KIP-101/279/320 divergence on both
 * sides, plus a property: the follower's truncation always converges to the
 * leader's log.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { VersionedLeadership } from '../cluster/cluster-state.ts';
import { findDivergence, truncationOffset, type EpochHistory } from './divergence.ts';
import { LeaderState, type LeaderStateOptions } from './leader-state.ts';

function leadership(isr: number[], revision = '10', replicas = [1, 2, 3]): VersionedLeadership {
  return { topicId: 't', partition: 0, leader: 1, leaderEpoch: 5, isr, replicas, revision };
}

function leaderState(o: Partial<LeaderStateOptions> = {}): LeaderState {
  return new LeaderState({
    brokerId: 1, leadership: leadership([1, 2, 3]), minInsyncReplicas: 2, replicaLagTimeMs: 1000, alterIsrRetryMs: 200,
    epochStartOffset: 100, highWatermark: 90, localDurableEnd: 100, nowMs: 0, ...o,
  });
}

test('high watermark: min durable end over the ISR, the leader included; unknown followers hold it; never moves back', () => {
  const s = leaderState();
  assert.equal(s.handleLocalDurable(120, 1).highWatermark, 90, 'followers not heard from yet hold it');
  assert.equal(s.handleFollowerFetch(2, 110, 120, 2).highWatermark, 90);
  let r = s.handleFollowerFetch(3, 105, 120, 3);
  assert.deepEqual([r.highWatermark, r.isHighWatermarkAdvanced], [105, true]);
  r = s.handleFollowerFetch(3, 125, 130, 4);
  assert.equal(r.highWatermark, 110, 'follower 2 is the smallest now');
  r = s.handleFollowerFetch(2, 130, 130, 5);
  assert.equal(r.highWatermark, 120, 'the leader\'s own durable end bounds it');
  r = s.handleFollowerFetch(2, 100, 130, 6);
  assert.deepEqual([r.highWatermark, r.isHighWatermarkAdvanced], [120, false], 'a follower going back (truncated) never lowers it');
  assert.equal(s.handleLocalDurable(130, 7).highWatermark, 120, 'follower 2 is back at 100');
  assert.equal(s.handleFollowerFetch(2, 130, 130, 8).highWatermark, 125);
});

test('ISR shrink: a follower not caught up for replicaLagTimeMs is proposed out; it counts until etcd accepts; then the HW moves without it', () => {
  const s = leaderState();
  s.handleLocalDurable(200, 0);
  s.handleFollowerFetch(2, 200, 200, 10);
  s.handleFollowerFetch(3, 150, 200, 10);
  assert.equal(s.highWatermark, 150);
  assert.equal(s.tick(1000).alterIsr, null, 'lag exactly replicaLagTimeMs: still in');
  const r = s.tick(1001);
  assert.deepEqual(r.alterIsr?.isr, [1, 2], 'follower 3 (last caught up at the election, t=0) leaves');
  assert.equal(r.alterIsr?.expected.revision, '10');
  assert.equal(s.tick(2000).alterIsr, null, 'one alterIsr at a time');
  assert.deepEqual(s.maximalIsr, [1, 2, 3]);
  s.handleFollowerFetch(2, 200, 200, 2001);
  assert.equal(s.highWatermark, 150, 'the removal does not count before etcd accepted it');
  const ok = s.handleAlterIsrResult({ ok: true, leadership: leadership([1, 2], '11') }, 2002);
  assert.deepEqual([ok.highWatermark, ok.isHighWatermarkAdvanced, ok.isUnderMinIsr], [200, true, false]);
  assert.deepEqual(s.isr, [1, 2]);
  assert.equal(s.leadership.revision, '11');
});

test('an ISR follower reporting a durable end below the high watermark (it lost committed records) is proposed out at once', () => {
  const s = leaderState();
  s.handleLocalDurable(200, 0);
  s.handleFollowerFetch(2, 200, 200, 1);
  s.handleFollowerFetch(3, 200, 200, 1);
  assert.equal(s.highWatermark, 200);
  const r = s.handleFollowerFetch(3, 150, 200, 2);
  assert.deepEqual(r.alterIsr?.isr, [1, 2], 'out without waiting for replicaLagTimeMs');
  s.handleAlterIsrResult({ ok: true, leadership: leadership([1, 2], '11') }, 3);
  assert.equal(s.handleFollowerFetch(3, 180, 200, 4).alterIsr, null, 'below the HW: not back yet');
  assert.deepEqual(s.handleFollowerFetch(3, 200, 200, 5).alterIsr?.isr, [1, 2, 3], 'back once it has them again');
});

test('caught up (Kafka lastCaughtUpTimeMs): at the leader end now, or at the leader end of the previous fetch as of that fetch', () => {
  const s = leaderState({ replicaLagTimeMs: 100 });
  s.handleLocalDurable(100, 0);
  s.handleFollowerFetch(2, 100, 100, 0);
  s.handleFollowerFetch(3, 100, 100, 0);
  // The leader keeps appending; follower 2 always fetches up to where the leader was at its previous fetch.
  let end = 100;
  for (let t = 50; t <= 500; t += 50) {
    s.handleFollowerFetch(2, end, end + 10, t);
    end += 10;
    s.handleLocalDurable(end, t);
    const r = s.tick(t);
    if (t <= 100) assert.equal(r.alterIsr, null);
    else {
      // Follower 3 stopped at t=0: out after 100 ms; follower 2 keeps up with a one-fetch lag and stays.
      if (r.alterIsr) assert.deepEqual(r.alterIsr.isr, [1, 2]);
    }
  }
  assert.deepEqual(s.maximalIsr, [1, 2, 3]);
  assert.ok(s.isAlterIsrInFlight);
  s.handleAlterIsrResult({ ok: true, leadership: leadership([1, 2], '11') }, 501);
  assert.equal(s.tick(540).alterIsr, null, 'follower 2 never fell behind its previous fetch: caught up as of t=450');
  // Follower 2 now fetches below the leader end of its previous fetch (200), at the HW (190): still caught up as of t=450 only.
  s.handleFollowerFetch(2, 195, 210, 545);
  assert.equal(s.tick(550).alterIsr, null);
  assert.deepEqual(s.tick(551).alterIsr?.isr, [1]);
});

test('ISR expansion: a replica joins once its durable end reaches the HW and the epoch start; it counts at once', () => {
  const s = leaderState({ leadership: leadership([1, 2]), highWatermark: 100, localDurableEnd: 100, epochStartOffset: 100 });
  s.handleLocalDurable(150, 0);
  s.handleFollowerFetch(2, 150, 150, 1);
  assert.equal(s.highWatermark, 150);
  assert.equal(s.handleFollowerFetch(3, 90, 150, 2).alterIsr, null, 'below the HW: not yet');
  let r = s.handleFollowerFetch(3, 149, 150, 3);
  assert.equal(r.alterIsr, null);
  s.handleLocalDurable(160, 4);
  r = s.handleFollowerFetch(3, 150, 160, 5);
  assert.deepEqual(r.alterIsr?.isr, [1, 2, 3], 'reached the HW (150): proposed');
  assert.deepEqual(s.maximalIsr, [1, 2, 3], 'counted at once');
  s.handleFollowerFetch(2, 160, 160, 6);
  assert.equal(s.highWatermark, 150, 'held by the joining replica (it can only lower it)');
  r = s.handleAlterIsrResult({ ok: false, reason: 'unavailable' }, 7);
  assert.equal(r.alterIsr, null, 'retried only after alterIsrRetryMs');
  assert.equal(s.highWatermark, 160, 'without the proposal, the accepted ISR {1,2} decides');
  assert.equal(s.handleFollowerFetch(3, 160, 160, 100).alterIsr, null, 'caught up again, but the retry waits');
  r = s.tick(207);
  assert.deepEqual(r.alterIsr?.isr, [1, 2, 3], 'retried');
  r = s.handleAlterIsrResult({ ok: true, leadership: leadership([1, 2, 3], '12') }, 208);
  assert.deepEqual(s.isr, [1, 2, 3]);
});

test('a replica that joins while catching up (at the HW, never at the log end) counts as caught up from then: no flapping', () => {
  const s = leaderState({ leadership: leadership([1, 2]), replicaLagTimeMs: 100, highWatermark: 100, localDurableEnd: 100, epochStartOffset: 100, nowMs: 1000 });
  // The leader keeps appending; follower 2 keeps up; follower 3 comes from far behind.
  let end = 100;
  let joined: number[] | undefined;
  for (let t = 1000; t < 1100 && !joined; t += 10) {
    end += 10;
    s.handleLocalDurable(end, t);
    s.handleFollowerFetch(2, end, end, t);
    joined = s.handleFollowerFetch(3, end - 5 - (t === 1000 ? 50 : 0), end, t).alterIsr?.isr;
  }
  assert.equal(joined, undefined, 'below the HW: not yet');
  const r = s.handleFollowerFetch(3, s.highWatermark, end + 10, 1100);
  assert.deepEqual(r.alterIsr?.isr, [1, 2, 3]);
  s.handleAlterIsrResult({ ok: true, leadership: leadership([1, 2, 3], '11') }, 1101);
  assert.equal(s.tick(1150).alterIsr, null, 'not shrunk right after joining');
  assert.equal(s.handleFollowerFetch(2, end, end, 1200).alterIsr, null);
  assert.deepEqual(s.tick(1201).alterIsr?.isr, [1, 2], 'but still subject to the lag rule');
});

test('a joining replica must have reached the start of this epoch, not just the HW', () => {
  const s = leaderState({ leadership: leadership([1, 2]), highWatermark: 50, localDurableEnd: 100, epochStartOffset: 100 });
  s.handleFollowerFetch(2, 60, 100, 1);
  assert.equal(s.highWatermark, 60);
  assert.equal(s.handleFollowerFetch(3, 80, 100, 2).alterIsr, null, 'above the HW but below the epoch start');
  assert.deepEqual(s.handleFollowerFetch(3, 100, 100, 3).alterIsr?.isr, [1, 2, 3]);
});

test('min ISR: reported from the accepted ISR; fenced stops every decision', () => {
  const s = leaderState({ leadership: leadership([1, 2]) });
  assert.equal(s.isUnderMinIsr, false);
  s.handleLocalDurable(100, 0);
  s.handleFollowerFetch(3, 100, 100, 1);
  assert.equal(s.isUnderMinIsr, false);
  s.handleAlterIsrResult({ ok: true, leadership: leadership([1, 2, 3], '11') }, 2);
  const shrink = s.handleFollowerFetch(3, 100, 100, 1400);
  assert.deepEqual(shrink.alterIsr?.isr, [1, 3], 'follower 2 never fetched in this epoch: out at the first event past replicaLagTimeMs');
  const r = s.handleAlterIsrResult({ ok: true, leadership: leadership([1], '12') }, 1501);
  assert.equal(r.isUnderMinIsr, true, 'the controller side may have shrunk it further: {1} < 2');
  const t = leaderState();
  t.tick(5000);
  const fenced = t.handleAlterIsrResult({ ok: false, reason: 'fenced' }, 5001);
  assert.equal(fenced.isFenced, true);
  assert.deepEqual([t.tick(9000).alterIsr, t.handleLocalDurable(500, 9001).isHighWatermarkAdvanced], [null, false]);
});

test('an alterIsr answered fenced after a newer revision of the same epoch arrived (the controller dropped a dead follower) is proposed again, not a fence', () => {
  // The race seen in fault seeds 1048/1049: the leader proposes {1,2} while the controller writes {1,2} too
  // ('isr-fenced', revision 11); the watch brings revision 11 before the leader's compare-and-swap on revision 10
  // fails. Fencing then left a leader that no later revision would revive: no leader acted, the ISR never re-formed.
  const s = leaderState();
  s.handleLocalDurable(200, 0);
  s.handleFollowerFetch(2, 200, 200, 10);
  const shrink = s.tick(1001);
  assert.deepEqual(shrink.alterIsr?.isr, [1, 2], 'follower 3 never fetched: proposed out');
  s.updateLeadership(leadership([1, 2], '11'), 1002);
  const r = s.handleAlterIsrResult({ ok: false, reason: 'fenced' }, 1003);
  assert.equal(r.isFenced, false, 'revision 11 is this epoch naming this leader: the stale compare-and-swap is no fence');
  assert.equal(s.isFenced, false);
  assert.equal(r.alterIsr, null, 'the accepted ISR {1,2} is already what it wanted');
  s.handleFollowerFetch(2, 200, 200, 1099);
  const expand = s.handleFollowerFetch(3, 200, 200, 1100);
  assert.deepEqual([expand.alterIsr?.isr, expand.alterIsr?.expected.revision], [[1, 2, 3], '11'], 'follower 3 caught up: it rejoins');
  // A fenced answer with no newer revision seen is a real fence (a new epoch is on its way).
  const again = s.handleAlterIsrResult({ ok: false, reason: 'fenced' }, 1200);
  assert.equal(again.isFenced, true);
});

test('a fenced answer to a re-proposal after a newer revision: proposed once more against the newest revision', () => {
  const s = leaderState();
  s.handleLocalDurable(200, 0);
  s.handleFollowerFetch(2, 200, 200, 10);
  s.handleFollowerFetch(3, 150, 200, 10);
  assert.deepEqual(s.tick(1001).alterIsr?.isr, [1, 2]);
  s.updateLeadership(leadership([1, 2, 3], '11'), 1002);
  const r = s.handleAlterIsrResult({ ok: false, reason: 'fenced' }, 1003);
  assert.equal(r.isFenced, false);
  assert.deepEqual([r.alterIsr?.isr, r.alterIsr?.expected.revision], [[1, 2], '11'], 'still lagging: proposed again on revision 11');
});

test('an alterIsr answer arriving after a later revision of the same epoch (the watch was faster) does not take the leader back to its own write', () => {
  // The leader re-adds follower 3 (revision 11); the controller, which does not count 3 live yet (re-registering after
  // a pause), drops it again (revision 12); the watch brings both before the leader's own answer. Going back to 11
  // left the leader waiting for 3 while etcd's ISR lacked it: after replicaLagTimeMs its shrink lost against
  // revision 12, a fence after a 10 s wait (acks=all produce: NOT_LEADER_OR_FOLLOWER) that no later revision revived.
  const s = leaderState({ leadership: leadership([1, 2]), highWatermark: 100, localDurableEnd: 100, epochStartOffset: 100 });
  s.handleLocalDurable(150, 0);
  s.handleFollowerFetch(2, 150, 150, 1);
  const expand = s.handleFollowerFetch(3, 150, 150, 2);
  assert.deepEqual([expand.alterIsr?.isr, expand.alterIsr?.expected.revision], [[1, 2, 3], '10']);
  s.updateLeadership(leadership([1, 2, 3], '11'), 3);
  s.updateLeadership(leadership([1, 2], '12'), 4);
  const r = s.handleAlterIsrResult({ ok: true, leadership: leadership([1, 2, 3], '11') }, 5);
  assert.deepEqual([s.leadership.revision, s.isr], ['12', [1, 2]], 'revision 12 already holds the write of 11');
  assert.equal(r.isFenced, false);
  assert.deepEqual([r.alterIsr?.isr, r.alterIsr?.expected.revision], [[1, 2, 3], '12'], 'follower 3 is caught up: proposed again, against revision 12');
  assert.equal(s.handleAlterIsrResult({ ok: true, leadership: leadership([1, 2, 3], '13') }, 6).isFenced, false);
  s.updateLeadership(leadership([1, 2], '12'), 7);
  assert.deepEqual([s.leadership.revision, s.isr], ['13', [1, 2, 3]], 'an older revision read late is ignored');
  // Follower 3 dies: its removal is proposed against the revision etcd holds, so it is not fenced.
  s.handleFollowerFetch(2, 150, 150, 900);
  const shrink = s.tick(1010);
  assert.deepEqual([shrink.alterIsr?.isr, shrink.alterIsr?.expected.revision], [[1, 2], '13']);
});

test('follower views: lag in records and ms, ISR membership', () => {
  const s = leaderState({ leadership: leadership([1, 2]) });
  s.handleLocalDurable(100, 0);
  s.handleFollowerFetch(2, 100, 100, 10);
  s.handleFollowerFetch(3, 40, 100, 20);
  assert.deepEqual(s.followerViews(120, 50), [
    { brokerId: 2, durableEnd: 100, lagRecords: 20, lagMs: 40, inIsr: true },
    { brokerId: 3, durableEnd: 40, lagRecords: 80, lagMs: 50, inIsr: false },
  ]);
});

/** An in-memory epoch history: batches as [epoch, records] runs. */
function history(runs: [epoch: number, count: number][]): EpochHistory & { end: number } {
  const entries: { epoch: number; startOffset: number }[] = [];
  let end = 0;
  for (const [epoch, count] of runs) {
    if (count === 0) continue;
    if (entries.length === 0 || entries[entries.length - 1].epoch < epoch) entries.push({ epoch, startOffset: end });
    end += count;
  }
  return {
    end,
    leaderEpoch: entries.length ? entries[entries.length - 1].epoch : -1,
    logEndOffset: end,
    leaderEpochEntries: () => entries.map((e) => ({ ...e })),
    endOffsetForEpoch(epoch) {
      const n = entries.length;
      if (epoch < 0 || n === 0 || epoch < entries[0].epoch || epoch > entries[n - 1].epoch) return { epoch: -1, endOffset: -1 };
      if (epoch === entries[n - 1].epoch) return { epoch, endOffset: end };
      let i = 0;
      while (entries[i + 1].epoch <= epoch) i++;
      return { epoch: entries[i].epoch, endOffset: entries[i + 1].startOffset };
    },
  };
}

test('divergence table (KIP-101/279/320)', () => {
  const cases: { name: string; leader: [number, number][]; lastFetchedEpoch: number; fetchOffset: number; diverging: { epoch: number; endOffset: number } | null }[] = [
    { name: 'in sync', leader: [[1, 10], [3, 10]], lastFetchedEpoch: 3, fetchOffset: 15, diverging: null },
    { name: 'follower at the end of an older epoch', leader: [[1, 10], [3, 10]], lastFetchedEpoch: 1, fetchOffset: 10, diverging: null },
    { name: 'follower has more of an older epoch', leader: [[1, 10], [3, 10]], lastFetchedEpoch: 1, fetchOffset: 12, diverging: { epoch: 1, endOffset: 10 } },
    { name: 'follower has an epoch the leader skipped', leader: [[1, 10], [3, 10]], lastFetchedEpoch: 2, fetchOffset: 14, diverging: { epoch: 1, endOffset: 10 } },
    { name: 'follower has an epoch above the leader\'s latest (it led it)', leader: [[1, 10], [3, 10]], lastFetchedEpoch: 4, fetchOffset: 22, diverging: { epoch: 3, endOffset: 20 } },
    { name: 'follower ahead in the latest epoch', leader: [[1, 10], [3, 10]], lastFetchedEpoch: 3, fetchOffset: 25, diverging: { epoch: 3, endOffset: 20 } },
    { name: 'no epoch, within the log', leader: [[1, 10]], lastFetchedEpoch: -1, fetchOffset: 0, diverging: null },
    { name: 'no epoch, past the log', leader: [[1, 10]], lastFetchedEpoch: -1, fetchOffset: 12, diverging: { epoch: 1, endOffset: 10 } },
  ];
  for (const c of cases) assert.deepEqual(findDivergence(history(c.leader), c.lastFetchedEpoch, c.fetchOffset), c.diverging, c.name);
  // Follower side: min of the leader's end and its own end of that epoch.
  assert.equal(truncationOffset(history([[1, 12], [2, 2]]), { epoch: 1, endOffset: 10 }, 0), 10);
  assert.equal(truncationOffset(history([[1, 8], [2, 6]]), { epoch: 1, endOffset: 10 }, 0), 8, 'its own epoch 1 ends first (KIP-279)');
  assert.equal(truncationOffset(history([[4, 5]]), { epoch: 3, endOffset: 20 }, 0), 0, 'it does not know epoch 3: nothing from its first entry on');
  assert.equal(truncationOffset(history([[1, 30]]), { epoch: -1, endOffset: -1 }, 7), 7, 'no end named: its high watermark');
});

test('property: a follower repeating fetch → truncate converges to a prefix of the leader\'s log in a few rounds', () => {
  // Both logs share a prefix, then each goes on with epochs of its own, epochs increasing; the follower then appends nothing.
  const run = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 5 }));
  fc.assert(fc.property(fc.array(run, { maxLength: 4 }), fc.array(run, { maxLength: 4 }), fc.array(run, { maxLength: 4 }), (shared, leaderTail, followerTail) => {
    const epochsOf = (runs: [number, number][], from: number) => {
      let e = from;
      return runs.map(([step, n]) => [(e += step), n] as [number, number]);
    };
    const prefix = epochsOf(shared, 0);
    const top = prefix.length ? prefix[prefix.length - 1][0] : 0;
    // Distinct epochs after the prefix: the leader's odd, the follower's even (two leaders never share an epoch).
    const leaderRuns = [...prefix, ...epochsOf(leaderTail, top).map(([e, n], i) => [e * 2 + 2 * i + 3, n] as [number, number])];
    const followerRuns = [...prefix, ...epochsOf(followerTail, top).map(([e, n], i) => [e * 2 + 2 * i + 2, n] as [number, number])];
    const leader = history(leaderRuns);
    const prefixEnd = history(prefix).end;
    let follower = followerRuns;
    for (let round = 0; round < 10; round++) {
      const h = history(follower);
      const d = findDivergence(leader, h.leaderEpoch, h.end);
      if (d === null) {
        assert.ok(h.end >= prefixEnd, `kept the shared prefix (${h.end} >= ${prefixEnd})`);
        const perOffset = (runs: [number, number][]) => runs.flatMap(([e, n]) => Array<number>(n).fill(e));
        assert.deepEqual(perOffset(follower), perOffset(leaderRuns).slice(0, h.end), 'the follower is a prefix of the leader');
        return;
      }
      const target = truncationOffset(h, d, 0);
      assert.ok(target < h.end, 'each round truncates something');
      assert.ok(target >= prefixEnd, `never below the shared prefix: ${target} < ${prefixEnd}`);
      // Truncate the run list to `target` records.
      const cut: [number, number][] = [];
      let left = target;
      for (const [e, n] of follower) {
        if (left <= 0) break;
        cut.push([e, Math.min(n, left)]);
        left -= n;
      }
      follower = cut;
    }
    assert.fail('did not converge in 10 rounds');
  }), { numRuns: 1000 });
});
