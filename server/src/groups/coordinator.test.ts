/** GroupCoordinator limits: groups per broker, memberships per connection (rule: every table has a bound). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GroupAssignmentFrame } from '@runnel/client/codec';
import { validateLimits } from '../limits.ts';
import { GroupCoordinator, type GroupMemberSink } from './coordinator.ts';
import { OffsetStore } from './offset-store.ts';

const LIMIT_EXCEEDED = 1001;

async function withCoordinator(limits: Parameters<typeof validateLimits>[0], body: (c: GroupCoordinator) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-coord-'));
  const store = await OffsetStore.open(dir);
  const c = new GroupCoordinator({ store, limits: validateLimits(limits), partitionCounts: () => new Map([['t', 4]]), highWatermark: () => 0 });
  try { await body(c); } finally { await c.close(); await rm(dir, { recursive: true, force: true }); }
}

function sink(): GroupMemberSink & { frames: GroupAssignmentFrame[] } {
  const frames: GroupAssignmentFrame[] = [];
  return { frames, sendAssignment: (f) => frames.push(f) };
}

const join1 = (c: GroupCoordinator, group: string, s: GroupMemberSink, memberId = '') =>
  c.join({ requestId: 1, group, memberId, clientId: 'c', topics: ['t'], sessionTimeoutMs: 10_000 }, s);

test('one connection holds at most maxGroupMembershipsPerConnection memberships; leaving frees a slot', async () => {
  await withCoordinator({ maxGroupMembershipsPerConnection: 2 }, async (c) => {
    const s = sink();
    const a = join1(c, 'g1', s);
    assert.equal(a.errorCode, 0);
    assert.equal(join1(c, 'g2', s).errorCode, 0);
    assert.equal(join1(c, 'g3', s).errorCode, LIMIT_EXCEEDED);
    assert.equal(join1(c, 'g1', s, a.memberId).errorCode, 0, 'a rejoin of a held membership is not a new one');
    assert.equal(join1(c, 'g3', sink()).errorCode, 0, 'another connection is not affected');
    c.leave('g1', a.memberId);
    assert.equal(join1(c, 'g3', s).errorCode, 0);
    c.leaveAll(s);
    assert.deepEqual(c.listGroups().filter((g) => g.members > 0).map((g) => g.group), ['g3']);
  });
});

test('the broker holds at most maxGroups groups (live or with offsets); empty groups free their slot', async () => {
  await withCoordinator({ maxGroups: 2 }, async (c) => {
    const s1 = sink();
    const m = join1(c, 'a', s1);
    await c.commitOffsets('b', -1, '', [{ topic: 't', partition: 0, offset: 5, metadata: '' }]);
    assert.equal(join1(c, 'c', sink()).errorCode, LIMIT_EXCEEDED);
    await assert.rejects(c.commitOffsets('c', -1, '', [{ topic: 't', partition: 0, offset: 1, metadata: '' }]), { errorName: 'LIMIT_EXCEEDED' });
    await c.commitOffsets('b', -1, '', [{ topic: 't', partition: 1, offset: 7, metadata: '' }]); // existing group: fine
    assert.equal(join1(c, 'b', sink()).errorCode, 0, 'joining a group that has offsets is not a new group');
    c.leave('a', m.memberId);
    assert.equal(join1(c, 'c', sink()).errorCode, 0, 'group a left with no offsets, so c fits');
  });
});

test('a fetch waits for commits validated before it: the new owner after a rebalance never reads an older offset', async () => {
  await withCoordinator({}, async (c) => {
    const a = join1(c, 'g', sink());
    assert.equal(a.errorCode, 0);
    // Validated now (a owns every partition in this generation); durable only after its fdatasync.
    const committing = c.commitOffsets('g', a.generationId, a.memberId, [{ topic: 't', partition: 0, offset: 10, metadata: '' }]);
    const b = join1(c, 'g', sink()); // rebalance: partition 0 may change owner
    assert.equal(b.errorCode, 0);
    assert.ok(b.generationId > a.generationId);
    const fetched = await c.fetchOffsets('g', ['t']);
    assert.deepEqual(fetched, [{ topic: 't', partition: 0, offset: 10, metadata: '' }]);
    await committing;
    // A commit from the old generation, after the rebalance, is fenced.
    await assert.rejects(c.commitOffsets('g', a.generationId, a.memberId, [{ topic: 't', partition: 0, offset: 11, metadata: '' }]), { errorName: 'ILLEGAL_GENERATION' });
    assert.deepEqual(await c.fetchOffsets('g', ['t']), [{ topic: 't', partition: 0, offset: 10, metadata: '' }]);
  });
});
