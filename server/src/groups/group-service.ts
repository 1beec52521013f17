/**
 * `GroupService`: the broker's consumer group API, whatever coordinates the
 * group. Two implementations:
 *   - `GroupCoordinator` (coordinator.ts): the groups themselves, in this
 *     process (a single node; in a cluster, the coordinator of the groups
 *     whose offsets partition this broker leads);
 *   - `ForwardingGroupService` (replicated/group-forwarding.ts): a cluster
 *     broker's service: each call goes to the group's coordinator, local or
 *     over the internal links.
 * Callers (request/request-layer.ts) have authorized the request already.
 *
 * Contract: methods reject with RunnelErrors of the shared table; `join`
 * resolves to the joiner's answer (an error answer carries its code) and the
 * other members' new assignments reach their `GroupMemberSink`s; a commit
 * resolves only once durable; `fetchOffsets` sees every commit validated
 * before it was called; `leaveAll(sink)` ends every membership the sink holds.
 * Retryable refusals while a group's coordinator moves: REBALANCE_IN_PROGRESS
 * for a member's requests (it rejoins), NOT_LEADER_OR_FOLLOWER or
 * LEADER_NOT_AVAILABLE otherwise.
 */
import type { CommittedOffset, ErrorName, GroupAssignmentFrame } from '@runnel/client/codec';
import type { PartitionLag } from './consumer-lag.ts';
import type { GroupMemberSink } from './member-bindings.ts';
import type { AssignmentStrategy } from './assignor.ts';
import type { Limits } from '../limits.ts';

/** What a group service reads of the broker it runs in (broker.ts passes it). */
export interface GroupServiceHost {
  limits: Limits;
  /** Current partition count per existing topic. */
  partitionCounts(): ReadonlyMap<string, number>;
  /** highWatermark of a partition, undefined if unknown (bounds commits; lag). */
  highWatermark(topic: string, partition: number): number | undefined;
}

/**
 * How a commit may land. Each guards against a commit its client gave up on landing after a newer one
 * (the committed offsets would move backwards):
 * - `deadlineMs` (epoch ms): a commit not appended by then is refused REQUEST_TIMED_OUT, never appended later;
 * - `signal`: the same once the client went away;
 * - neither helps when a paused broker resumes: it stamps a request's deadline only when it reads it, long
 *   after the client timed out and committed elsewhere (fault seeds 1033005064, 9045). So a standalone commit
 *   never lowers a committed offset unless `rewind` says it means to (members are fenced by generation and may
 *   seek back).
 */
export interface CommitOptions { deadlineMs?: number; signal?: AbortSignal; rewind?: boolean }

export interface GroupJoin { requestId: number; group: string; memberId: string; clientId: string; topics: string[]; sessionTimeoutMs: number }

export interface GroupMemberDescription {
  /** One-way digest of the member id, for telling members apart; it cannot be used to commit or heartbeat as the member. */
  displayId: string;
  clientId: string; topics: string[];
  assignment: { topic: string; partitions: number[] }[];
}

export interface GroupDescription {
  group: string; state: 'Empty' | 'Stable'; generationId: number; protocol: AssignmentStrategy;
  members: GroupMemberDescription[];
  offsets: (CommittedOffset & { highWatermark: number | null; lag: number | null })[];
}

export interface GroupSummary { group: string; state: 'Empty' | 'Stable'; members: number; generationId: number }

export interface GroupService {
  /** Joins (memberId '' = new member); resolves to the joiner's assignment in the new generation. */
  join(req: GroupJoin, sink: GroupMemberSink): Promise<GroupAssignmentFrame>;
  /** null = fine; ILLEGAL_GENERATION (the current assignment is re-sent), UNKNOWN_MEMBER_ID or REBALANCE_IN_PROGRESS (join again). */
  heartbeat(group: string, memberId: string, generationId: number): Promise<ErrorName | null>;
  leave(group: string, memberId: string): Promise<void>;
  /** The sink's connection closed: every membership it holds ends now (nothing more is sent to it). */
  leaveAll(sink: GroupMemberSink): void;
  /**
   * Validates name, range, generation and ownership, then stores durably. A standalone commit
   * (generation -1) that would lower a committed offset is refused OFFSET_COMMIT_BACKWARDS unless
   * `rewind` (see CommitOptions).
   */
  commitOffsets(group: string, generationId: number, memberId: string, offsets: CommittedOffset[], options?: CommitOptions): Promise<void>;
  fetchOffsets(group: string, topics?: string[]): Promise<CommittedOffset[]>;
  /** UNKNOWN_GROUP when the group has neither members nor offsets. Member ids are not shown (they are credentials). */
  describeGroup(group: string): Promise<GroupDescription>;
  listGroups(): Promise<GroupSummary[]>;
  /** Lag of every committed offset of the groups coordinated here (each group is reported by its coordinator; /metrics). */
  lag(): PartitionLag[];
  /** Topics were created, deleted or grown: groups whose subscribed partition counts changed rebalance. */
  topicsChanged(): void;
  /** Drops a deleted topic's committed offsets. */
  deleteTopic(topic: string): Promise<void>;
  close(): Promise<void>;
}
