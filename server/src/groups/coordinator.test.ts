/**
 * GroupCoordinator: limits (groups per broker, memberships per connection;
 * rule: every table has a bound), fetch-after-commit ordering, and the
 * issue 11 finding 5 regressions (commit range, group names, secret member
 * ids, coalesced assignment pushes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GroupAssignmentFrame } from '@runnel/client/codec';
import { validateLimits } from '../limits.ts';
import { GroupCoordinator, type GroupMemberSink } from './coordinator.ts';
import { FileOffsetStore } from './file-offset-store.ts';

const LIMIT_EXCEEDED = 1001;

/** Every partition of topic `t` (4 partitions) has this highWatermark. */
const HIGH_WATERMARK = 100;

async function withCoordinator(limits: Parameters<typeof validateLimits>[0], body: (c: GroupCoordinator) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-coord-'));
  const store = await FileOffsetStore.open(dir);
  const c = new GroupCoordinator({ store, limits: validateLimits(limits), partitionCounts: () => new Map([['t', 4]]), highWatermark: () => HIGH_WATERMARK });
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
    const a = await join1(c, 'g1', s);
    assert.equal(a.errorCode, 0);
    assert.equal((await join1(c, 'g2', s)).errorCode, 0);
    assert.equal((await join1(c, 'g3', s)).errorCode, LIMIT_EXCEEDED);
    assert.equal((await join1(c, 'g1', s, a.memberId)).errorCode, 0, 'a rejoin of a held membership is not a new one');
    assert.equal((await join1(c, 'g3', sink())).errorCode, 0, 'another connection is not affected');
    await c.leave('g1', a.memberId);
    assert.equal((await join1(c, 'g3', s)).errorCode, 0);
    c.leaveAll(s);
    assert.deepEqual((await c.listGroups()).filter((g) => g.members > 0).map((g) => g.group), ['g3']);
  });
});

test('the broker holds at most maxGroups groups (live or with offsets); empty groups free their slot', async () => {
  await withCoordinator({ maxGroups: 2 }, async (c) => {
    const s1 = sink();
    const m = await join1(c, 'a', s1);
    await c.commitOffsets('b', -1, '', [{ topic: 't', partition: 0, offset: 5, metadata: '' }]);
    assert.equal((await join1(c, 'c', sink())).errorCode, LIMIT_EXCEEDED);
    await assert.rejects(c.commitOffsets('c', -1, '', [{ topic: 't', partition: 0, offset: 1, metadata: '' }]), { errorName: 'LIMIT_EXCEEDED' });
    await c.commitOffsets('b', -1, '', [{ topic: 't', partition: 1, offset: 7, metadata: '' }]); // existing group: fine
    assert.equal((await join1(c, 'b', sink())).errorCode, 0, 'joining a group that has offsets is not a new group');
    await c.leave('a', m.memberId);
    assert.equal((await join1(c, 'c', sink())).errorCode, 0, 'group a left with no offsets, so c fits');
  });
});

test('a fetch waits for commits validated before it: the new owner after a rebalance never reads an older offset', async () => {
  await withCoordinator({}, async (c) => {
    const a = await join1(c, 'g', sink());
    assert.equal(a.errorCode, 0);
    // Validated now (a owns every partition in this generation); durable only after its fdatasync.
    const committing = c.commitOffsets('g', a.generationId, a.memberId, [{ topic: 't', partition: 0, offset: 10, metadata: '' }]);
    const b = await join1(c, 'g', sink()); // rebalance: partition 0 may change owner
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

// ---- issue 11, finding 5 ----

const INVALID_REQUEST = 42;

/** Polls `cond` (coalesced pushes arrive after groupRebalanceDelayMs). */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a commit beyond the highWatermark is refused OFFSET_OUT_OF_RANGE (standalone and member); offset == highWatermark is accepted', async () => {
  await withCoordinator({}, async (c) => {
    const beyond = [{ topic: 't', partition: 0, offset: HIGH_WATERMARK + 1, metadata: '' }];
    await assert.rejects(c.commitOffsets('solo', -1, '', beyond), { errorName: 'OFFSET_OUT_OF_RANGE' });
    await assert.rejects(c.commitOffsets('solo', -1, '', [{ topic: 't', partition: 1, offset: Number.MAX_SAFE_INTEGER, metadata: '' }]), { errorName: 'OFFSET_OUT_OF_RANGE' });
    await c.commitOffsets('solo', -1, '', [{ topic: 't', partition: 0, offset: HIGH_WATERMARK, metadata: '' }]);
    assert.deepEqual(await c.fetchOffsets('solo'), [{ topic: 't', partition: 0, offset: HIGH_WATERMARK, metadata: '' }]);

    const m = await join1(c, 'members', sink());
    assert.equal(m.errorCode, 0);
    await assert.rejects(c.commitOffsets('members', m.generationId, m.memberId, beyond), { errorName: 'OFFSET_OUT_OF_RANGE' });
    await c.commitOffsets('members', m.generationId, m.memberId, [{ topic: 't', partition: 0, offset: HIGH_WATERMARK, metadata: '' }]);
    assert.deepEqual(await c.fetchOffsets('members'), [{ topic: 't', partition: 0, offset: HIGH_WATERMARK, metadata: '' }]);
  });
});

test('group names with control characters are refused INVALID_REQUEST on join, commit, fetch and describe', async () => {
  await withCoordinator({}, async (c) => {
    const offsets = [{ topic: 't', partition: 0, offset: 1, metadata: '' }];
    for (const name of ['g\0x', 'g\n', '\u001f', 'a\u007f', '\0']) {
      const s = sink();
      assert.equal((await join1(c, name, s)).errorCode, INVALID_REQUEST, JSON.stringify(name));
      await assert.rejects(c.commitOffsets(name, -1, '', offsets), { errorName: 'INVALID_REQUEST' }, JSON.stringify(name));
      await assert.rejects(c.fetchOffsets(name), { errorName: 'INVALID_REQUEST' }, JSON.stringify(name));
      await assert.rejects(c.describeGroup(name), { errorName: 'INVALID_REQUEST' }, JSON.stringify(name));
    }
    assert.deepEqual((await c.listGroups()), []);
    assert.equal((await join1(c, 'g x~é', sink())).errorCode, 0, 'printable names are fine');
  });
});

test('a closed connection leaves its groups at once, whatever its client id holds; a member rejoined elsewhere stays', async () => {
  await withCoordinator({}, async (c) => {
    const s = sink();
    const a = await c.join({ requestId: 1, group: 'g', memberId: '', clientId: 'a\0b', topics: ['t'], sessionTimeoutMs: 30_000 }, s);
    assert.equal(a.errorCode, 0);
    c.leaveAll(s);
    assert.deepEqual((await c.listGroups()), [], 'no member left registered until its session timeout');

    const first = sink();
    const b = await join1(c, 'h', first);
    const second = sink();
    assert.equal((await join1(c, 'h', second, b.memberId)).errorCode, 0, 'rejoin of the same member from another connection');
    c.leaveAll(first);
    assert.equal((await c.listGroups()).find((g) => g.group === 'h')?.members, 1, 'the member now lives on the second connection');
    c.leaveAll(second);
    assert.deepEqual((await c.listGroups()), []);
  });
});

test('describe lists members without their member ids; member ids are at least 16 random bytes, base64url', async () => {
  await withCoordinator({}, async (c) => {
    const ids = (await Promise.all([join1(c, 'g', sink()), join1(c, 'g', sink())])).map((a) => a.memberId);
    const described = (await c.describeGroup('g'));
    assert.equal(described.members.length, 2);
    const text = JSON.stringify(described);
    for (const id of ids) assert.ok(!text.includes(id), 'a member id is readable from describe');
    for (const m of described.members) {
      assert.deepEqual(Object.keys(m).sort(), ['assignment', 'clientId', 'displayId', 'topics']);
      assert.equal(m.clientId, 'c');
    }
    assert.equal(new Set(described.members.map((m) => m.displayId)).size, 2, 'display ids tell members apart');
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_-]+$/);
      assert.ok(Buffer.from(id, 'base64url').length >= 16, `${id} carries fewer than 16 bytes`);
    }
  });
});

/** Each member's latest frame: the join answer, then any push to its sink. */
function latest(answer: GroupAssignmentFrame, s: { frames: GroupAssignmentFrame[] }): GroupAssignmentFrame {
  return s.frames.at(-1) ?? answer;
}

function assertExclusiveAndComplete(frames: GroupAssignmentFrame[], partitions: number): void {
  const all = frames.flatMap((f) => f.assignments.flatMap((a) => a.partitions)).sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: partitions }, (_, i) => i));
}

test('a burst of 300 joins costs O(N) assignment frames, not one push per member per join', async () => {
  const N = 300;
  await withCoordinator({ groupRebalanceDelayMs: 20, groupRebalanceMaxDelayMs: 200 }, async (c) => {
    const sinks = Array.from({ length: N }, () => sink());
    const answers = await Promise.all(sinks.map((s) => join1(c, 'burst', s))); // one synchronous burst (join has no await before its answer)
    assert.ok(answers.every((a) => a.errorCode === 0 && a.requestId === 1), 'every joiner is answered at once with its requestId');
    const finalGeneration = answers[N - 1].generationId;
    await until(() => sinks.every((s, i) => latest(answers[i], s).generationId === finalGeneration), 'every member in the final generation');
    const pushes = sinks.reduce((n, s) => n + s.frames.length, 0);
    assert.ok(pushes <= N, `${pushes} pushed assignment frames for ${N} joins (eager pushes cost ${(N * (N - 1)) / 2})`);
    assert.ok(sinks.every((s) => s.frames.length <= 1), 'one push per member for the burst (its first join had nobody to push to)');
    assertExclusiveAndComplete(sinks.map((s, i) => latest(answers[i], s)), 4);
    // The members fenced until their push can commit with the final generation now.
    const owner = sinks.findIndex((s, i) => latest(answers[i], s).assignments.length > 0);
    const mine = latest(answers[owner], sinks[owner]);
    await c.commitOffsets('burst', mine.generationId, mine.memberId, [{ topic: 't', partition: mine.assignments[0].partitions[0], offset: 1, metadata: '' }]);
  });
});

test('150 of 300 connections closing in a burst cost O(N) assignment frames', async () => {
  const N = 300;
  await withCoordinator({ groupRebalanceDelayMs: 20, groupRebalanceMaxDelayMs: 200 }, async (c) => {
    const sinks = Array.from({ length: N }, () => sink());
    const answers = await Promise.all(sinks.map((s) => join1(c, 'burst', s)));
    await until(() => sinks.every((s, i) => latest(answers[i], s).generationId === answers[N - 1].generationId), 'a settled group');
    for (const s of sinks) s.frames.length = 0;
    const closing = sinks.slice(0, N / 2);
    const framesAtClose = closing.map((s) => {
      c.leaveAll(s);
      return s.frames.length;
    });
    const stay = sinks.slice(N / 2);
    const generation = (await c.describeGroup('burst')).generationId;
    await until(() => stay.every((s) => s.frames.at(-1)?.generationId === generation), 'the survivors pushed the new generation');
    const pushes = stay.reduce((n, s) => n + s.frames.length, 0) + framesAtClose.reduce((a, b) => a + b, 0);
    assert.ok(pushes <= 2 * N, `${pushes} assignment frames for ${N / 2} leaves (eager pushes cost ${(N * (N - 1)) / 2 - ((N / 2) * (N / 2 - 1)) / 2})`);
    assert.ok(stay.every((s) => s.frames.length <= 2), 'at most the leading push and the window push per surviving member');
    assert.deepEqual(closing.map((s) => s.frames.length), framesAtClose, 'nothing is sent to a connection after it closed');
    assertExclusiveAndComplete(stay.map((s) => s.frames.at(-1) as GroupAssignmentFrame), 4);
  });
});

test('concurrent standalone commits to fresh group names stay within maxGroups', async () => {
  await withCoordinator({ maxGroups: 2 }, async (c) => {
    const results = await Promise.allSettled(['a', 'b', 'c', 'd', 'e'].map((g) => c.commitOffsets(g, -1, '', [{ topic: 't', partition: 0, offset: 1, metadata: '' }])));
    const committed = results.filter((r) => r.status === 'fulfilled').length;
    assert.equal(committed, 2, `${committed} groups created with maxGroups 2`);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { errorName?: string }).errorName, 'LIMIT_EXCEEDED');
    assert.equal((await c.listGroups()).length, 2);
  });
});

test('a commit past its deadline is refused REQUEST_TIMED_OUT and nothing is stored', async () => {
  await withCoordinator({}, async (c) => {
    await assert.rejects(c.commitOffsets('g', -1, '', [{ topic: 't', partition: 0, offset: 5, metadata: '' }], { deadlineMs: Date.now() - 1 }), { errorName: 'REQUEST_TIMED_OUT' });
    assert.deepEqual(await c.fetchOffsets('g'), []);
    await c.commitOffsets('g', -1, '', [{ topic: 't', partition: 0, offset: 5, metadata: '' }], { deadlineMs: Date.now() + 60_000 });
    assert.deepEqual(await c.fetchOffsets('g'), [{ topic: 't', partition: 0, offset: 5, metadata: '' }]);
  });
});

test('a commit whose client went away (aborted signal) is refused REQUEST_TIMED_OUT and nothing is stored, even before its deadline', async () => {
  await withCoordinator({}, async (c) => {
    const gone = new AbortController();
    gone.abort();
    await assert.rejects(c.commitOffsets('g', -1, '', [{ topic: 't', partition: 0, offset: 5, metadata: '' }], { deadlineMs: Date.now() + 60_000, signal: gone.signal }), { errorName: 'REQUEST_TIMED_OUT' });
    assert.deepEqual(await c.fetchOffsets('g'), []);
    await c.commitOffsets('g', -1, '', [{ topic: 't', partition: 0, offset: 6, metadata: '' }], { deadlineMs: Date.now() + 60_000, signal: new AbortController().signal });
    assert.deepEqual(await c.fetchOffsets('g'), [{ topic: 't', partition: 0, offset: 6, metadata: '' }]);
  });
});

test('a standalone commit never lowers a committed offset unless it says rewind (a stale request a paused broker forwards late: fault seed 9045)', async () => {
  await withCoordinator({}, async (c) => {
    const at = (partition: number, offset: number) => ({ topic: 't', partition, offset, metadata: '' });
    await c.commitOffsets('g', -1, '', [at(0, 10), at(1, 4)]);
    await assert.rejects(c.commitOffsets('g', -1, '', [at(1, 9), at(0, 9)]), { errorName: 'OFFSET_COMMIT_BACKWARDS' }, 'all or nothing: one lowered partition refuses the commit');
    assert.deepEqual(await c.fetchOffsets('g'), [at(0, 10), at(1, 4)]);
    await c.commitOffsets('g', -1, '', [at(0, 10), at(1, 9), at(2, 0)]); // equal, higher and new partitions are fine
    await c.commitOffsets('g', -1, '', [at(0, 3)], { rewind: true });
    assert.deepEqual(await c.fetchOffsets('g'), [at(0, 3), at(1, 9), at(2, 0)]);
  });
});

test('a standalone commit is compared with a commit still being stored, not only with stored ones', async () => {
  await withCoordinator({}, async (c) => {
    const at = (offset: number) => [{ topic: 't', partition: 0, offset, metadata: '' }];
    const newer = c.commitOffsets('g', -1, '', at(8)); // not awaited: its fdatasync is in flight
    const stale = c.commitOffsets('g', -1, '', at(5));
    await newer;
    await assert.rejects(stale, { errorName: 'OFFSET_COMMIT_BACKWARDS' });
    assert.deepEqual(await c.fetchOffsets('g'), at(8));
  });
});
