/**
 * Group assignment (sans-IO): which partitions a group member must stop and
 * start when a `groupAssignment` arrives. The broker rebalances eagerly and
 * fences stale generations (docs/groups.md), so a member applies only
 * assignments newer than the one it holds; an error assignment (25
 * UNKNOWN_MEMBER_ID after a session timeout) means the membership is gone.
 *
 * Invariant: `kept` partitions were owned continuously since they were
 * started (every generation the member saw assigned them), so their
 * processed offsets may be committed with the new generation.
 */
import type { GroupAssignmentFrame } from './codec/protocol.ts';

export interface TopicPartition { topic: string; partition: number }

export type AssignmentStep =
  /** Older or equal generation (a heartbeat re-send, a push racing the join answer): nothing to do. */
  | { kind: 'ignore' }
  /** The broker no longer knows this member: stop everything, rejoin with memberId ''. */
  | { kind: 'rejoin'; errorCode: number }
  /** Stop `revoked` (their offsets can no longer be committed), then start `added`; `kept` continue. */
  | { kind: 'rebalance'; generationId: number; memberId: string; added: TopicPartition[]; revoked: TopicPartition[]; kept: TopicPartition[] };

const key = (tp: TopicPartition): string => `${tp.topic}/${tp.partition}`;

/** Flattens an assignment to topic-partitions, in topic then partition order. */
export function partitionsOf(assignments: GroupAssignmentFrame['assignments']): TopicPartition[] {
  return assignments.flatMap((a) => [...a.partitions].sort((x, y) => x - y).map((partition) => ({ topic: a.topic, partition })));
}

/**
 * Decides what an assignment frame means for a member holding `owned` at
 * `generationId` (−1 = not joined yet).
 * @example planAssignment(-1, [], frame) // first assignment: everything is `added`
 */
export function planAssignment(generationId: number, owned: readonly TopicPartition[], frame: GroupAssignmentFrame): AssignmentStep {
  if (frame.errorCode !== 0) return { kind: 'rejoin', errorCode: frame.errorCode };
  if (frame.generationId <= generationId) return { kind: 'ignore' };
  const next = partitionsOf(frame.assignments);
  const nextKeys = new Set(next.map(key));
  const ownedKeys = new Set(owned.map(key));
  return {
    kind: 'rebalance', generationId: frame.generationId, memberId: frame.memberId,
    added: next.filter((tp) => !ownedKeys.has(key(tp))),
    revoked: owned.filter((tp) => !nextKeys.has(key(tp))),
    kept: owned.filter((tp) => nextKeys.has(key(tp))),
  };
}
