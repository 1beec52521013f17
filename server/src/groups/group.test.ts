/**
 * Group coordinator core: decision table for commits/heartbeats and a
 * property test that any sequence of joins, leaves and timeouts keeps every
 * generation's assignment exclusive and complete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Group } from './group.ts';
import { assignPartitions, type AssignmentStrategy } from './assignor.ts';

const counts = new Map([['a', 6], ['b', 3]]);

function join(g: Group, memberId: string, topics: string[], nowMs = 0, timeoutMs = 10_000) {
  const r = g.join({ memberId, isNew: !g.members.has(memberId), clientId: 'c', topics, sessionTimeoutMs: timeoutMs }, counts, nowMs);
  assert.ok(r.ok);
  return r;
}

test('range assignment splits contiguous ranges, extra partitions to the first members', () => {
  const a = assignPartitions('range', [{ memberId: 'm2', topics: ['a'] }, { memberId: 'm1', topics: ['a'] }, { memberId: 'm3', topics: ['a'] }], new Map([['a', 7]]));
  assert.deepEqual(a.get('m1')?.get('a'), [0, 1, 2]);
  assert.deepEqual(a.get('m2')?.get('a'), [3, 4]);
  assert.deepEqual(a.get('m3')?.get('a'), [5, 6]);
});

test('round-robin deals partitions only to members subscribed to the topic', () => {
  const a = assignPartitions('roundrobin', [{ memberId: 'x', topics: ['a', 'b'] }, { memberId: 'y', topics: ['b'] }], new Map([['a', 2], ['b', 2]]));
  assert.deepEqual(a.get('x')?.get('a'), [0, 1]);
  assert.deepEqual([...(a.get('x')?.get('b') ?? []), ...(a.get('y')?.get('b') ?? [])].sort(), [0, 1]);
  assert.equal(a.get('y')?.get('a'), undefined);
});

test('commit decision table', () => {
  const g = new Group('g', 'range', 100);
  // Empty group: standalone commits allowed.
  assert.equal(g.validateCommit(-1, '', [{ topic: 'a', partition: 0 }]), null);
  join(g, 'm1', ['a']);
  const gen1 = g.generationId;
  assert.equal(g.validateCommit(-1, '', [{ topic: 'a', partition: 0 }]), 'UNKNOWN_MEMBER_ID', 'standalone commit to an active group');
  assert.equal(g.validateCommit(gen1, 'm1', [{ topic: 'a', partition: 5 }]), null);
  assert.equal(g.validateCommit(gen1, 'nobody', [{ topic: 'a', partition: 0 }]), 'UNKNOWN_MEMBER_ID');
  join(g, 'm2', ['a']);
  const gen2 = g.generationId;
  assert.equal(gen2, gen1 + 1);
  assert.equal(g.validateCommit(gen1, 'm1', [{ topic: 'a', partition: 0 }]), 'ILLEGAL_GENERATION', 'stale generation');
  assert.equal(g.validateCommit(gen2, 'm1', [{ topic: 'a', partition: 5 }]), 'ILLEGAL_GENERATION', 'partition moved to m2');
  assert.equal(g.validateCommit(gen2, 'm2', [{ topic: 'a', partition: 5 }]), null);
  assert.equal(g.heartbeat('m1', gen1, 1), 'ILLEGAL_GENERATION');
  assert.equal(g.heartbeat('m1', gen2, 1), null);
  assert.equal(g.heartbeat('zz', gen2, 1), 'UNKNOWN_MEMBER_ID');
  const rejoinUnknown = g.join({ memberId: 'ghost', isNew: false, clientId: 'c', topics: ['a'], sessionTimeoutMs: 1000 }, counts, 1);
  assert.deepEqual(rejoinUnknown, { ok: false, code: 'UNKNOWN_MEMBER_ID' });
});

test('session timeout removes silent members and rebalances; leave rebalances', () => {
  const g = new Group('g', 'range', 100);
  join(g, 'm1', ['a'], 0, 1000);
  join(g, 'm2', ['a'], 0, 5000);
  join(g, 'm3', ['a'], 0, 5000);
  assert.equal(g.tick(900).rebalanced, false);
  g.heartbeat('m2', g.generationId, 900);
  const change = g.tick(1001);
  assert.deepEqual(change, { rebalanced: true, removed: ['m1'] });
  assert.deepEqual([...g.members.keys()].sort(), ['m2', 'm3']);
  assert.deepEqual(g.assignmentOf('m2').get('a'), [0, 1, 2]);
  assert.deepEqual(g.leave('m3'), { rebalanced: true, removed: ['m3'] });
  assert.deepEqual(g.assignmentOf('m2').get('a'), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(g.leave('m3'), { rebalanced: false, removed: [] });
});

test('member limit answers LIMIT_EXCEEDED', () => {
  const g = new Group('g', 'range', 1);
  join(g, 'm1', ['a']);
  assert.deepEqual(g.join({ memberId: 'm2', isNew: true, clientId: 'c', topics: ['a'], sessionTimeoutMs: 1 }, counts, 0), { ok: false, code: 'LIMIT_EXCEEDED' });
});

test('property: every generation assigns each subscribed partition to exactly one subscribing member', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('join' as const), id: fc.integer({ min: 0, max: 7 }), topics: fc.subarray(['a', 'b', 'c'], { minLength: 1 }), timeout: fc.integer({ min: 100, max: 5000 }) }),
    fc.record({ kind: fc.constant('leave' as const), id: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('heartbeat' as const), id: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('tick' as const), advance: fc.integer({ min: 0, max: 3000 }) }),
    fc.record({ kind: fc.constant('grow' as const), topic: fc.constantFrom('a', 'b', 'c'), partitions: fc.integer({ min: 1, max: 12 }) }),
  );
  const strategy = fc.constantFrom<AssignmentStrategy>('range', 'roundrobin');
  fc.assert(fc.property(strategy, fc.array(op, { maxLength: 60 }), (strat, ops) => {
    const g = new Group('g', strat, 100);
    let pc = new Map([['a', 4], ['b', 1], ['c', 9]]);
    let now = 0;
    for (const o of ops) {
      if (o.kind === 'join') g.join({ memberId: `m${o.id}`, isNew: !g.members.has(`m${o.id}`), clientId: 'c', topics: o.topics, sessionTimeoutMs: o.timeout }, pc, now);
      else if (o.kind === 'leave') g.leave(`m${o.id}`);
      else if (o.kind === 'heartbeat') g.heartbeat(`m${o.id}`, g.generationId, now);
      else if (o.kind === 'tick') g.tick((now += o.advance));
      else {
        pc = new Map(pc).set(o.topic, o.partitions);
        g.updatePartitionCounts(pc);
      }
      checkGeneration(g, pc);
    }
  }), { numRuns: 300 });
});

function checkGeneration(g: Group, pc: Map<string, number>): void {
  const owner = new Map<string, string>();
  for (const m of g.members.values()) {
    for (const [topic, parts] of g.assignmentOf(m.memberId)) {
      assert.ok(m.topics.includes(topic), `${m.memberId} got ${topic} it does not subscribe to`);
      for (const p of parts) {
        const key = `${topic}/${p}`;
        assert.equal(owner.get(key), undefined, `${key} owned twice in generation ${g.generationId}`);
        owner.set(key, m.memberId);
        assert.equal(g.validateCommit(g.generationId, m.memberId, [{ topic, partition: p }]), null);
      }
    }
  }
  for (const topic of g.subscribedTopics()) {
    for (let p = 0; p < (pc.get(topic) ?? 0); p++) assert.ok(owner.has(`${topic}/${p}`), `${topic}/${p} unowned`);
  }
}
