/**
 * One consumer group's membership state machine (sans-IO core).
 *
 * Eager rebalancing, simplified from Kafka's group protocol: every change of
 * membership (join, leave, session timeout, changed topics or partition
 * counts) starts a new generation whose assignment is computed at once and
 * pushed by the driver to every member. Time enters only as `nowMs`.
 *
 * Invariants:
 *   - within one generation no partition is assigned to two members, and
 *     every partition of a subscribed topic is assigned when members exist;
 *   - an offset commit is accepted only from a current member, for the
 *     current generation, for a partition it owns in that generation
 *     (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID otherwise), or as a standalone
 *     commit (generationId −1, memberId '') while the group has no members.
 */
import type { ErrorName } from '@runnel/client/codec';
import { assignPartitions, type Assignment, type AssignmentStrategy } from './assignor.ts';

export interface GroupMember {
  memberId: string;
  clientId: string;
  topics: string[];
  sessionTimeoutMs: number;
  lastHeartbeatMs: number;
}

export type GroupStateName = 'Empty' | 'Stable';

/**
 * Output of a membership change. `rebalanced` = a new generation exists:
 * the driver MUST send every current member its new assignment (and may tell
 * `removed` members they are out) BEFORE accepting their next commits.
 */
export interface GroupChange {
  rebalanced: boolean;
  removed: string[];
}

export type JoinResult = { ok: true; memberId: string; change: GroupChange } | { ok: false; code: ErrorName };

const NO_CHANGE: GroupChange = { rebalanced: false, removed: [] };

export class Group {
  generationId = 0;
  readonly members = new Map<string, GroupMember>();
  private assignment: Assignment = new Map();
  private partitionCounts: ReadonlyMap<string, number> = new Map();

  constructor(readonly groupId: string, readonly strategy: AssignmentStrategy, private readonly maxMembers: number) {}

  get state(): GroupStateName {
    return this.members.size === 0 ? 'Empty' : 'Stable';
  }

  /** Topics any member subscribes to (the driver looks up their partition counts). */
  subscribedTopics(): string[] {
    return [...new Set([...this.members.values()].flatMap((m) => m.topics))].sort();
  }

  /**
   * Joins a new member (`memberId` minted by the driver, `isNew`) or rejoins
   * a known one. Unknown non-new ids are rejected like Kafka does.
   */
  join(
    member: { memberId: string; isNew: boolean; clientId: string; topics: string[]; sessionTimeoutMs: number },
    partitionCounts: ReadonlyMap<string, number>,
    nowMs: number,
  ): JoinResult {
    const known = this.members.get(member.memberId);
    if (!member.isNew && !known) return { ok: false, code: 'UNKNOWN_MEMBER_ID' };
    if (!known && this.members.size >= this.maxMembers) return { ok: false, code: 'LIMIT_EXCEEDED' };
    const topics = [...new Set(member.topics)].sort();
    this.members.set(member.memberId, {
      memberId: member.memberId, clientId: member.clientId, topics,
      sessionTimeoutMs: member.sessionTimeoutMs, lastHeartbeatMs: nowMs,
    });
    // A rejoin always starts a new generation: the member asks for a fresh assignment.
    this.partitionCounts = partitionCounts;
    this.rebalance();
    return { ok: true, memberId: member.memberId, change: { rebalanced: true, removed: [] } };
  }

  leave(memberId: string): GroupChange {
    if (!this.members.delete(memberId)) return NO_CHANGE;
    this.rebalance();
    return { rebalanced: true, removed: [memberId] };
  }

  /** Refreshes liveness. Stale generation → ILLEGAL_GENERATION (driver re-sends the current assignment). */
  heartbeat(memberId: string, generationId: number, nowMs: number): ErrorName | null {
    const member = this.members.get(memberId);
    if (!member) return 'UNKNOWN_MEMBER_ID';
    member.lastHeartbeatMs = nowMs;
    return generationId === this.generationId ? null : 'ILLEGAL_GENERATION';
  }

  /** Expires members whose session timed out. */
  tick(nowMs: number): GroupChange {
    const removed: string[] = [];
    for (const m of this.members.values()) {
      if (nowMs - m.lastHeartbeatMs > m.sessionTimeoutMs) removed.push(m.memberId);
    }
    if (removed.length === 0) return NO_CHANGE;
    for (const id of removed) this.members.delete(id);
    this.rebalance();
    return { rebalanced: true, removed };
  }

  /** Partition counts changed (topic created/deleted/grown): rebalance if it matters to this group. */
  updatePartitionCounts(partitionCounts: ReadonlyMap<string, number>): GroupChange {
    const relevant = this.subscribedTopics();
    const same = relevant.every((t) => this.partitionCounts.get(t) === partitionCounts.get(t));
    this.partitionCounts = partitionCounts;
    if (same || this.members.size === 0) return NO_CHANGE;
    this.rebalance();
    return { rebalanced: true, removed: [] };
  }

  /** The member's partitions in the current generation: topic → sorted partitions. */
  assignmentOf(memberId: string): Map<string, number[]> {
    return this.assignment.get(memberId) ?? new Map();
  }

  /** Who owns topic-partition in the current generation (undefined = nobody). */
  ownerOf(topic: string, partition: number): string | undefined {
    for (const [memberId, byTopic] of this.assignment) {
      if (byTopic.get(topic)?.includes(partition)) return memberId;
    }
    return undefined;
  }

  /** Decides whether a commit may be applied; null = accept. */
  validateCommit(generationId: number, memberId: string, partitions: readonly { topic: string; partition: number }[]): ErrorName | null {
    if (generationId === -1 && memberId === '') return this.members.size === 0 ? null : 'UNKNOWN_MEMBER_ID';
    if (!this.members.has(memberId)) return 'UNKNOWN_MEMBER_ID';
    if (generationId !== this.generationId) return 'ILLEGAL_GENERATION';
    const owned = this.assignmentOf(memberId);
    for (const { topic, partition } of partitions) {
      if (!owned.get(topic)?.includes(partition)) return 'ILLEGAL_GENERATION';
    }
    return null;
  }

  private rebalance(): void {
    this.generationId++;
    const members = [...this.members.values()].map((m) => ({ memberId: m.memberId, topics: m.topics }));
    this.assignment = assignPartitions(this.strategy, members, this.partitionCounts);
  }
}
