/**
 * What a topic is, as stored in metadata: name, id (minted at creation,
 * KIP-516, so a deleted and re-created topic never sees its predecessor's
 * data or offsets), partition count, replication and retention.
 */

/** `replicationFactor` and `minInsyncReplicas` omitted (or −1, Kafka's "broker default"): the broker's defaults (1 on a single node). */
export interface TopicSpec { name: string; partitions: number; replicationFactor?: number; minInsyncReplicas?: number; retentionMs?: number; retentionBytes?: number }

export interface TopicInfo {
  name: string; topicId: string; partitions: number; replicationFactor: number;
  retentionMs: number; retentionBytes: number; createdAtMs: number;
  /** acks=all needs this many in-sync replicas (cluster; absent = 1). */
  minInsyncReplicas?: number;
}

/** Kafka's defaults: keep 7 days, unbounded bytes (−1). */
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_RETENTION_BYTES = -1;

/** Key of one topic-partition in maps and sets (a NUL cannot occur in a topic name). */
export function topicPartitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}
