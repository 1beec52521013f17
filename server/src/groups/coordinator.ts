/**
 * Group coordinator driver: owns the `Group` cores, runs the session-timeout
 * timer, pushes GroupAssignmentFrames to members on every rebalance and
 * persists committed offsets in the `OffsetStore`.
 *
 * Members are bound to a `GroupMemberSink` (a WebSocket session); when the
 * session closes, `leaveAll(sink)` removes its members at once instead of
 * waiting for their session timeout.
 * Invariant: a rebalance's assignments are sent to every member before any
 * later commit is validated (both happen on the one JS thread, in order).
 */
import { randomBytes } from 'node:crypto';
import { ErrorTable, RunnelError, type CommittedOffset, type ErrorName, type GroupAssignmentFrame } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import { Group, type GroupChange } from './group.ts';
import type { AssignmentStrategy } from './assignor.ts';
import type { OffsetStore } from './offset-store.ts';

/** Where a member's assignment frames go (the WebSocket session). */
export interface GroupMemberSink {
  sendAssignment(frame: GroupAssignmentFrame): void;
}

export interface GroupCoordinatorDeps {
  store: OffsetStore;
  limits: Limits;
  /** Current partition count per existing topic. */
  partitionCounts(): ReadonlyMap<string, number>;
  /** highWatermark of a partition, undefined if unknown (for lag). */
  highWatermark(topic: string, partition: number): number | undefined;
  strategy?: AssignmentStrategy;
  nowMs?: () => number;
}

export interface GroupMemberDescription {
  memberId: string; clientId: string; topics: string[];
  assignment: { topic: string; partitions: number[] }[];
}
export interface GroupDescription {
  group: string; state: 'Empty' | 'Stable'; generationId: number; protocol: AssignmentStrategy;
  members: GroupMemberDescription[];
  offsets: (CommittedOffset & { highWatermark: number | null; lag: number | null })[];
}

export class GroupCoordinator {
  /** Commits validated and not yet durable, per group (entries leave when stored): fetches wait for them. */
  private readonly pendingCommits = new Map<string, Set<Promise<void>>>();
  private readonly groups = new Map<string, Group>();
  private readonly sinks = new Map<string, GroupMemberSink>(); // "group\0member" → sink
  /** sink → its "group\0member" keys (bounds memberships per connection, and makes leaveAll O(own)). */
  private readonly memberships = new Map<GroupMemberSink, Set<string>>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly strategy: AssignmentStrategy;

  constructor(private readonly deps: GroupCoordinatorDeps) {
    this.now = deps.nowMs ?? Date.now;
    this.strategy = deps.strategy ?? 'range';
    this.timer = setInterval(() => this.tick(), deps.limits.groupTickMs);
    this.timer.unref();
  }

  /** Joins (memberId '' = new member) and returns the joiner's assignment; other members get theirs pushed. */
  join(req: { requestId: number; group: string; memberId: string; clientId: string; topics: string[]; sessionTimeoutMs: number }, sink: GroupMemberSink): GroupAssignmentFrame {
    const bad = this.checkGroupName(req.group) ?? (req.topics.length === 0 ? 'INVALID_REQUEST' : null);
    if (bad) return this.errorAssignment(req.requestId, req.group, req.memberId, bad);
    const { minGroupSessionTimeoutMs: lo, maxGroupSessionTimeoutMs: hi } = this.deps.limits;
    const sessionTimeoutMs = Math.min(hi, Math.max(lo, req.sessionTimeoutMs));
    const isNew = req.memberId === '';
    const own = this.memberships.get(sink);
    if (!own?.has(`${req.group}\0${req.memberId}`) && (own?.size ?? 0) >= this.deps.limits.maxGroupMembershipsPerConnection) {
      return this.errorAssignment(req.requestId, req.group, req.memberId, 'LIMIT_EXCEEDED');
    }
    let group = this.groups.get(req.group);
    if (!group) {
      if (this.isNewGroupOverLimit(req.group)) return this.errorAssignment(req.requestId, req.group, req.memberId, 'LIMIT_EXCEEDED');
      this.groups.set(req.group, (group = new Group(req.group, this.strategy, this.deps.limits.maxGroupMembers)));
    }
    const memberId = isNew ? `${req.clientId.slice(0, 64) || 'member'}-${randomBytes(8).toString('hex')}` : req.memberId;
    const result = group.join({ memberId, isNew, clientId: req.clientId, topics: req.topics, sessionTimeoutMs }, this.deps.partitionCounts(), this.now());
    if (!result.ok) {
      if (group.members.size === 0 && this.deps.store.fetch(req.group).length === 0) this.groups.delete(req.group);
      return this.errorAssignment(req.requestId, req.group, req.memberId, result.code);
    }
    this.bind(`${req.group}\0${memberId}`, sink);
    this.pushAssignments(group, result.change, memberId);
    return this.assignmentFrame(group, memberId, req.requestId);
  }

  /** null = fine. On ILLEGAL_GENERATION the current assignment is re-sent to the member. */
  heartbeat(groupId: string, memberId: string, generationId: number): ErrorName | null {
    const group = this.groups.get(groupId);
    if (!group) return 'UNKNOWN_MEMBER_ID';
    const code = group.heartbeat(memberId, generationId, this.now());
    if (code === 'ILLEGAL_GENERATION') this.sinks.get(`${groupId}\0${memberId}`)?.sendAssignment(this.assignmentFrame(group, memberId, 0));
    return code;
  }

  leave(groupId: string, memberId: string): void {
    const group = this.groups.get(groupId);
    if (!group) return;
    this.pushAssignments(group, group.leave(memberId));
  }

  /** The session closed: all its memberships end now. */
  leaveAll(sink: GroupMemberSink): void {
    for (const key of [...(this.memberships.get(sink) ?? [])]) {
      const [groupId, memberId] = key.split('\0');
      this.leave(groupId, memberId);
    }
    this.memberships.delete(sink);
  }

  /** Validates generation/ownership, then durably stores the offsets. Throws RunnelError. */
  async commitOffsets(groupId: string, generationId: number, memberId: string, offsets: CommittedOffset[]): Promise<void> {
    const bad = this.checkGroupName(groupId);
    if (bad) throw new RunnelError(bad, `group name must be 1-${this.deps.limits.maxGroupNameLength} characters`);
    const counts = this.deps.partitionCounts();
    for (const o of offsets) {
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) throw new RunnelError('INVALID_REQUEST', `offset ${o.offset} must be a non-negative integer`);
      const n = counts.get(o.topic);
      if (n === undefined || !Number.isInteger(o.partition) || o.partition < 0 || o.partition >= n) {
        throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `${o.topic}/${o.partition} does not exist`);
      }
    }
    const group = this.groups.get(groupId);
    if (!group && this.isNewGroupOverLimit(groupId)) throw new RunnelError('LIMIT_EXCEEDED', `the broker already holds maxGroups (${this.deps.limits.maxGroups}) groups`);
    const code = group ? group.validateCommit(generationId, memberId, offsets) : generationId === -1 && memberId === '' ? null : 'UNKNOWN_MEMBER_ID';
    if (code) throw new RunnelError(code, code === 'ILLEGAL_GENERATION' ? `generation ${generationId} is stale or the partition is not assigned to ${memberId}; rejoin the group` : undefined);
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

  /**
   * Committed offsets, once every commit of the group validated before this
   * call is stored. A commit is validated (owner, generation) before its
   * fdatasync; without the wait, a member handed the partition by a rebalance
   * in between would read the older offset and reprocess what the previous
   * owner had committed.
   */
  async fetchOffsets(groupId: string, topics?: string[]): Promise<CommittedOffset[]> {
    const pending = this.pendingCommits.get(groupId);
    if (pending) await Promise.allSettled([...pending]);
    return this.deps.store.fetch(groupId, topics);
  }

  /** UNKNOWN_GROUP when the group has neither members nor offsets. */
  describeGroup(groupId: string): GroupDescription {
    const group = this.groups.get(groupId);
    const offsets = this.deps.store.fetch(groupId);
    if ((!group || group.members.size === 0) && offsets.length === 0) throw new RunnelError('UNKNOWN_GROUP', `group ${groupId} has no members and no committed offsets`);
    return {
      group: groupId, state: group?.state ?? 'Empty', generationId: group?.generationId ?? 0, protocol: this.strategy,
      members: group ? [...group.members.values()].map((m) => ({
        memberId: m.memberId, clientId: m.clientId, topics: m.topics,
        assignment: [...group.assignmentOf(m.memberId)].map(([topic, partitions]) => ({ topic, partitions })),
      })) : [],
      offsets: offsets.map((o) => {
        const hw = this.deps.highWatermark(o.topic, o.partition);
        return { ...o, highWatermark: hw ?? null, lag: hw === undefined ? null : Math.max(0, hw - o.offset) };
      }),
    };
  }

  listGroups(): { group: string; state: 'Empty' | 'Stable'; members: number; generationId: number }[] {
    const names = new Set([...this.deps.store.groups(), ...[...this.groups].filter(([, g]) => g.members.size > 0).map(([n]) => n)]);
    return [...names].sort().map((name) => {
      const g = this.groups.get(name);
      return { group: name, state: g?.state ?? 'Empty', members: g?.members.size ?? 0, generationId: g?.generationId ?? 0 };
    });
  }

  /** Lag of every committed offset (for the consumerLag gauge). */
  lag(): { group: string; topic: string; partition: number; lag: number }[] {
    const out: { group: string; topic: string; partition: number; lag: number }[] = [];
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
    const counts = this.deps.partitionCounts();
    for (const group of this.groups.values()) this.pushAssignments(group, group.updatePartitionCounts(counts));
  }

  /** Drops a deleted topic's committed offsets. */
  async deleteTopic(topic: string): Promise<void> {
    await this.deps.store.deleteTopic(topic);
    this.topicsChanged();
  }

  tick(): void {
    const now = this.now();
    for (const group of this.groups.values()) this.pushAssignments(group, group.tick(now));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.deps.store.close();
  }

  /** A group name neither live nor holding offsets, when the broker already holds `maxGroups` groups. */
  private isNewGroupOverLimit(groupId: string): boolean {
    if (this.groups.has(groupId) || this.deps.store.fetch(groupId).length > 0) return false;
    return new Set([...this.groups.keys(), ...this.deps.store.groups()]).size >= this.deps.limits.maxGroups;
  }

  private bind(key: string, sink: GroupMemberSink): void {
    this.sinks.set(key, sink);
    let own = this.memberships.get(sink);
    if (!own) this.memberships.set(sink, (own = new Set()));
    own.add(key);
  }

  private unbind(key: string): GroupMemberSink | undefined {
    const sink = this.sinks.get(key);
    this.sinks.delete(key);
    if (sink) this.memberships.get(sink)?.delete(key);
    return sink;
  }

  private pushAssignments(group: Group, change: GroupChange, except?: string): void {
    for (const id of change.removed) {
      const sink = this.unbind(`${group.groupId}\0${id}`);
      sink?.sendAssignment(this.errorAssignment(0, group.groupId, id, 'UNKNOWN_MEMBER_ID'));
    }
    if (!change.rebalanced) return;
    for (const memberId of group.members.keys()) {
      if (memberId === except) continue;
      this.sinks.get(`${group.groupId}\0${memberId}`)?.sendAssignment(this.assignmentFrame(group, memberId, 0));
    }
    if (group.members.size === 0 && this.deps.store.fetch(group.groupId).length === 0) this.groups.delete(group.groupId);
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

  private checkGroupName(group: string): ErrorName | null {
    return group.length === 0 || group.length > this.deps.limits.maxGroupNameLength ? 'INVALID_REQUEST' : null;
  }
}

function errorCodeOf(name: ErrorName): number {
  return ErrorTable[name].code;
}
