/**
 * `ForwardingGroupService`: a cluster broker's `GroupService`
 * (groups/group-service.ts). Group g is coordinated by the leader of
 * `__consumer_offsets` partition murmur2(g) % N (groups/coordinator-placement.ts):
 * when that is this broker, the call goes to the local coordinator
 * (groups/offsets-coordinators.ts); otherwise it is forwarded over the
 * internal links (group-forwarding-protocol.ts) and answered there. Both
 * ends live here: the constructor registers the coordinator-side handlers.
 *
 * Member pushes: the coordinator holds, for each connection on another
 * broker, a `RemoteMemberSink` that pushes assignment frames back over the
 * links to that broker, which hands them to the connection (docs/groups.md
 * says why push-back and not polling: rebalances reach remote members as
 * fast as local ones, and the coordinator code is the same for both).
 * Ordering: pushes to one connection go one at a time, newest frame per
 * member; a push that arrives while that connection's join for the group is
 * still on its way back is held and delivered after the join answer.
 *
 * Coordinator moves: a request finding no coordinator (no leader, leader
 * still loading, NOT_LEADER_OR_FOLLOWER from a broker that no longer leads,
 * the link down) waits for the next leadership change and is sent again,
 * up to `coordinatorWaitMs`. A member's heartbeat is not retried: the member
 * is told to rejoin (REBALANCE_IN_PROGRESS) when its coordinator moved or
 * does not know it, and otherwise heartbeats again.
 *
 * Invariant: a request is answered by the coordinator of the epoch that
 * answered it, never by two; a connection's memberships end when it closes
 * (leave forwarded; when the leave is lost, the coordinator's next push
 * finds the connection gone and ends them, or the session times out).
 */
import { randomBytes } from 'node:crypto';
import { ErrorTable, RunnelError, errorNameOf, type CommittedOffset, type ErrorName, type GroupAssignmentFrame } from '@runnel/client/codec';
import type { GroupCoordinator, GroupCoordinatorDeps } from '../groups/coordinator.ts';
import { resolveClusterGroupLimits, type ClusterGroupLimits } from '../groups/cluster-group-limits.ts';
import { coordinatorPartitionOf } from '../groups/coordinator-placement.ts';
import type { PartitionLag } from '../groups/consumer-lag.ts';
import type { CommitOptions, GroupDescription, GroupJoin, GroupService, GroupServiceHost, GroupSummary } from '../groups/group-service.ts';
import type { GroupMemberSink } from '../groups/member-bindings.ts';
import { OffsetsCoordinators, type OffsetsLeadership } from '../groups/offsets-coordinators.ts';
import {
  GroupForwardType, decodeGroupAnswer, decodeGroupRequest, encodeGroupAnswer, encodeGroupError, encodeGroupRequest,
  type GroupAnswers, type GroupForwardTypeId, type GroupRequest,
} from './group-forwarding-protocol.ts';
import type { PeerRequester, RequestHandlers } from './leader-forwarder.ts';

export interface ForwardingGroupServiceDeps {
  brokerId: number;
  /** `__consumer_offsets` as this broker sees it. */
  leadership: OffsetsLeadership;
  links: PeerRequester;
  server: RequestHandlers;
  host: GroupServiceHost;
  /** See GroupCoordinatorDeps.freshHighWatermark: a cluster asks the partition's leader when its replica trails. */
  freshHighWatermark?: GroupCoordinatorDeps['freshHighWatermark'];
  limits?: Partial<ClusterGroupLimits>;
  /**
   * Creates `__consumer_offsets` (ensureOffsetsTopic); called, at most once per offsetsLoadPollMs, when a
   * group request finds the topic missing, so it is created once the cluster has formed rather than by
   * the first broker to start (whose replication factor would count only the brokers live then). It
   * rejects while too few brokers are live for the topic's replication factor; a later request tries again.
   */
  createOffsetsTopic?(): Promise<unknown>;
  /** Errors nobody waits for (a failed load, a lost leave, a failed push): logged by the wiring. */
  onError?(what: string, error: unknown): void;
  nowMs?: () => number;
}

/** Errors after which a request is sent again to whoever coordinates next. */
const MOVED: ReadonlySet<ErrorName> = new Set(['NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'NOT_CONNECTED', 'SHUTTING_DOWN']);
/** Period of the sweep that forgets remote connections no coordinator here holds members of. */
const REMOTE_SINK_SWEEP_MS = 10_000;
const NOT_LEADER_CODE = ErrorTable.NOT_LEADER_OR_FOLLOWER.code;
const SHUTTING_DOWN_CODE = ErrorTable.SHUTTING_DOWN.code;

/** A connection on this broker with memberships coordinated elsewhere. */
interface LocalConnection {
  readonly key: string;
  readonly sink: GroupMemberSink;
  /** group → member id, of memberships whose coordinator is on another broker (from join answers). */
  readonly remote: Map<string, string>;
  /** group → pushes held while a join of the group is on its way back (at most maxPushesHeldPerJoin). */
  readonly joining: Map<string, GroupAssignmentFrame[]>;
  closed: boolean;
}

export class ForwardingGroupService implements GroupService {
  private readonly limits: ClusterGroupLimits;
  private readonly coordinators: OffsetsCoordinators;
  /** Prefix of this process's connection keys: a restarted broker's keys never name an old connection. */
  private readonly incarnation = randomBytes(6).toString('base64url');
  private nextConnection = 1;
  private readonly connections = new Map<GroupMemberSink, LocalConnection>();
  private readonly connectionsByKey = new Map<string, LocalConnection>();
  /** Coordinator side: connections of other brokers, by `${brokerId}/${key}`. */
  private readonly remoteSinks = new Map<string, RemoteMemberSink>();
  private readonly leadershipWaiters = new Set<() => void>();
  private readonly offLeadership: () => void;
  private readonly sweepTimer: NodeJS.Timeout;
  private creatingOffsetsTopic: Promise<unknown> | null = null;
  private lastCreateAttemptMs = -Infinity;
  /** The message of the last failed creation of `__consumer_offsets` ('' after a success), so a repeated one is reported once. */
  private lastCreateError = '';
  private closed = false;

  constructor(private readonly deps: ForwardingGroupServiceDeps) {
    this.limits = resolveClusterGroupLimits(deps.limits);
    this.coordinators = new OffsetsCoordinators({
      leadership: deps.leadership, host: deps.host, limits: this.limits, freshHighWatermark: deps.freshHighWatermark, nowMs: deps.nowMs,
      onLoadError: (p, e) => deps.onError?.(`loading offsets partition ${p}`, e),
    });
    this.offLeadership = deps.leadership.onLeadershipChange(() => {
      for (const wake of [...this.leadershipWaiters]) wake();
    });
    this.sweepTimer = setInterval(() => this.sweepRemoteSinks(), REMOTE_SINK_SWEEP_MS);
    this.sweepTimer.unref();
    this.serve(deps.server);
  }

  /** The offsets partition of `group`. */
  /** The offsets partition of `group`; LEADER_NOT_AVAILABLE while `__consumer_offsets` does not exist yet. */
  partitionOf(group: string): number {
    const n = this.deps.leadership.partitions;
    if (n <= 0) {
      this.maybeCreateOffsetsTopic();
      throw new RunnelError('LEADER_NOT_AVAILABLE', `${OFFSETS_PARTITIONS_NAME} does not exist yet (it is created on the first group request)`);
    }
    return coordinatorPartitionOf(group, n);
  }

  /** One creation in flight at a time, at most one attempt per offsetsLoadPollMs (a failure, e.g. too few brokers yet, is retried by a later request). */
  private maybeCreateOffsetsTopic(): void {
    const { createOffsetsTopic } = this.deps;
    const now = (this.deps.nowMs ?? Date.now)();
    if (!createOffsetsTopic || this.creatingOffsetsTopic || now - this.lastCreateAttemptMs < this.limits.offsetsLoadPollMs) return;
    this.lastCreateAttemptMs = now;
    this.creatingOffsetsTopic = createOffsetsTopic()
      .then(() => { this.lastCreateError = ''; }, (e: unknown) => {
        // NB: while it waits for brokers (ensureOffsetsTopic) each attempt fails alike: reported once, not every offsetsLoadPollMs.
        const message = (e as Error)?.message ?? String(e);
        if (message !== this.lastCreateError) this.deps.onError?.(`creating ${OFFSETS_PARTITIONS_NAME}`, e);
        this.lastCreateError = message;
      })
      .finally(() => { this.creatingOffsetsTopic = null; });
  }

  // ---- GroupService, member's side ----

  async join(req: GroupJoin, sink: GroupMemberSink): Promise<GroupAssignmentFrame> {
    const refuse = (code: ErrorName): GroupAssignmentFrame => ({
      type: 'groupAssignment', requestId: req.requestId, group: req.group, memberId: req.memberId, generationId: -1, errorCode: ErrorTable[code].code, assignments: [],
    });
    const connection = this.connectionOf(sink);
    const isHeld = connection.remote.get(req.group) === req.memberId && req.memberId !== '';
    if (!isHeld && connection.remote.size >= this.deps.host.limits.maxGroupMembershipsPerConnection) return refuse('LIMIT_EXCEEDED');
    const held = connection.joining.get(req.group) ?? [];
    connection.joining.set(req.group, held);
    let answer: GroupAssignmentFrame;
    let isRemote = false;
    try {
      answer = await this.route(req.group, async (local) => {
        isRemote = false;
        const a = await local.join(req, sink);
        if (a.errorCode === NOT_LEADER_CODE || a.errorCode === SHUTTING_DOWN_CODE) throw new RunnelError(a.errorCode === NOT_LEADER_CODE ? 'NOT_LEADER_OR_FOLLOWER' : 'SHUTTING_DOWN');
        return a;
      }, async (leader) => {
        isRemote = true;
        const a = await this.request(leader, GroupForwardType.join, { sinkKey: connection.key, ...req });
        if (a.errorCode === NOT_LEADER_CODE || a.errorCode === SHUTTING_DOWN_CODE) throw new RunnelError(a.errorCode === NOT_LEADER_CODE ? 'NOT_LEADER_OR_FOLLOWER' : 'SHUTTING_DOWN');
        return a;
      });
    } catch (e) {
      connection.joining.delete(req.group);
      if (e instanceof RunnelError) return refuse(MOVED.has(e.errorName) ? 'LEADER_NOT_AVAILABLE' : e.errorName);
      throw e;
    }
    connection.joining.delete(req.group);
    if (answer.errorCode === 0 && isRemote) {
      if (connection.closed) {
        // The connection closed while its join travelled: that membership ends now, not at its session timeout.
        this.forgetRemoteLeave(req.group, answer.memberId);
      } else {
        connection.remote.set(req.group, answer.memberId);
      }
    } else if (answer.errorCode === 0) {
      connection.remote.delete(req.group); // coordinated here now (the local coordinator holds the binding)
    }
    // NB: held pushes go out after the session sent the join answer (it sends when this promise resolves,
    // within the same turn of microtasks); the SDK ignores a push that arrives before its join answer.
    if (held.length > 0) setImmediate(() => { for (const f of held) this.deliver(connection, f); });
    return { ...answer, requestId: req.requestId };
  }

  async heartbeat(group: string, memberId: string, generationId: number): Promise<ErrorName | null> {
    try {
      const p = this.partitionOf(group);
      const local = await this.coordinators.coordinatorOf(p, 0).catch(() => undefined);
      if (local) return await local.heartbeat(group, memberId, generationId);
      const leader = this.deps.leadership.leaderOf(p);
      if (leader < 0 || leader === this.deps.brokerId) return null; // electing or loading: the next heartbeat asks again
      const { errorCode } = await this.request(leader, GroupForwardType.heartbeat, { group, memberId, generationId });
      return errorCode === 0 ? null : errorNameOf(errorCode);
    } catch (e) {
      if (!(e instanceof RunnelError)) throw e;
      // The broker asked no longer coordinates the group: the member rejoins wherever it is now.
      if (e.errorName === 'NOT_LEADER_OR_FOLLOWER') return 'REBALANCE_IN_PROGRESS';
      if (e.errorName === 'NOT_CONNECTED' || e.errorName === 'REQUEST_TIMED_OUT' || e.errorName === 'SHUTTING_DOWN' || e.errorName === 'LEADER_NOT_AVAILABLE') return null;
      throw e;
    }
  }

  async leave(group: string, memberId: string): Promise<void> {
    for (const connection of this.connections.values()) if (connection.remote.get(group) === memberId) connection.remote.delete(group);
    await this.route(group, (local) => local.leave(group, memberId), async (leader) => {
      await this.request(leader, GroupForwardType.leave, { group, memberId });
    });
  }

  leaveAll(sink: GroupMemberSink): void {
    for (const c of this.coordinators.loaded()) c.leaveAll(sink);
    const connection = this.connections.get(sink);
    if (!connection) return;
    connection.closed = true;
    this.connections.delete(sink);
    this.connectionsByKey.delete(connection.key);
    for (const [group, memberId] of connection.remote) this.forgetRemoteLeave(group, memberId);
    connection.remote.clear();
  }

  /**
   * NB: the commit carries a deadline (groupCommitDeadlineMs from now, unless given), checked by the
   * coordinator right before it appends: retrying across a coordinator move, or a request the links
   * deliver late after a partition heals, can then never append a commit after its client gave up and
   * committed a newer offset elsewhere (seen in the fault suite: a retried commit landed 600 ms after a
   * newer one and a fetch answered the older offset).
   */
  commitOffsets(group: string, generationId: number, memberId: string, offsets: CommittedOffset[], options: CommitOptions = {}): Promise<void> {
    const { signal, rewind } = options;
    const isMember = generationId !== -1 || memberId !== '';
    const deadline = options.deadlineMs ?? (this.deps.nowMs ?? Date.now)() + this.limits.groupCommitDeadlineMs;
    // NB: `signal` (the client went away) stops a forward still waiting for its link, as the deadline stops one that arrives late.
    return this.route(group, (local) => local.commitOffsets(group, generationId, memberId, offsets, { deadlineMs: deadline, signal, rewind }), async (leader) => {
      if (signal?.aborted) throw new RunnelError('REQUEST_TIMED_OUT', `the client of this commit to group ${group} went away before it was forwarded; nothing was stored (commit again)`);
      await this.request(leader, GroupForwardType.commit, { group, generationId, memberId, offsets: offsets.map((o) => ({ ...o, metadata: o.metadata ?? '' })), deadlineMs: deadline, rewind }, undefined, signal);
    }, deadline).catch((e: unknown) => {
      // A member whose coordinator cannot be found rejoins (the SDK keeps the offsets pending meanwhile).
      if (isMember && e instanceof RunnelError && MOVED.has(e.errorName)) throw new RunnelError('REBALANCE_IN_PROGRESS', `group ${group}: ${e.message}`);
      throw e;
    });
  }

  /** Answered by a coordinator only after its read barrier (OffsetsCoordinators.confirmedCoordinatorOf): never by a deposed one from memory. */
  fetchOffsets(group: string, topics?: string[]): Promise<CommittedOffset[]> {
    return this.route(group, (local) => local.fetchOffsets(group, topics), async (leader) => (await this.request(leader, GroupForwardType.fetch, { group, topics })).offsets, undefined, true);
  }

  /** As fetchOffsets: behind the read barrier. */
  describeGroup(group: string): Promise<GroupDescription> {
    return this.route(group, (local) => local.describeGroup(group), (leader) => this.request(leader, GroupForwardType.describe, { group }), undefined, true);
  }

  /** Every coordinator's groups: this broker's, and each other leader's (one that does not answer is left out, reported to onError). */
  async listGroups(): Promise<GroupSummary[]> {
    const leaders = new Set<number>();
    for (let p = 0; p < this.deps.leadership.partitions; p++) {
      const leader = this.deps.leadership.leaderOf(p);
      if (leader >= 0 && leader !== this.deps.brokerId && !this.coordinators.isLoading(p)) leaders.add(leader);
    }
    const remote = await Promise.all([...leaders].map((b) => this.request(b, GroupForwardType.list, {}).then((a) => a.groups, (e: unknown) => {
      this.deps.onError?.(`listing the groups of broker ${b}`, e);
      return [];
    })));
    const byName = new Map<string, GroupSummary>();
    for (const g of [...this.coordinators.listGroups(), ...remote.flat()]) byName.set(g.group, g);
    return [...byName.values()].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }

  lag(): PartitionLag[] {
    return this.coordinators.lag();
  }

  topicsChanged(): void {
    this.coordinators.topicsChanged();
  }

  /** Tombstones the topic in every offsets partition, at each partition's coordinator. Rejects naming the partitions it could not reach. */
  async deleteTopic(topic: string): Promise<void> {
    const results = await Promise.allSettled(Array.from({ length: this.deps.leadership.partitions }, (_, p) => this.routePartition(
      () => p, (local) => local.deleteTopic(topic), async (leader) => { await this.request(leader, GroupForwardType.deleteTopic, { topic, partition: p }); },
    )));
    const failed = results.flatMap((r, p) => (r.status === 'rejected' ? [p] : []));
    if (failed.length > 0) {
      const first = (results[failed[0]] as PromiseRejectedResult).reason as unknown;
      throw new RunnelError(first instanceof RunnelError ? first.errorName : 'UNKNOWN_SERVER_ERROR', `topic ${topic} is deleted, but its committed offsets in ${OFFSETS_PARTITIONS_NAME} partitions ${failed.join(', ')} could not be removed: ${(first as Error)?.message ?? first}`, { cause: first });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.offLeadership();
    await this.creatingOffsetsTopic;
    for (const wake of [...this.leadershipWaiters]) wake();
    await this.coordinators.close();
    this.deps.leadership.close?.();
  }

  // ---- routing ----

  private route<T>(group: string, local: (c: GroupCoordinator) => Promise<T>, remote: (leader: number) => Promise<T>, untilMs?: number, isRead = false): Promise<T> {
    return this.routePartition(() => this.partitionOf(group), local, remote, untilMs, isRead);
  }

  /**
   * Runs the request at p's coordinator, waiting out moves up to coordinatorWaitMs, or `untilMs` if sooner (see the file header).
   * `isRead`: answered from the coordinator's memory, so a local coordinator passes the read barrier first.
   */
  private async routePartition<T>(partitionOf: () => number, local: (c: GroupCoordinator) => Promise<T>, remote: (leader: number) => Promise<T>, untilMs?: number, isRead = false): Promise<T> {
    const now = this.deps.nowMs ?? Date.now;
    const deadline = Math.min(now() + this.limits.coordinatorWaitMs, untilMs ?? Infinity);
    for (;;) {
      if (this.closed) throw new RunnelError('SHUTTING_DOWN', 'the broker is shutting down');
      try {
        const p = partitionOf();
        const waitMs = Math.max(0, deadline - now());
        const coordinator = await (isRead ? this.coordinators.confirmedCoordinatorOf(p, waitMs) : this.coordinators.coordinatorOf(p, waitMs));
        if (coordinator) return await local(coordinator);
        const leader = this.deps.leadership.leaderOf(p);
        if (leader >= 0 && leader !== this.deps.brokerId) return await remote(leader);
        throw new RunnelError('LEADER_NOT_AVAILABLE', leader < 0
          ? `${OFFSETS_PARTITIONS_NAME} partition ${p} (the group's coordinator) has no leader right now`
          : `${OFFSETS_PARTITIONS_NAME} partition ${p}: this broker was elected its leader and is still loading it`);
      } catch (e) {
        const left = deadline - now();
        if (!(e instanceof RunnelError) || !MOVED.has(e.errorName) || left <= 0) throw e;
        await this.waitForLeadershipChange(Math.min(left, this.limits.offsetsLoadPollMs));
      }
    }
  }

  private waitForLeadershipChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.leadershipWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.leadershipWaiters.add(done);
    });
  }

  private async request<T extends GroupForwardTypeId>(brokerId: number, type: T, body: GroupRequest<T>, timeoutMs = this.limits.groupForwardTimeoutMs, signal?: AbortSignal): Promise<GroupAnswers[T]> {
    return decodeGroupAnswer(type, await this.deps.links.request(brokerId, type, encodeGroupRequest(type, body), timeoutMs, signal));
  }

  /** A leave nobody waits for (a closed connection's memberships elsewhere). */
  private forgetRemoteLeave(group: string, memberId: string): void {
    this.route(group, (local) => local.leave(group, memberId), async (leader) => {
      await this.request(leader, GroupForwardType.leave, { group, memberId });
    }).catch((e: unknown) => this.deps.onError?.(`forwarding the leave of a closed connection's member of group ${group}`, e));
  }

  private connectionOf(sink: GroupMemberSink): LocalConnection {
    let connection = this.connections.get(sink);
    if (!connection) {
      connection = { key: `${this.incarnation}.${this.nextConnection++}`, sink, remote: new Map(), joining: new Map(), closed: false };
      this.connections.set(sink, connection);
      this.connectionsByKey.set(connection.key, connection);
    }
    return connection;
  }

  /** A push from a coordinator for one of this broker's connections. */
  private deliver(connection: LocalConnection, frame: GroupAssignmentFrame): void {
    if (connection.closed) return;
    const held = connection.joining.get(frame.group);
    if (held) {
      held.push(frame);
      if (held.length > this.limits.maxPushesHeldPerJoin) held.shift();
      return;
    }
    if (frame.errorCode !== 0 && connection.remote.get(frame.group) === frame.memberId) connection.remote.delete(frame.group);
    connection.sink.sendAssignment(frame);
  }

  // ---- coordinator's side ----

  /** The coordinator of p here, or NOT_LEADER_OR_FOLLOWER (the sender looks again and retries). */
  private async localCoordinator(group: string, isRead = false): Promise<GroupCoordinator> {
    const p = this.partitionOf(group);
    const c = await (isRead ? this.coordinators.confirmedCoordinatorOf(p, this.limits.coordinatorWaitMs) : this.coordinators.coordinatorOf(p, this.limits.coordinatorWaitMs));
    if (!c) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `broker ${this.deps.brokerId} does not coordinate group ${group} (${OFFSETS_PARTITIONS_NAME} partition ${p} is led by ${this.deps.leadership.leaderOf(p)})`);
    return c;
  }

  private remoteSinkOf(brokerId: number, key: string): RemoteMemberSink {
    const id = `${brokerId}/${key}`;
    let sink = this.remoteSinks.get(id);
    if (!sink) {
      sink = new RemoteMemberSink(brokerId, key, {
        push: (frame) => this.request(brokerId, GroupForwardType.push, { sinkKey: key, frame }, this.limits.groupPushTimeoutMs),
        gone: () => {
          for (const c of this.coordinators.loaded()) c.leaveAll(sink!);
          this.remoteSinks.delete(id);
        },
        onError: (e) => this.deps.onError?.(`pushing an assignment to broker ${brokerId}`, e),
      });
      this.remoteSinks.set(id, sink);
    }
    return sink;
  }

  /** Forgets remote connections no coordinator here holds members of. */
  private sweepRemoteSinks(): void {
    const loaded = this.coordinators.loaded();
    for (const [id, sink] of this.remoteSinks) {
      if (!sink.isIdle || loaded.some((c) => c.holdsMembersOf(sink))) continue;
      this.remoteSinks.delete(id);
    }
  }

  private serve(server: RequestHandlers): void {
    const handle = <T extends GroupForwardTypeId>(type: T, handler: (body: GroupRequest<T>, from: number) => Promise<GroupAnswers[T]>) => {
      server.handle(type, async (bytes, from) => {
        try {
          return encodeGroupAnswer(type, await handler(decodeGroupRequest(type, bytes), from));
        } catch (e) {
          return encodeGroupError(e);
        }
      });
    };
    handle(GroupForwardType.join, async ({ sinkKey, ...req }, from) => {
      const c = await this.localCoordinator(req.group);
      return c.join(req, this.remoteSinkOf(from, sinkKey));
    });
    handle(GroupForwardType.heartbeat, async ({ group, memberId, generationId }) => {
      const code = await (await this.localCoordinator(group)).heartbeat(group, memberId, generationId);
      return { errorCode: code === null ? 0 : ErrorTable[code].code };
    });
    handle(GroupForwardType.leave, async ({ group, memberId }) => {
      await (await this.localCoordinator(group)).leave(group, memberId);
      return {};
    });
    handle(GroupForwardType.commit, async ({ group, generationId, memberId, offsets, deadlineMs, rewind }) => {
      await (await this.localCoordinator(group)).commitOffsets(group, generationId, memberId, offsets, { deadlineMs, rewind });
      return {};
    });
    handle(GroupForwardType.fetch, async ({ group, topics }) => ({ offsets: await (await this.localCoordinator(group, true)).fetchOffsets(group, topics) }));
    handle(GroupForwardType.describe, async ({ group }) => (await this.localCoordinator(group, true)).describeGroup(group));
    handle(GroupForwardType.list, async () => ({ groups: this.coordinators.listGroups() }));
    handle(GroupForwardType.deleteTopic, async ({ topic, partition }) => {
      const c = partition < this.deps.leadership.partitions ? await this.coordinators.coordinatorOf(partition, this.limits.coordinatorWaitMs) : undefined;
      if (!c) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `broker ${this.deps.brokerId} does not lead ${OFFSETS_PARTITIONS_NAME} partition ${partition}`);
      await c.deleteTopic(topic);
      return {};
    });
    handle(GroupForwardType.push, async ({ sinkKey, frame }) => {
      const connection = this.connectionsByKey.get(sinkKey);
      if (!connection || connection.closed) return { delivered: false };
      this.deliver(connection, frame);
      return { delivered: true };
    });
  }
}

const OFFSETS_PARTITIONS_NAME = '__consumer_offsets';


/**
 * The coordinator's `GroupMemberSink` for a connection on another broker: frames are pushed over the
 * links one at a time; while one is in flight, only the newest frame per member waits (a newer
 * assignment supersedes an older one), so the queue is bounded by the connection's memberships.
 */
class RemoteMemberSink implements GroupMemberSink {
  private readonly queued = new Map<string, GroupAssignmentFrame>();
  private sending = false;

  constructor(
    readonly brokerId: number,
    readonly key: string,
    private readonly io: {
      push(frame: GroupAssignmentFrame): Promise<{ delivered: boolean }>;
      /** The broker answered that the connection is gone. */
      gone(): void;
      onError(e: unknown): void;
    },
  ) {}

  get isIdle(): boolean {
    return !this.sending && this.queued.size === 0;
  }

  sendAssignment(frame: GroupAssignmentFrame): void {
    const member = `${frame.group}\0${frame.memberId}`;
    this.queued.delete(member); // re-inserted last: frames go in the order their latest version was queued
    this.queued.set(member, frame);
    if (!this.sending) void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      for (;;) {
        const next = this.queued.entries().next();
        if (next.done) return;
        const [member, frame] = next.value;
        this.queued.delete(member);
        try {
          const { delivered } = await this.io.push(frame);
          if (!delivered) {
            this.queued.clear();
            this.io.gone();
            return;
          }
        } catch (e) {
          // Link down or slow: this frame is lost; the member's next heartbeat gets the assignment re-sent
          // (ILLEGAL_GENERATION) or its session times out.
          this.io.onError(e);
        }
      }
    } finally {
      this.sending = false;
    }
  }
}
