/**
 * Where a new topic's replicas go (pure): Kafka's rack-unaware assignment
 * (`AdminUtils.assignReplicasToBrokers`, KIP-36 without racks). Partition p's
 * first replica (its preferred leader) is broker `(p + startIndex) mod n`, so
 * leaders spread round-robin; the followers follow it at a shift that grows
 * every n partitions, so followers spread too. The caller picks `startIndex`
 * and `replicaShift` at random per topic (so small topics do not all lead on
 * the lowest broker id).
 *
 * Invariant: every partition gets `replicationFactor` distinct live brokers.
 */
import { RunnelError } from '@runnel/client/codec';

export interface AssignmentInput {
  partitions: number;
  replicationFactor: number;
  /** Live broker ids (any order; sorted here). */
  brokerIds: readonly number[];
  /** Rotating start: any non-negative integer (taken mod the broker count). */
  startIndex: number;
  /** Follower shift: any non-negative integer. */
  replicaShift: number;
}

/** Replicas per partition, preferred leader first. INVALID_REPLICATION_FACTOR when RF exceeds the live brokers. */
export function assignReplicas(input: AssignmentInput): number[][] {
  const brokers = [...new Set(input.brokerIds)].sort((a, b) => a - b);
  const n = brokers.length;
  const rf = input.replicationFactor;
  if (!Number.isInteger(rf) || rf < 1) throw new RunnelError('INVALID_REPLICATION_FACTOR', `replication factor must be a positive integer, got ${rf}`);
  if (rf > n) {
    throw new RunnelError('INVALID_REPLICATION_FACTOR', `replication factor ${rf} is larger than the ${n} live broker${n === 1 ? '' : 's'} (${brokers.join(', ') || 'none'})`);
  }
  if (!Number.isInteger(input.partitions) || input.partitions < 1) throw new RunnelError('INVALID_PARTITIONS', `partitions must be a positive integer, got ${input.partitions}`);
  const start = Math.abs(Math.trunc(input.startIndex)) % n;
  let shift = Math.abs(Math.trunc(input.replicaShift)) % n;
  const assignment: number[][] = [];
  for (let p = 0; p < input.partitions; p++) {
    if (p > 0 && p % n === 0) shift++;
    const first = (p + start) % n;
    const replicas = [brokers[first]];
    for (let j = 0; j < rf - 1; j++) {
      // Kafka's replicaIndex: skip the first replica, then walk the others from the shift.
      replicas.push(brokers[(first + 1 + ((shift + j) % (n - 1))) % n]);
    }
    assignment.push(replicas);
  }
  return assignment;
}

/** docs/cluster.md: RF = min(3, live brokers) when the topic does not say. */
export function defaultReplicationFactor(liveBrokers: number): number {
  return Math.max(1, Math.min(3, liveBrokers));
}

/** acks=all needs 2 in-sync replicas when there are at least 3, else 1 (a 2-replica topic stays writable with one broker down). */
export function defaultMinInsyncReplicas(replicationFactor: number): number {
  return replicationFactor >= 3 ? 2 : 1;
}
