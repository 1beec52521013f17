/**
 * `ForwardingGroupService` with two brokers in one process: the forwarding
 * handlers over an in-memory network (the links' request/handle contract,
 * bytes copied, links that can go down or answer late), and a fake
 * leadership of `__consumer_offsets` whose partitions are real
 * `LocalPartition`s on PartitionLogs in a tmp dir, shared by both brokers as
 * a perfectly replicated log would be. Covered: members on another broker
 * than their coordinator (join, pushes back, commit, fetch, describe, list,
 * leave on close), a coordinator move (members told to rejoin, offsets
 * replayed by the new leader, old generation fenced, offsets never move
 * backwards), an election waited out, a lost leave repaired by the next push,
 * and a push that overtakes its member's join answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunnelError, type GroupAssignmentFrame } from '@runnel/client/codec';
import { validateLimits, type Limits } from '../limits.ts';
import { PartitionLog } from '../log/partition-log.ts';
import { LocalPartition } from '../partition/local-partition.ts';
import type { Partition } from '../partition/partition.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import { OFFSETS_TOPIC, coordinatorPartitionOf } from '../groups/coordinator-placement.ts';
import type { GroupMemberSink } from '../groups/member-bindings.ts';
import type { OffsetsLeadership } from '../groups/offsets-coordinators.ts';
import type { ClusterGroupLimits } from '../groups/cluster-group-limits.ts';
import { ForwardingGroupService } from './group-forwarding.ts';
import type { PeerRequester, RequestHandlers } from './leader-forwarder.ts';
import { GroupForwardType } from './group-forwarding-protocol.ts';

const OFFSETS_PARTITIONS = 2;
const TOPIC_PARTITIONS = 4;
const HIGH_WATERMARK = 1000;

type Handler = (body: Uint8Array, from: number) => Promise<Uint8Array>;

/** The internal links between brokers of one process: each request reaches the target's handler with a copy of its bytes. */
class MemoryNetwork {
  private readonly handlers = new Map<number, Map<number, Handler>>();
  /** "from->to" links that refuse (NOT_CONNECTED). */
  readonly down = new Set<string>();
  /** Extra ms before an answer of this request type travels back. */
  readonly answerDelayMs = new Map<number, number>();
  /** Extra ms before a request of this type reaches its handler (a link that delivers late). */
  readonly requestDelayMs = new Map<number, number>();

  endpoint(brokerId: number): { links: PeerRequester; server: RequestHandlers } {
    const own = new Map<number, Handler>();
    this.handlers.set(brokerId, own);
    return {
      server: { handle: (type, handler) => { own.set(type, handler); } },
      links: {
        request: async (to, type, body, timeoutMs) => {
          if (this.down.has(`${brokerId}->${to}`)) throw new RunnelError('NOT_CONNECTED', `link ${brokerId}->${to} is down`);
          const handler = this.handlers.get(to)?.get(type);
          if (!handler) throw new RunnelError('NOT_CONNECTED', `broker ${to} does not serve type ${type}`);
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new RunnelError('REQUEST_TIMED_OUT', `type ${type}`)), timeoutMs); });
          try {
            const late = this.requestDelayMs.get(type) ?? 0;
            const delivered = late > 0 ? new Promise<void>((r) => setTimeout(r, late)) : Promise.resolve();
            return await Promise.race([delivered.then(() => handler(body.slice(), brokerId)).then(async (a) => {
              const delay = this.answerDelayMs.get(type) ?? 0;
              if (delay > 0) await new Promise((r) => setTimeout(r, delay));
              return a.slice();
            }), timeout]);
          } finally {
            clearTimeout(timer);
          }
        },
      },
    };
  }
}

/** Who leads each offsets partition, and at which epoch; every broker's view of it. */
class FakeLeadership {
  readonly leaders: number[] = [];
  readonly epochs: number[] = [];
  private readonly listeners = new Set<(p: number) => void>();
  /** Per broker, its "replica" of each partition: a view of the shared log carrying the current epoch. */
  private readonly views = new Map<number, Partition[]>();

  constructor(private readonly partitions: LocalPartition[], leaders: number[]) {
    this.leaders.push(...leaders);
    this.epochs.push(...leaders.map(() => 0));
  }

  viewOf(brokerId: number): OffsetsLeadership {
    const views = this.partitions.map((inner, p) => {
      const view = Object.create(inner) as Partition;
      Object.defineProperty(view, 'leaderEpoch', { get: () => this.epochs[p] });
      return view;
    });
    this.views.set(brokerId, views);
    return {
      partitions: this.partitions.length,
      offsetsPartition: (p) => views[p],
      isLeader: (p) => this.leaders[p] === brokerId,
      leaderOf: (p) => this.leaders[p],
      onLeadershipChange: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
    };
  }

  /** A leader change (−1 = none) with a new epoch, as etcd would announce it. */
  move(p: number, leader: number): void {
    this.leaders[p] = leader;
    this.epochs[p]++;
    for (const l of [...this.listeners]) l(p);
  }
}

function sink(): GroupMemberSink & { frames: GroupAssignmentFrame[] } {
  const frames: GroupAssignmentFrame[] = [];
  return { frames, sendAssignment: (f) => frames.push(f) };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Cluster {
  net: MemoryNetwork;
  partitions: LocalPartition[];
  leadership: FakeLeadership;
  brokers: Map<number, ForwardingGroupService>;
  errors: string[];
}

/** A group name whose offsets partition is `p`. */
function groupOn(p: number, prefix: string): string {
  for (let i = 0; ; i++) if (coordinatorPartitionOf(`${prefix}-${i}`, OFFSETS_PARTITIONS) === p) return `${prefix}-${i}`;
}

async function withCluster(leaders: number[], body: (c: Cluster) => Promise<void>, opts: { limits?: Partial<Limits>; groupLimits?: Partial<ClusterGroupLimits> } = {}): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-group-forwarding-'));
  const info: TopicInfo = { name: OFFSETS_TOPIC, topicId: 'offsets', partitions: OFFSETS_PARTITIONS, replicationFactor: 1, retentionMs: -1, retentionBytes: -1, createdAtMs: 0 };
  const partitions: LocalPartition[] = [];
  for (let p = 0; p < OFFSETS_PARTITIONS; p++) partitions.push(new LocalPartition(info, p, await PartitionLog.open(join(dir, String(p)), { flushIntervalMs: 0 }), 0));
  const net = new MemoryNetwork();
  const leadership = new FakeLeadership(partitions, leaders);
  const limits = validateLimits({ groupRebalanceDelayMs: 0, groupRebalanceMaxDelayMs: 0, ...opts.limits });
  const brokers = new Map<number, ForwardingGroupService>();
  const errors: string[] = [];
  for (const id of [1, 2]) {
    brokers.set(id, new ForwardingGroupService({
      brokerId: id, leadership: leadership.viewOf(id), ...net.endpoint(id),
      host: { limits, partitionCounts: () => new Map([['t', TOPIC_PARTITIONS]]), highWatermark: () => HIGH_WATERMARK },
      limits: { coordinatorWaitMs: 2000, offsetsLoadPollMs: 10, ...opts.groupLimits },
      onError: (what, e) => errors.push(`${id}: ${what}: ${(e as Error).message}`),
    }));
  }
  try {
    await body({ net, leadership, brokers, errors, partitions });
  } finally {
    for (const b of brokers.values()) await b.close();
    for (const p of partitions) await p.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const joinReq = (group: string, memberId = '') => ({ requestId: 7, group, memberId, clientId: 'c', topics: ['t'], sessionTimeoutMs: 30_000 });
const latest = (answer: GroupAssignmentFrame, s: { frames: GroupAssignmentFrame[] }) => s.frames.at(-1) ?? answer;
const owned = (f: GroupAssignmentFrame) => f.assignments.flatMap((a) => a.partitions);

test('a member connected to another broker than its coordinator joins, is pushed rebalances, commits, fetches, describes, lists and leaves on close', async () => {
  await withCluster([1, 2], async ({ brokers }) => {
    const [b1, b2] = [brokers.get(1)!, brokers.get(2)!];
    const group = groupOn(0, 'remote'); // coordinated by broker 1
    const s2 = sink();
    const a = await b2.join(joinReq(group), s2);
    assert.equal(a.errorCode, 0);
    assert.equal(a.requestId, 7, 'the answer carries the request id');
    assert.deepEqual(owned(a), [0, 1, 2, 3]);

    const s1 = sink();
    const b = await b1.join(joinReq(group), s1);
    assert.ok(b.generationId > a.generationId);
    await until(() => s2.frames.at(-1)?.generationId === b.generationId, 'the rebalance pushed back to broker 2');
    const mine = latest(a, s2);
    assert.equal(owned(mine).length + owned(b).length, TOPIC_PARTITIONS);

    await b2.commitOffsets(group, mine.generationId, mine.memberId, owned(mine).map((partition) => ({ topic: 't', partition, offset: 10 + partition, metadata: 'm' })));
    await assert.rejects(b2.commitOffsets(group, a.generationId, a.memberId, [{ topic: 't', partition: owned(mine)[0], offset: 1, metadata: '' }]), { errorName: 'ILLEGAL_GENERATION' });
    // A commit whose client went away is not forwarded (a broker resumed after a pause reads requests whose clients gave up).
    const gone = new AbortController();
    gone.abort();
    await assert.rejects(b2.commitOffsets(group, mine.generationId, mine.memberId, [{ topic: 't', partition: owned(mine)[0], offset: 1, metadata: '' }], { signal: gone.signal }), { errorName: 'REQUEST_TIMED_OUT' });
    assert.deepEqual((await b1.fetchOffsets(group)).map((o) => o.offset).sort(), owned(mine).map((p) => 10 + p).sort());
    assert.equal((await b2.fetchOffsets(group, ['other'])).length, 0);
    assert.equal(await b2.heartbeat(group, mine.memberId, mine.generationId), null);
    assert.equal(await b2.heartbeat(group, mine.memberId, a.generationId), 'ILLEGAL_GENERATION');
    assert.equal(await b2.heartbeat(group, 'nobody', 1), 'UNKNOWN_MEMBER_ID');

    const described = await b2.describeGroup(group);
    assert.equal(described.members.length, 2);
    assert.equal(described.generationId, b.generationId);
    assert.ok(!JSON.stringify(described).includes(mine.memberId), 'member ids are not shown');
    const other = groupOn(1, 'other'); // coordinated by broker 2
    await b1.commitOffsets(other, -1, '', [{ topic: 't', partition: 0, offset: 3, metadata: '' }]);
    for (const b of [b1, b2]) assert.deepEqual((await b.listGroups()).map((g) => g.group), [group, other].sort());

    b2.leaveAll(s2);
    await until(async () => (await b1.describeGroup(group)).members.length === 1, 'the closed connection left at the coordinator');
    await until(() => owned(latest(b, s1)).length === TOPIC_PARTITIONS, 'the remaining member owns everything');
    await assert.rejects(b1.describeGroup(groupOn(1, 'nobody')), { errorName: 'UNKNOWN_GROUP' });
  });
});

test('a coordinator move: members are told to rejoin, the new leader replays the offsets, the old generation is fenced, offsets never move backwards', async () => {
  await withCluster([1, 2], async ({ brokers, leadership }) => {
    const [b1, b2] = [brokers.get(1)!, brokers.get(2)!];
    const group = groupOn(0, 'moving'); // coordinated by broker 1 first
    const remote = sink();
    const a = await b2.join(joinReq(group), remote);
    const local = sink();
    const b = await b1.join(joinReq(group), local);
    await until(() => remote.frames.at(-1)?.generationId === b.generationId, 'push to the remote member');
    const mine = latest(a, remote);
    await b2.commitOffsets(group, mine.generationId, mine.memberId, owned(mine).map((partition) => ({ topic: 't', partition, offset: 100, metadata: '' })));
    await b1.commitOffsets(group, b.generationId, b.memberId, owned(b).map((partition) => ({ topic: 't', partition, offset: 200, metadata: '' })));
    const before = (await b1.fetchOffsets(group)).sort((x, y) => x.partition - y.partition);
    assert.equal(before.length, TOPIC_PARTITIONS);

    leadership.move(0, 2);
    const rejoin = 27; // REBALANCE_IN_PROGRESS
    await until(() => local.frames.at(-1)?.errorCode === rejoin, 'the local member told to rejoin');
    await until(() => remote.frames.at(-1)?.errorCode === rejoin, 'the remote member told to rejoin, over the links');
    assert.deepEqual((await b1.fetchOffsets(group)).sort((x, y) => x.partition - y.partition), before, 'replayed by broker 2 (asked through broker 1)');
    assert.equal(await b2.heartbeat(group, mine.memberId, mine.generationId), 'UNKNOWN_MEMBER_ID', 'the new coordinator does not know the old member');
    await assert.rejects(b2.commitOffsets(group, mine.generationId, mine.memberId, [{ topic: 't', partition: owned(mine)[0], offset: 1, metadata: '' }]), { errorName: 'UNKNOWN_MEMBER_ID' });

    const again = await b1.join(joinReq(group), local); // rejoins through broker 1; broker 2 coordinates now
    assert.equal(again.errorCode, 0);
    await b1.commitOffsets(group, again.generationId, again.memberId, [{ topic: 't', partition: 0, offset: 300, metadata: '' }]);
    leadership.move(0, 1); // and back: broker 1 replays the log again, with broker 2's commits
    await until(() => local.frames.at(-1)?.errorCode === rejoin && local.frames.at(-1)?.memberId === again.memberId, 'told to rejoin again');
    const after = (await b2.fetchOffsets(group)).sort((x, y) => x.partition - y.partition);
    assert.equal(after[0].offset, 300);
    for (const [i, o] of after.entries()) assert.ok(o.offset >= before[i].offset, `partition ${o.partition} moved backwards: ${before[i].offset} -> ${o.offset}`);
  });
});

test('a request waits out an election (no leader, then one) up to coordinatorWaitMs; past it LEADER_NOT_AVAILABLE', async () => {
  await withCluster([-1, 2], async ({ brokers, leadership }) => {
    const b2 = brokers.get(2)!;
    const group = groupOn(0, 'electing');
    const waiting = b2.commitOffsets(group, -1, '', [{ topic: 't', partition: 1, offset: 5, metadata: '' }]);
    await new Promise((r) => setTimeout(r, 50));
    leadership.move(0, 1);
    await waiting;
    assert.deepEqual(await b2.fetchOffsets(group), [{ topic: 't', partition: 1, offset: 5, metadata: '' }]);
    leadership.move(0, -1);
    const started = Date.now();
    await assert.rejects(b2.fetchOffsets(group), { errorName: 'LEADER_NOT_AVAILABLE' });
    assert.ok(Date.now() - started >= 250, 'it waited for a leader');
    const answer = await b2.join(joinReq(group), sink());
    assert.equal(answer.errorCode, 5, 'a join answers LEADER_NOT_AVAILABLE (retryable): the SDK joins again');
    await assert.rejects(b2.commitOffsets(group, 3, 'member', [{ topic: 't', partition: 1, offset: 6, metadata: '' }]), { errorName: 'REBALANCE_IN_PROGRESS' }, 'a member is told to rejoin');
  }, { groupLimits: { coordinatorWaitMs: 300 } });
});

test("a closed connection's lost leave is repaired by the coordinator's next push (the connection is gone there)", async () => {
  await withCluster([1, 2], async ({ brokers, net, errors }) => {
    const [b1, b2] = [brokers.get(1)!, brokers.get(2)!];
    const group = groupOn(0, 'lost-leave');
    const s2 = sink();
    await b2.join(joinReq(group), s2);
    net.down.add('2->1');
    b2.leaveAll(s2); // the leave cannot reach broker 1 (retried for coordinatorWaitMs, then given up)
    await until(() => errors.some((e) => e.includes('leave')), 'the leave given up');
    net.down.delete('2->1');
    assert.equal((await b1.describeGroup(group)).members.length, 1, 'still registered at the coordinator');
    const s1 = sink();
    const c = await b1.join(joinReq(group), s1); // the rebalance pushes to broker 2, which no longer has the connection
    await until(async () => (await b1.describeGroup(group)).members.length === 1, 'the gone member removed');
    await until(() => owned(latest(c, s1)).length === TOPIC_PARTITIONS, 'its partitions reassigned');
    assert.equal(s2.frames.length, 0, 'nothing reached the closed connection');
  }, { groupLimits: { coordinatorWaitMs: 200 } });
});

test("a push that overtakes its member's join answer is held and delivered after it", async () => {
  await withCluster([1, 2], async ({ brokers, net }) => {
    const [b1, b2] = [brokers.get(1)!, brokers.get(2)!];
    const group = groupOn(0, 'race');
    net.answerDelayMs.set(GroupForwardType.join, 150);
    const s2 = sink();
    let answeredWith = -1;
    const joining = b2.join(joinReq(group), s2).then((a) => {
      answeredWith = s2.frames.length;
      return a;
    });
    await until(async () => (await b1.describeGroup(group).catch(() => null))?.members.length === 1, 'the join handled at the coordinator');
    net.answerDelayMs.delete(GroupForwardType.join);
    const b = await b1.join(joinReq(group), sink()); // pushes to the joiner before its answer is back
    const a = await joining;
    assert.equal(answeredWith, 0, 'no push reached the connection before its join answer');
    await until(() => s2.frames.length > 0, 'the held push delivered');
    assert.equal(s2.frames.at(-1)!.generationId, b.generationId);
    assert.ok(b.generationId > a.generationId);
  });
});

test('a commit that reaches its coordinator after its deadline is refused and never appended, so it cannot land after a newer one', async () => {
  await withCluster([1, 2], async ({ brokers, net, partitions }) => {
    const [b1, b2] = [brokers.get(1)!, brokers.get(2)!];
    const group = groupOn(0, 'late'); // coordinated by broker 1
    await b2.commitOffsets(group, -1, '', [{ topic: 't', partition: 0, offset: 5, metadata: '' }]);
    const end = partitions[0].logEndOffset;
    net.requestDelayMs.set(GroupForwardType.commit, 300); // delivered after the 100 ms deadline
    const late = b2.commitOffsets(group, -1, '', [{ topic: 't', partition: 0, offset: 6, metadata: '' }]);
    await b1.commitOffsets(group, -1, '', [{ topic: 't', partition: 0, offset: 9, metadata: '' }]); // a newer commit, locally, meanwhile
    await assert.rejects(late, { errorName: 'REQUEST_TIMED_OUT' });
    net.requestDelayMs.delete(GroupForwardType.commit);
    assert.deepEqual(await b2.fetchOffsets(group), [{ topic: 't', partition: 0, offset: 9, metadata: '' }], 'the late commit did not land after the newer one');
    assert.equal(partitions[0].logEndOffset, end + 1, 'only the newer commit was appended');
    // A link that refuses (NOT_CONNECTED) is retried, but only within the deadline.
    net.down.add('2->1');
    const started = Date.now();
    await assert.rejects(b2.commitOffsets(group, -1, '', [{ topic: 't', partition: 0, offset: 10, metadata: '' }]), { errorName: 'NOT_CONNECTED' });
    assert.ok(Date.now() - started < 1000, 'gave up at the commit deadline, not at coordinatorWaitMs');
    net.down.delete('2->1');
  }, { groupLimits: { groupCommitDeadlineMs: 100 } });
});
