/**
 * Group coordinator driver: owns the `Group` cores, runs the session-timeout
 * timer, pushes GroupAssignmentFrames to members after rebalances and
 * persists committed offsets in the `OffsetStore`.
 *
 * Members are bound to a `GroupMemberSink` (a WebSocket session); when the
 * session closes, `leaveAll(sink)` removes its members at once instead of
 * waiting for their session timeout.
 *
 * Pushes are coalesced (docs/groups.md): a joiner gets its assignment in the
 * join answer at once; the other members get it pushed at once after an
 * isolated change, or once per rebalance window when changes come within
 * groupRebalanceDelayMs of a push (rebalance-window.ts), and only when the
 * generation they were last sent is stale: a burst of N joins costs O(N)
 * frames, not N²/2.
 * Invariant: a commit is validated against the current generation; a member
 * not yet pushed the current one is fenced (ILLEGAL_GENERATION) until its
 * push arrives, so two members never commit the same partition in one
 * generation. Member ids are secrets (16 random bytes): describe shows a
 * one-way `displayId` instead.
 *
 * It is the `GroupService` (group-service.ts) of a single node, and in a
 * cluster the coordinator of the groups of one offsets partition this
 * broker leads (offsets-coordinators.ts): `resign` ends it when leadership
 * moves, telling every member to rejoin (REBALANCE_IN_PROGRESS) at the new
 * coordinator.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ErrorTable, RunnelError, type CommittedOffset, type ErrorName, type GroupAssignmentFrame } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import type { PartitionLag } from './consumer-lag.ts';
import { Group, type GroupChange } from './group.ts';
import type { AssignmentStrategy } from './assignor.ts';
import { assertGroupName, groupNameProblem } from './group-name.ts';
import { MemberBindings, type GroupMemberSink } from './member-bindings.ts';
import type { OffsetStore } from './offset-store.ts';
import { topicPartitionKey } from '../metadata/topic-info.ts';
import { decidePush, type PushState } from './rebalance-window.ts';
import type { CommitOptions, GroupDescription, GroupJoin, GroupService, GroupServiceHost, GroupSummary } from './group-service.ts';

export type { GroupMemberSink } from './member-bindings.ts';
export type { GroupDescription, GroupMemberDescription, GroupJoin, GroupService, GroupServiceHost, GroupSummary } from './group-service.ts';

/** Random bytes of a member id: the id is the member's only credential for commits, heartbeats and leaves. */
const MEMBER_ID_BYTES = 16;
/** Bytes of sha256(memberId) shown as `displayId` (enough to tell members apart, nothing to act as one). */
const DISPLAY_ID_BYTES = 6;

export interface GroupCoordinatorDeps extends GroupServiceHost {
  store: OffsetStore;
  /**
   * A fresher highWatermark, asked only when a commit names an offset above `highWatermark`'s answer
   * (a cluster broker's replica may trail the leader the member read from). Absent = no fresher source.
   */
  freshHighWatermark?(topic: string, partition: number): Promise<number | undefined>;
  strategy?: AssignmentStrategy;
  nowMs?: () => number;
}

/** The non-secret display id of a member id. */
export function memberDisplayId(memberId: string): string {
  return createHash('sha256').update(memberId).digest().subarray(0, DISPLAY_ID_BYTES).toString('base64url');
}

export class GroupCoordinator implements GroupService {
  /** Commits validated and not yet durable, per group (entries leave when stored): fetches wait for them. */
  private readonly pendingCommits = new Map<string, Set<Promise<void>>>();
  private readonly groups = new Map<string, Group>();
  private readonly bindings = new MemberBindings();
  /** Push state of groups with members: last push, armed window and its timer (at most one per group). */
  private readonly pushes = new Map<string, PushState & { timer?: NodeJS.Timeout }>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly strategy: AssignmentStrategy;
  /** Set by `resign`/`close`: every request is refused with it (the coordinator moved or is shutting down). */
  private refusal: ErrorName | null = null;

  constructor(private readonly deps: GroupCoordinatorDeps) {
    this.now = deps.nowMs ?? Date.now;
    this.strategy = deps.strategy ?? 'range';
    this.timer = setInterval(() => this.tick(), deps.limits.groupTickMs);
    this.timer.unref();
  }

  /**
   * Joins (memberId '' = new member) and returns the joiner's assignment in
   * the new generation; the other members get theirs in the group's next push.
   */
  async join(req: GroupJoin, sink: GroupMemberSink): Promise<GroupAssignmentFrame> {
    if (this.refusal) return this.errorAssignment(req.requestId, req.group, req.memberId, this.refusal);
    const bad = groupNameProblem(req.group, this.deps.limits.maxGroupNameLength) !== null || req.topics.length === 0;
    if (bad) return this.errorAssignment(req.requestId, req.group, req.memberId, 'INVALID_REQUEST');
    const { minGroupSessionTimeoutMs: lo, maxGroupSessionTimeoutMs: hi } = this.deps.limits;
    const sessionTimeoutMs = Math.min(hi, Math.max(lo, req.sessionTimeoutMs));
    const isNew = req.memberId === '';
    const isHeldHere = !isNew && this.bindings.get(req.group, req.memberId)?.sink === sink;
    if (!isHeldHere && this.bindings.countOf(sink) >= this.deps.limits.maxGroupMembershipsPerConnection) {
      return this.errorAssignment(req.requestId, req.group, req.memberId, 'LIMIT_EXCEEDED');
    }
    let group = this.groups.get(req.group);
    if (!group) {
      if (this.isNewGroupOverLimit(req.group)) return this.errorAssignment(req.requestId, req.group, req.memberId, 'LIMIT_EXCEEDED');
      this.groups.set(req.group, (group = new Group(req.group, this.strategy, this.deps.limits.maxGroupMembers)));
    }
    const memberId = isNew ? randomBytes(MEMBER_ID_BYTES).toString('base64url') : req.memberId;
    const result = group.join({ memberId, isNew, clientId: req.clientId, topics: req.topics, sessionTimeoutMs }, this.deps.partitionCounts(), this.now());
    if (!result.ok) {
      this.maybeForget(group);
      return this.errorAssignment(req.requestId, req.group, req.memberId, result.code);
    }
    this.bindings.bind(req.group, memberId, sink).sentGenerationId = group.generationId;
    this.applyChange(group, result.change);
    return this.assignmentFrame(group, memberId, req.requestId);
  }

  /** null = fine. On ILLEGAL_GENERATION the current assignment is re-sent, unless a push is already scheduled. */
  async heartbeat(groupId: string, memberId: string, generationId: number): Promise<ErrorName | null> {
    if (this.refusal) return 'REBALANCE_IN_PROGRESS';
    const group = this.groups.get(groupId);
    if (!group) return 'UNKNOWN_MEMBER_ID';
    const code = group.heartbeat(memberId, generationId, this.now());
    if (code === 'ILLEGAL_GENERATION' && !this.pushes.get(groupId)?.pending) {
      const binding = this.bindings.get(groupId, memberId);
      if (binding) this.send(binding, group);
    }
    return code;
  }

  async leave(groupId: string, memberId: string): Promise<void> {
    this.leaveNow(groupId, memberId);
  }

  private leaveNow(groupId: string, memberId: string): void {
    const group = this.groups.get(groupId);
    if (!group) return;
    this.applyChange(group, group.leave(memberId));
  }

  /** Whether `sink` holds a membership of a group coordinated here. */
  holdsMembersOf(sink: GroupMemberSink): boolean {
    return this.bindings.countOf(sink) > 0;
  }

  /** The session closed: all its memberships end now (nothing more is sent to it). */
  leaveAll(sink: GroupMemberSink): void {
    for (const { groupId, memberId } of this.bindings.of(sink)) {
      this.bindings.unbind(groupId, memberId);
      this.leaveNow(groupId, memberId);
    }
  }

  /**
   * Validates the name, range, generation and ownership, then durably stores the offsets. Throws
   * RunnelError. With `deadlineMs` (epoch ms), a commit not yet appended by then is refused
   * REQUEST_TIMED_OUT instead; a standalone one lowering a committed offset without `rewind` is refused
   * OFFSET_COMMIT_BACKWARDS (see CommitOptions).
   */
  async commitOffsets(groupId: string, generationId: number, memberId: string, offsets: CommittedOffset[], options: CommitOptions = {}): Promise<void> {
    const { deadlineMs, signal } = options;
    this.checkRefusal(generationId, memberId);
    assertGroupName(groupId, this.deps.limits.maxGroupNameLength);
    const checking = this.checkOffsets(offsets);
    if (checking) {
      await checking;
      this.checkRefusal(generationId, memberId);
    }
    const guarded = generationId === -1 && options.rewind !== true;
    // A commit acknowledged before this one arrived may still be in flight to the store: compare with it too.
    const before = guarded ? this.pendingCommits.get(groupId) : undefined;
    if (before) {
      await Promise.allSettled([...before]);
      this.checkRefusal(generationId, memberId);
    }
    // NB: no await from here to store.commit: the generation check and the commit's registration in
    // pendingCommits must see one state of the group (a rebalance in between would be missed).
    const group = this.groups.get(groupId);
    if (!group && this.isNewGroupOverLimit(groupId)) throw new RunnelError('LIMIT_EXCEEDED', `the broker already holds maxGroups (${this.deps.limits.maxGroups}) groups`);
    const code = group ? group.validateCommit(generationId, memberId, offsets) : generationId === -1 && memberId === '' ? null : 'UNKNOWN_MEMBER_ID';
    if (code) throw new RunnelError(code, code === 'ILLEGAL_GENERATION' ? `generation ${generationId} is stale or a partition is not assigned to this member; use the latest assignment or rejoin the group` : undefined);
    if (deadlineMs !== undefined && this.now() > deadlineMs) {
      throw new RunnelError('REQUEST_TIMED_OUT', `the commit reached group ${groupId}'s coordinator ${this.now() - deadlineMs} ms after its deadline; nothing was stored (commit again)`);
    }
    if (signal?.aborted) throw new RunnelError('REQUEST_TIMED_OUT', `the client of this commit to group ${groupId} went away before it was stored; nothing was stored (commit again)`);
    if (guarded) this.refuseBackwards(groupId, offsets);
    const stored = this.deps.store.commit(groupId, offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata ?? '' })));
    let pending = this.pendingCommits.get(groupId);
    if (!pending) this.pendingCommits.set(groupId, (pending = new Set()));
    pending.add(stored);
    try {
      await stored;
    } finally {
      pending.delete(stored);
      if (pending.size === 0) this.pendingCommits.delete(groupId);
    }
  }

  private refuseBackwards(groupId: string, offsets: readonly CommittedOffset[]): void {
    const committed = new Map(this.deps.store.fetch(groupId, [...new Set(offsets.map((o) => o.topic))]).map((o) => [topicPartitionKey(o.topic, o.partition), o.offset]));
    for (const o of offsets) {
      const current = committed.get(topicPartitionKey(o.topic, o.partition));
      if (current !== undefined && o.offset < current) {
        throw new RunnelError('OFFSET_COMMIT_BACKWARDS', `group ${groupId} has committed ${o.topic}/${o.partition} at ${current}; this standalone commit of ${o.offset} would move it back (nothing was stored; send rewind: true to do that on purpose)`);
      }
    }
  }

  /**
   * Committed offsets, once every commit of the group validated before this
   * call is stored. A commit is validated (owner, generation) before its
   * fdatasync; without the wait, a member handed the partition by a rebalance
   * in between would read the older offset and reprocess what the previous
   * owner had committed.
   */
  async fetchOffsets(groupId: string, topics?: string[]): Promise<CommittedOffset[]> {
    this.checkRefusal();
    assertGroupName(groupId, this.deps.limits.maxGroupNameLength);
    const pending = this.pendingCommits.get(groupId);
    if (pending) await Promise.allSettled([...pending]);
    return this.deps.store.fetch(groupId, topics);
  }

  /** UNKNOWN_GROUP when the group has neither members nor offsets. Member ids are not shown (they are credentials). */
  async describeGroup(groupId: string): Promise<GroupDescription> {
    this.checkRefusal();
    assertGroupName(groupId, this.deps.limits.maxGroupNameLength);
    const group = this.groups.get(groupId);
    const offsets = this.deps.store.fetch(groupId);
    if ((!group || group.members.size === 0) && offsets.length === 0) throw new RunnelError('UNKNOWN_GROUP', `group ${groupId} has no members and no committed offsets`);
    return {
      group: groupId, state: group?.state ?? 'Empty', generationId: group?.generationId ?? 0, protocol: this.strategy,
      members: group ? [...group.members.values()].map((m) => ({
        displayId: memberDisplayId(m.memberId), clientId: m.clientId, topics: m.topics,
        assignment: [...group.assignmentOf(m.memberId)].map(([topic, partitions]) => ({ topic, partitions })),
      })) : [],
      offsets: offsets.map((o) => {
        const hw = this.deps.highWatermark(o.topic, o.partition);
        return { ...o, highWatermark: hw ?? null, lag: hw === undefined ? null : Math.max(0, hw - o.offset) };
      }),
    };
  }

  async listGroups(): Promise<GroupSummary[]> {
    return this.listGroupsNow();
  }

  /** The groups coordinated here (the cluster's listGroups merges every coordinator's). */
  listGroupsNow(): GroupSummary[] {
    if (this.refusal) return [];
    const names = new Set([...this.deps.store.groups(), ...[...this.groups].filter(([, g]) => g.members.size > 0).map(([n]) => n)]);
    return [...names].sort().map((name) => {
      const g = this.groups.get(name);
      return { group: name, state: g?.state ?? 'Empty', members: g?.members.size ?? 0, generationId: g?.generationId ?? 0 };
    });
  }

  /** Lag of every committed offset (for the consumerLag gauge; a scrape keeps the largest maxLagSeries, consumer-lag.ts). */
  lag(): PartitionLag[] {
    if (this.refusal) return [];
    const out: PartitionLag[] = [];
    for (const group of this.deps.store.groups()) {
      for (const o of this.deps.store.fetch(group)) {
        const hw = this.deps.highWatermark(o.topic, o.partition);
        if (hw !== undefined) out.push({ group, topic: o.topic, partition: o.partition, lag: Math.max(0, hw - o.offset) });
      }
    }
    return out;
  }

  /** Topics were created/deleted: groups whose subscribed partition counts changed rebalance. */
  topicsChanged(): void {
    if (this.refusal) return;
    const counts = this.deps.partitionCounts();
    for (const group of [...this.groups.values()]) this.applyChange(group, group.updatePartitionCounts(counts));
  }

  /** Drops a deleted topic's committed offsets. */
  async deleteTopic(topic: string): Promise<void> {
    this.checkRefusal();
    await this.deps.store.deleteTopic(topic);
    this.topicsChanged();
  }

  tick(): void {
    if (this.refusal) return;
    const now = this.now();
    for (const group of [...this.groups.values()]) this.applyChange(group, group.tick(now));
  }

  async close(): Promise<void> {
    this.refusal ??= 'SHUTTING_DOWN';
    clearInterval(this.timer);
    for (const { timer } of this.pushes.values()) clearTimeout(timer);
    this.pushes.clear();
    await this.deps.store.close();
  }

  /**
   * This broker stopped coordinating these groups (its offsets partition got another leader): every
   * member is told REBALANCE_IN_PROGRESS at once, so it rejoins at the new coordinator instead of
   * waiting for a heartbeat to fail; later requests are refused; commits in flight finish or fail on
   * their own (the store refuses new ones). Then the store closes.
   */
  async resign(): Promise<void> {
    if (this.refusal) return this.close();
    this.refusal = 'NOT_LEADER_OR_FOLLOWER';
    for (const group of this.groups.values()) {
      for (const memberId of group.members.keys()) {
        const binding = this.bindings.unbind(group.groupId, memberId);
        binding?.sink.sendAssignment(this.errorAssignment(0, group.groupId, memberId, 'REBALANCE_IN_PROGRESS'));
      }
    }
    this.groups.clear();
    await this.close();
  }

  /** After resign/close: a member's request REBALANCE_IN_PROGRESS (it rejoins), any other the refusal itself. */
  private checkRefusal(generationId = -1, memberId = ''): void {
    if (!this.refusal) return;
    const isMember = generationId !== -1 || memberId !== '';
    const code: ErrorName = isMember && this.refusal === 'NOT_LEADER_OR_FOLLOWER' ? 'REBALANCE_IN_PROGRESS' : this.refusal;
    throw new RunnelError(code, code === 'SHUTTING_DOWN' ? 'the group coordinator is shutting down' : 'the group coordinator moved to another broker; retry (members: join again)');
  }

  /**
   * Offsets must be non-negative integers of existing partitions, at most the
   * partition's highWatermark (the next offset to read; equal to it = caught
   * up). A commit beyond it claims records that do not exist yet: once they
   * are written the group would skip them, while lag reads 0.
   */
  private checkOffsets(offsets: readonly CommittedOffset[]): Promise<void> | undefined {
    const counts = this.deps.partitionCounts();
    const stale: CommittedOffset[] = [];
    for (const o of offsets) {
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) throw new RunnelError('INVALID_REQUEST', `offset ${o.offset} must be a non-negative integer`);
      const n = counts.get(o.topic);
      const exists = n !== undefined && Number.isInteger(o.partition) && o.partition >= 0 && o.partition < n;
      const hw = exists ? this.deps.highWatermark(o.topic, o.partition) : undefined;
      if (exists && (hw === undefined || o.offset > hw) && this.deps.freshHighWatermark) stale.push(o);
      else checkOffsetRange(o, hw);
    }
    // Only offsets above this broker's view of the highWatermark wait for a fresher one: a commit of
    // offsets this broker can check is validated in the call, as on a single node.
    if (stale.length === 0) return undefined;
    const fresh = this.deps.freshHighWatermark!;
    return Promise.all(stale.map(async (o) => checkOffsetRange(o, (await fresh(o.topic, o.partition)) ?? this.deps.highWatermark(o.topic, o.partition)))).then(() => undefined);
  }

  /**
   * A group name neither live, holding offsets nor with a commit in flight,
   * when the broker already holds `maxGroups` groups. Commits in flight count:
   * a group's offsets reach the store only after the fdatasync, and concurrent
   * standalone commits to fresh names must not all pass the check meanwhile.
   */
  private isNewGroupOverLimit(groupId: string): boolean {
    if (this.groups.has(groupId) || this.pendingCommits.has(groupId) || this.deps.store.fetch(groupId).length > 0) return false;
    return new Set([...this.groups.keys(), ...this.pendingCommits.keys(), ...this.deps.store.groups()]).size >= this.deps.limits.maxGroups;
  }

  /** Tells removed members at once; schedules the coalesced push of a rebalance; forgets an empty group. */
  private applyChange(group: Group, change: GroupChange): void {
    for (const id of change.removed) {
      const binding = this.bindings.unbind(group.groupId, id);
      binding?.sink.sendAssignment(this.errorAssignment(0, group.groupId, id, 'UNKNOWN_MEMBER_ID'));
    }
    if (change.rebalanced && group.members.size > 0) this.schedulePush(group.groupId);
    this.maybeForget(group);
  }

  /** Pushes now, or (re)arms the group's window timer, for one more change (rebalance-window.ts). */
  private schedulePush(groupId: string): void {
    const { groupRebalanceDelayMs, groupRebalanceMaxDelayMs } = this.deps.limits;
    const nowMs = this.now();
    let state = this.pushes.get(groupId);
    if (!state) this.pushes.set(groupId, (state = {}));
    const decision = decidePush(state, nowMs, groupRebalanceDelayMs, groupRebalanceMaxDelayMs);
    if (decision.kind === 'keep') return;
    if (decision.kind === 'pushNow') return this.pushAssignments(groupId);
    clearTimeout(state.timer);
    state.pending = decision.window;
    state.timer = setTimeout(() => this.pushAssignments(groupId), Math.max(0, decision.window.dueMs - nowMs));
    state.timer.unref();
  }

  /** Every member whose last assignment is of an older generation gets the current one. */
  private pushAssignments(groupId: string): void {
    const state = this.pushes.get(groupId);
    if (state) {
      clearTimeout(state.timer);
      this.pushes.set(groupId, { lastPushMs: this.now() });
    }
    const group = this.groups.get(groupId);
    if (!group) return;
    for (const memberId of group.members.keys()) {
      const binding = this.bindings.get(groupId, memberId);
      if (binding && binding.sentGenerationId !== group.generationId) this.send(binding, group);
    }
  }

  private send(binding: { memberId: string; sink: GroupMemberSink; sentGenerationId: number }, group: Group): void {
    binding.sentGenerationId = group.generationId;
    binding.sink.sendAssignment(this.assignmentFrame(group, binding.memberId, 0));
  }

  /** A group without members has nothing to push; without offsets too, it is dropped (freeing its maxGroups slot). */
  private maybeForget(group: Group): void {
    if (group.members.size > 0) return;
    clearTimeout(this.pushes.get(group.groupId)?.timer);
    this.pushes.delete(group.groupId);
    if (this.deps.store.fetch(group.groupId).length === 0 && this.groups.get(group.groupId) === group) this.groups.delete(group.groupId);
  }

  private assignmentFrame(group: Group, memberId: string, requestId: number): GroupAssignmentFrame {
    return {
      type: 'groupAssignment', requestId, group: group.groupId, memberId, generationId: group.generationId, errorCode: 0,
      assignments: [...group.assignmentOf(memberId)].map(([topic, partitions]) => ({ topic, partitions })),
    };
  }

  private errorAssignment(requestId: number, group: string, memberId: string, code: ErrorName): GroupAssignmentFrame {
    return { type: 'groupAssignment', requestId, group, memberId, generationId: -1, errorCode: errorCodeOf(code), assignments: [] };
  }
}

/** UNKNOWN_TOPIC_OR_PARTITION without a highWatermark (no such partition); OFFSET_OUT_OF_RANGE above it. */
function checkOffsetRange(o: CommittedOffset, hw: number | undefined): void {
  if (hw === undefined) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `${o.topic}/${o.partition} does not exist`);
  if (o.offset > hw) {
    throw new RunnelError('OFFSET_OUT_OF_RANGE', `offset ${o.offset} of ${o.topic}/${o.partition} is beyond its highWatermark ${hw}; commit the next offset to read (at most the highWatermark)`, {
      details: { highWatermark: hw },
    });
  }
}

function errorCodeOf(name: ErrorName): number {
  return ErrorTable[name].code;
}
