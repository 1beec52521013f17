/**
 * Groups over real replication: three brokers in one process, each with a
 * ReplicationServer and PeerLinks over real TCP on 127.0.0.1, a
 * ReplicaPartition of `__consumer_offsets` (one partition, RF 3,
 * minInsyncReplicas 2) on a real log in a tmp dir, and a
 * ForwardingGroupService built by clusterGroupService (ClusterOffsetsLeadership,
 * the topic created on the first group request); group requests and
 * pushes travel on the same links as replication. An in-memory
 * compare-and-swap store plays etcd and the controller (the test elects
 * leaders by hand). The coordinator's broker is killed: committed offsets
 * survive at the new leader and never move backwards, members are told to
 * rejoin and rejoin, and the old generation is fenced.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { CommittedOffset, GroupAssignmentFrame } from '@runnel/client/codec';
import type { AlterIsrResult, IsrStore, PeerDirectory, VersionedLeadership } from '../cluster/cluster-state.ts';
import { validateLimits } from '../limits.ts';
import { PartitionLog } from '../log/partition-log.ts';
import type { TopicInfo, TopicSpec } from '../metadata/topic-info.ts';
import type { Partition } from '../partition/partition.ts';
import { OFFSETS_TOPIC } from '../groups/coordinator-placement.ts';
import type { GroupMemberSink } from '../groups/member-bindings.ts';
import type { ReplicationLimits } from '../replication/limits.ts';
import { PeerLinks } from '../replication/peer-links.ts';
import { ReplicaPartition } from '../replication/replica-partition.ts';
import { ReplicationServer } from '../replication/replication-server.ts';
import type { ForwardingGroupService } from './group-forwarding.ts';
import { clusterGroupService, type GroupTopicSource } from './group-forwarding-wiring.ts';
import { TEST_LINK_KEY } from '../replication/testing/link-key.ts';

const offsetsTopic: TopicInfo = { name: OFFSETS_TOPIC, topicId: 'tid-offsets', partitions: 1, replicationFactor: 3, retentionMs: -1, retentionBytes: -1, createdAtMs: 0, minInsyncReplicas: 2 };
const replicationLimits: Partial<ReplicationLimits> = {
  replicaLagTimeMs: 1500, replicationTickMs: 50, replicaFetchMaxWaitMs: 300, replicaFetchTimeoutMs: 3000, replicaFetchBackoffMs: 30,
  reconnectBackoffMs: 20, reconnectBackoffMaxMs: 200, connectTimeoutMs: 1000, replicationTimeoutMs: 15_000, highWatermarkCheckpointMs: 200, alterIsrRetryMs: 100,
};
const TOPIC_PARTITIONS = 4;
const quiet = () => {};

const roots: string[] = [];
after(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

/** etcd stand-in for the one offsets partition: compare-and-swap on a revision; the watch applies each change to every live replica. */
class MemoryIsrStore implements IsrStore {
  current: VersionedLeadership;
  /** Brokers whose watch does not deliver (as a broker paused by SIGSTOP, or cut off from etcd): deposed without knowing it. */
  readonly unaware = new Set<number>();
  /** Linearizable reads of the leadership (the coordinators' read barrier), counted. */
  reads = 0;
  private revision = 100;
  constructor(private readonly cluster: Cluster, ids: number[]) {
    this.current = { topicId: offsetsTopic.topicId, partition: 0, leader: ids[0], leaderEpoch: 1, isr: [...ids], replicas: [...ids], revision: String(this.revision) };
  }

  async alterIsr(expected: VersionedLeadership, isr: number[]): Promise<AlterIsrResult> {
    await Promise.resolve();
    if (expected.revision !== this.current.revision) return { ok: false, reason: 'fenced' };
    this.write({ ...this.current, isr: [...isr] });
    return { ok: true, leadership: this.current };
  }

  elect(leader: number, isr: number[]): void {
    this.write({ ...this.current, leader, isr, leaderEpoch: this.current.leaderEpoch + 1 });
  }

  private write(l: Omit<VersionedLeadership, 'revision'>): void {
    this.current = { ...l, revision: String(++this.revision) };
    const published = this.current;
    setImmediate(() => {
      for (const n of this.cluster.nodes.values()) {
        if (this.unaware.has(n.id)) continue;
        void n.replica?.applyLeadership(published).catch(quiet);
      }
    });
  }
}

class Node {
  server: ReplicationServer | null = null;
  links: PeerLinks | null = null;
  replica: ReplicaPartition | null = null;
  groups: ForwardingGroupService | null = null;
  port = 0;
  readonly errors: string[] = [];
  constructor(readonly id: number, readonly dir: string, readonly cluster: Cluster) {}

  async start(): Promise<void> {
    const replicationLimits = this.cluster.replicationLimits;
    this.server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: this.id, port: this.port, limits: replicationLimits, warn: quiet });
    this.port = (await this.server.listen()).port;
    this.links = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: this.id, directory: this.cluster.directory, limits: replicationLimits });
    const log = await PartitionLog.open(this.dir, { isReplicated: true });
    this.replica = new ReplicaPartition({
      topic: offsetsTopic, partition: 0, minInsyncReplicas: 2, log, brokerId: this.id, links: this.links, isrStore: this.cluster.store, server: this.server, limits: replicationLimits, warn: quiet,
    });
    await this.replica.applyLeadership(this.cluster.store.current);
    // The registry as the wiring passes it: the topic exists once some broker created it ("in etcd").
    const registry: GroupTopicSource = {
      get: (name) => (name === OFFSETS_TOPIC && this.cluster.offsetsTopicCreated
        ? { info: offsetsTopic, partitions: [{ leader: this.cluster.store.current.leader, localReplica: this.replica ?? undefined } as unknown as Partition & { leader: number }] }
        : undefined),
      create: async (spec) => {
        assert.equal(spec.name, OFFSETS_TOPIC);
        this.cluster.creations.push(spec);
        this.cluster.offsetsTopicCreated = true;
        return offsetsTopic;
      },
      brokerIds: () => ({ live: [...this.cluster.nodes.values()].filter((n) => n.groups !== null).map((n) => n.id), known: [...this.cluster.nodes.keys()] }),
    };
    this.groups = clusterGroupService({
      brokerId: this.id, registry, links: this.links, server: this.server, offsetsRetentionMs: 7 * 86_400_000,
      host: { limits: validateLimits({ groupRebalanceDelayMs: 0, groupRebalanceMaxDelayMs: 0 }), partitionCounts: () => new Map([['t', TOPIC_PARTITIONS]]), highWatermark: () => 1000 },
      limits: { coordinatorWaitMs: 10_000, offsetsLoadPollMs: 20, offsetsTopicPartitions: 1 },
      readLeadership: async (topicId, partition) => {
        assert.deepEqual([topicId, partition], [offsetsTopic.topicId, 0]);
        this.cluster.store.reads++;
        await new Promise((r) => setImmediate(r));
        return this.cluster.store.current;
      },
      onError: (what, e) => this.errors.push(`${what}: ${(e as Error).message}`),
    });
  }

  /** As a SIGKILLed broker: everything of it goes away at once (no resignation is sent). */
  async kill(): Promise<void> {
    const { replica, links, server, groups } = this;
    Object.assign(this, { replica: null, links: null, server: null, groups: null });
    await server?.close();
    links?.close();
    await groups?.close();
    await replica?.close();
  }
}

class Cluster {
  readonly nodes = new Map<number, Node>();
  offsetsTopicCreated = false;
  readonly creations: TopicSpec[] = [];
  store!: MemoryIsrStore;
  replicationLimits = replicationLimits;
  readonly directory: PeerDirectory = {
    replicationAddress: (id) => {
      const n = this.nodes.get(id);
      return n?.port ? { host: '127.0.0.1', port: n.port } : undefined;
    },
  };

  static async start(ids = [1, 2, 3], limits: Partial<ReplicationLimits> = {}): Promise<Cluster> {
    const c = new Cluster();
    c.replicationLimits = { ...replicationLimits, ...limits };
    const root = await mkdtemp(join(tmpdir(), 'runnel-groups-replicated-'));
    roots.push(root);
    c.store = new MemoryIsrStore(c, ids);
    for (const id of ids) c.nodes.set(id, new Node(id, join(root, `broker-${id}`), c));
    for (const n of c.nodes.values()) await n.start();
    return c;
  }

  groups(id: number): ForwardingGroupService {
    const g = this.nodes.get(id)?.groups;
    assert.ok(g, `broker ${id} is not running`);
    return g;
  }

  async close(): Promise<void> {
    for (const n of this.nodes.values()) await n.kill();
  }
}

function sink(): GroupMemberSink & { frames: GroupAssignmentFrame[] } {
  const frames: GroupAssignmentFrame[] = [];
  return { frames, sendAssignment: (f) => frames.push(f) };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const joinReq = (group: string) => ({ requestId: 1, group, memberId: '', clientId: 'c', topics: ['t'], sessionTimeoutMs: 30_000 });
const latest = (answer: GroupAssignmentFrame, s: { frames: GroupAssignmentFrame[] }) => s.frames.at(-1) ?? answer;
const owned = (f: GroupAssignmentFrame) => f.assignments.flatMap((a) => a.partitions);
const byPartition = (offsets: CommittedOffset[]) => [...offsets].sort((a, b) => a.partition - b.partition).map((o) => o.offset);

test('the coordinator broker is killed: offsets survive at the new leader and never move backwards; members rejoin; the old generation is fenced', async () => {
  const c = await Cluster.start();
  try {
    assert.equal(c.offsetsTopicCreated, false, 'nothing creates __consumer_offsets before a group is used');
    await until('the coordinator loaded on broker 1', async () => (await c.groups(2).fetchOffsets('g').then(() => true, () => false)));
    assert.equal(c.creations.length, 1, 'created once, by the first group request');
    assert.equal(c.creations[0].replicationFactor, 3, 'min(3, brokers)');
    const s2 = sink();
    const a = await c.groups(2).join(joinReq('g'), s2);
    const s3 = sink();
    const b = await c.groups(3).join(joinReq('g'), s3);
    assert.equal(a.errorCode, 0);
    assert.equal(b.errorCode, 0);
    await until('the rebalance pushed to broker 2', () => s2.frames.at(-1)?.generationId === b.generationId);
    const am = latest(a, s2);
    await c.groups(2).commitOffsets('g', am.generationId, am.memberId, owned(am).map((partition) => ({ topic: 't', partition, offset: 100 + partition, metadata: '' })));
    await c.groups(3).commitOffsets('g', b.generationId, b.memberId, owned(b).map((partition) => ({ topic: 't', partition, offset: 200 + partition, metadata: '' })));
    const before = byPartition(await c.groups(3).fetchOffsets('g'));
    assert.equal(before.length, TOPIC_PARTITIONS);
    for (const n of [2, 3]) {
      const log = c.nodes.get(n)!.replica!.log;
      assert.ok(log.logEndOffset >= 2, `broker ${n} holds the replicated commits`);
    }

    await c.nodes.get(1)!.kill();
    c.store.elect(2, [2, 3]);
    const after = byPartition(await c.groups(3).fetchOffsets('g')); // waits out the election and the load
    assert.deepEqual(after, before, 'committed offsets survived the loss of the coordinator');

    // Neither member is known to the new coordinator: their heartbeats say so, and the session turns that into a rejoin.
    await until('broker 2 coordinates', async () => (await c.groups(3).heartbeat('g', b.memberId, b.generationId)) === 'UNKNOWN_MEMBER_ID');
    assert.equal(await c.groups(2).heartbeat('g', am.memberId, am.generationId), 'UNKNOWN_MEMBER_ID');
    await assert.rejects(c.groups(3).commitOffsets('g', b.generationId, b.memberId, [{ topic: 't', partition: owned(b)[0], offset: 1, metadata: '' }]), { errorName: 'UNKNOWN_MEMBER_ID' });

    const again = await c.groups(3).join(joinReq('g'), s3);
    assert.equal(again.errorCode, 0);
    assert.deepEqual(owned(again).sort(), [0, 1, 2, 3]);
    await c.groups(3).commitOffsets('g', again.generationId, again.memberId, [{ topic: 't', partition: 0, offset: 300, metadata: '' }]);

    // A preferred-leader style move while both stay up: broker 2 resigns and tells its members to rejoin.
    c.store.elect(3, [2, 3]);
    await until('the member told to rejoin', () => s3.frames.some((f) => f.errorCode !== 0 && f.memberId === again.memberId), 20_000);
    const final = byPartition(await c.groups(2).fetchOffsets('g'));
    assert.equal(final[0], 300);
    for (const [i, offset] of final.entries()) assert.ok(offset >= before[i], `partition ${i} moved backwards: ${before[i]} -> ${offset}`);
  } finally {
    await c.close();
  }
});

test('a coordinator deposed without knowing it (paused, its watch silent) does not answer offset fetches or describes from memory: they reach the new coordinator', async () => {
  // Fault seed 1016: a commit of 501 was acknowledged by the new coordinator; a fetch answered just after the old
  // one's SIGCONT said 399, from the old coordinator's memory, before it noticed it had been replaced.
  // replicaLagTimeMs is long so the old leader does not find out by itself (its ISR shrink would be fenced).
  const c = await Cluster.start([1, 2, 3], { replicaLagTimeMs: 120_000 });
  try {
    await until('the coordinator loaded on broker 1', async () => (await c.groups(1).fetchOffsets('g').then(() => true, () => false)));
    const s1 = sink();
    const a = await c.groups(1).join(joinReq('g'), s1);
    assert.equal(a.errorCode, 0);
    await c.groups(1).commitOffsets('g', a.generationId, a.memberId, [{ topic: 't', partition: 0, offset: 399, metadata: '' }]);
    assert.deepEqual(byPartition(await c.groups(1).fetchOffsets('g', ['t'])), [399]);

    // Broker 1 is deposed and does not hear of it: epoch 2 is led by broker 2.
    c.store.unaware.add(1);
    c.store.elect(2, [2, 3]);
    await until('broker 2 coordinates', async () => (await c.groups(3).heartbeat('g', a.memberId, a.generationId)) === 'UNKNOWN_MEMBER_ID');
    const s3 = sink();
    const b = await c.groups(3).join(joinReq('g'), s3);
    assert.equal(b.errorCode, 0);
    await c.groups(3).commitOffsets('g', b.generationId, b.memberId, [{ topic: 't', partition: 0, offset: 501, metadata: '' }]);
    assert.equal(c.nodes.get(1)!.replica!.role, 'leader', 'broker 1 still believes it leads epoch 1');

    const readsBefore = c.store.reads;
    assert.deepEqual(byPartition(await c.groups(1).fetchOffsets('g', ['t'])), [501], 'answered by the coordinator of epoch 2, not from broker 1\'s memory');
    assert.ok(c.store.reads > readsBefore, 'the answer waited for a read of the leadership');
    const described = await c.groups(1).describeGroup('g');
    const atCoordinator = await c.groups(2).describeGroup('g');
    assert.deepEqual(described.members.map((m) => m.displayId), atCoordinator.members.map((m) => m.displayId), 'the new coordinator\'s member, not broker 1\'s old one');
    assert.deepEqual(described.offsets.map((o) => o.offset), [501]);
    assert.deepEqual(byPartition(await c.groups(2).fetchOffsets('g', ['t'])), [501], 'the coordinator itself passes its barrier');

    // Concurrent fetches share barrier reads: a burst costs at most two reads, not one each.
    const burstBefore = c.store.reads;
    const answers = await Promise.all(Array.from({ length: 20 }, () => c.groups(2).fetchOffsets('g', ['t'])));
    assert.ok(answers.every((o) => byPartition(o)[0] === 501));
    assert.ok(c.store.reads - burstBefore <= 2, `${c.store.reads - burstBefore} reads for 20 concurrent fetches`);
  } finally {
    await c.close();
  }
});
