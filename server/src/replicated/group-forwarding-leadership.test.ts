/**
 * ClusterOffsetsLeadership over a fake topic view: no partitions until the
 * topic exists; a listener hears of p once per change of leader, epoch or
 * local role (at `check()` or by the poll); ensureOffsetsTopic creates the
 * topic once, sized by the brokers the cluster has shown (waiting for a live
 * one missing), and takes the existing count after a lost race.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunnelError } from '@runnel/client/codec';
import type { TopicInfo, TopicSpec } from '../metadata/topic-info.ts';
import type { Partition } from '../partition/partition.ts';
import { OFFSETS_TOPIC } from '../groups/coordinator-placement.ts';
import { ClusterOffsetsLeadership, ensureOffsetsTopic, offsetsReplicationFactor } from './group-forwarding-leadership.ts';

const info = (partitions: number): TopicInfo => ({ name: OFFSETS_TOPIC, topicId: 'x', partitions, replicationFactor: 3, retentionMs: -1, retentionBytes: -1, createdAtMs: 0 });
type Replica = Partition & { role: 'leader' | 'follower' | 'none' };
const replica = (role: Replica['role'], leaderEpoch: number) => ({ role, leaderEpoch }) as unknown as Replica;

test('partitions appear with the topic; each change of leader, epoch or role is announced once, by check() or by the poll', async () => {
  let topic: { info: TopicInfo; partitions: { leader: number }[] } | undefined;
  const replicas: (Replica | undefined)[] = [];
  const leadership = new ClusterOffsetsLeadership({ topic: () => topic, replicaOf: (p) => replicas[p] }, 20);
  try {
    const heard: number[] = [];
    leadership.onLeadershipChange((p) => heard.push(p));
    assert.equal(leadership.partitions, 0);
    assert.equal(leadership.leaderOf(0), -1);
    topic = { info: info(2), partitions: [{ leader: 1 }, { leader: 2 }] };
    replicas[0] = replica('leader', 3);
    replicas[1] = replica('follower', 5);
    leadership.check();
    assert.deepEqual(heard, [0, 1]);
    assert.equal(leadership.partitions, 2);
    assert.ok(leadership.isLeader(0) && !leadership.isLeader(1));
    assert.equal(leadership.offsetsPartition(0), replicas[0]);
    leadership.check();
    assert.deepEqual(heard, [0, 1], 'nothing changed, nothing announced');
    replicas[1] = replica('leader', 6);
    topic.partitions[1].leader = 1;
    const deadline = Date.now() + 5000;
    while (heard.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(heard, [0, 1, 1], 'the poll found the change');
    replicas[0] = replica('leader', 3); // re-opened replica, same epoch and role
    leadership.check();
    assert.deepEqual(heard, [0, 1, 1, 0]);
  } finally {
    leadership.close();
  }
});

test('ensureOffsetsTopic creates the topic once and takes the existing partition count after a lost race', async () => {
  const created: TopicSpec[] = [];
  let existing: TopicInfo | undefined;
  const brokerIds = () => ({ live: [1, 2, 3], known: [1, 2, 3] });
  const source = { get: () => (existing ? { info: existing } : undefined), create: async (spec: TopicSpec) => { created.push(spec); existing = info(spec.partitions); return existing; }, brokerIds };
  assert.equal(await ensureOffsetsTopic(source, 16, 7 * 24 * 3600_000), 16);
  assert.equal(created.length, 1);
  assert.equal(created[0].name, OFFSETS_TOPIC);
  assert.equal(created[0].replicationFactor, 3);
  assert.equal(await ensureOffsetsTopic(source, 50, 1), 16, 'an existing topic keeps its count');
  assert.equal(created.length, 1);
  let raced: TopicInfo | undefined;
  const racing = { get: () => (raced ? { info: raced } : undefined), create: async () => { raced = info(8); throw new RunnelError('TOPIC_ALREADY_EXISTS'); }, brokerIds };
  assert.equal(await ensureOffsetsTopic(racing, 16, 1), 8);
});

test('__consumer_offsets is sized by the brokers the cluster has shown, not by those live at the first group request: it waits (retryably) for a broker that missed its lease', async () => {
  // A loaded machine: broker 3 missed its heartbeats and lease when the first group request came (it registers
  // again a moment later). Sized by the 2 live then, the topic would keep 2 replicas for good (groups-failover).
  assert.equal(offsetsReplicationFactor({ live: [1, 2], known: [1, 2, 3] }), 3);
  assert.equal(offsetsReplicationFactor({ live: [1], known: [1] }), 1, 'a single broker');
  assert.equal(offsetsReplicationFactor({ live: [1, 2, 3, 4, 5], known: [1, 2, 3, 4, 5] }), 3, 'min(3, brokers)');
  assert.equal(offsetsReplicationFactor({ live: [1, 2], known: [1, 2, 3] }, 2), 2, 'a configured default RF (the way out when a broker is gone for good)');
  assert.equal(offsetsReplicationFactor({ live: [1, 2], known: [1, 2] }, 3), 2, 'at most the brokers there are');

  const created: TopicSpec[] = [];
  let live = [1, 2];
  let existing: TopicInfo | undefined;
  const source = {
    get: () => (existing ? { info: existing } : undefined),
    create: async (spec: TopicSpec) => { created.push(spec); existing = info(spec.partitions); return existing; },
    brokerIds: () => ({ live, known: [1, 2, 3] }),
  };
  await assert.rejects(ensureOffsetsTopic(source, 16, 1), (e: unknown) => e instanceof RunnelError && e.errorName === 'LEADER_NOT_AVAILABLE' && /replication factor 3.*broker\(s\) 3/.test(e.message));
  assert.equal(created.length, 0, 'not created with 2 replicas');
  live = [1, 2, 3];
  assert.equal(await ensureOffsetsTopic(source, 16, 1), 16);
  assert.deepEqual(created.map((s) => s.replicationFactor), [3]);
});

test('confirmLeader: a read started after the call (concurrent calls share the next one); leader and epoch must match; an unreachable etcd refuses retryably', async () => {
  const topic = { info: info(1), partitions: [{ leader: 1 }] };
  let stored: { leader: number; leaderEpoch: number } | undefined = { leader: 1, leaderEpoch: 3 };
  let fail = false;
  const started: ((v: void) => void)[] = [];
  const leadership = new ClusterOffsetsLeadership({
    topic: () => topic, replicaOf: () => replica('leader', 3),
    leaderCheck: {
      brokerId: 1,
      read: async () => {
        await new Promise<void>((r) => started.push(r));
        if (fail) throw new RunnelError('CLUSTER_UNAVAILABLE', 'etcd unavailable');
        return stored;
      },
    },
  }, 60_000);
  try {
    const release = async (n: number) => {
      while (started.length < n) await new Promise((r) => setImmediate(r));
      started.splice(0, n).forEach((r) => r());
    };
    const first = leadership.confirmLeader(0, 3);
    await release(1);
    assert.equal(await first, true);
    const a = leadership.confirmLeader(0, 3);
    await new Promise((r) => setImmediate(r));
    stored = { leader: 2, leaderEpoch: 4 }; // changed while a's read is in flight: b and c, called after, must see it
    const b = leadership.confirmLeader(0, 3);
    const c = leadership.confirmLeader(0, 3);
    await release(1);
    assert.equal(await a, false, 'a read returns what etcd holds when it answers');
    await release(1);
    assert.deepEqual(await Promise.all([b, c]), [false, false], 'b and c shared one read, started after a\'s ended');
    assert.equal(started.length, 0, 'three calls during one read: two reads in all');
    stored = { leader: 1, leaderEpoch: 4 };
    const wrongEpoch = leadership.confirmLeader(0, 3);
    await release(1);
    assert.equal(await wrongEpoch, false, 'this broker leads again, but in another epoch than the coordinator loaded');
    fail = true;
    const unreachable = leadership.confirmLeader(0, 4);
    await release(1);
    await assert.rejects(unreachable, { errorName: 'LEADER_NOT_AVAILABLE' });
  } finally {
    leadership.close();
  }
});
