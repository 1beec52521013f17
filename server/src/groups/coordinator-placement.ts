/**
 * Where a consumer group is coordinated in a cluster (Kafka's
 * `__consumer_offsets` design; docs/groups.md "Groups in a cluster"): the
 * internal topic `__consumer_offsets` has `offsetsTopicPartitions`
 * partitions; group g's offsets live in partition
 * `toPositive(murmur2(utf8(g))) % N` and its coordinator is that
 * partition's leader. Pure: every broker computes the same answer.
 *
 * Invariant: the partition count is fixed at the topic's creation; a broker
 * configured with another count must use the topic's (`partitionsOf`), or
 * two brokers would place one group on two coordinators.
 */
import { partitionForKey } from '@runnel/client/codec';
import type { TopicSpec } from '../metadata/topic-info.ts';

/** The internal topic holding committed offsets (clients may not produce to it or delete it). */
export const OFFSETS_TOPIC = '__consumer_offsets';

const encoder = new TextEncoder();

/** The offsets partition (and so the coordinator) of `group` among `offsetsPartitions`. */
export function coordinatorPartitionOf(group: string, offsetsPartitions: number): number {
  return partitionForKey(encoder.encode(group), offsetsPartitions);
}

/** Whether clients must be kept off the topic (produce, delete, create). */
export function isInternalTopic(name: string): boolean {
  return name === OFFSETS_TOPIC;
}

/**
 * The spec the cluster creates `__consumer_offsets` with: the broker defaults for replication
 * (−1: min(3, brokers), minInsyncReplicas 2 at RF ≥ 3) and no time retention of its own beyond
 * `retentionMs` (replay reads every commit retention keeps; docs/groups.md).
 */
export function offsetsTopicSpec(partitions: number, retentionMs: number): TopicSpec {
  return { name: OFFSETS_TOPIC, partitions, replicationFactor: -1, minInsyncReplicas: -1, retentionMs };
}
