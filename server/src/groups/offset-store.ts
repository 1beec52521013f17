/**
 * `OffsetStore`: where a group coordinator keeps committed offsets. Two
 * implementations, one contract (offset-store.contract.ts, run on both):
 *   - `FileOffsetStore` (file-offset-store.ts): a single node's fsynced
 *     `<data>/groups/offsets.log`;
 *   - `PartitionOffsetStore` (partition-offset-store.ts): a cluster's
 *     replicated internal topic `__consumer_offsets`, one record per commit
 *     (Kafka's design), the group coordinator being that partition's leader.
 *
 * Contract (every implementation):
 * - `commit` is all-or-nothing and resolves only once the offsets are durable
 *   (file: fdatasync; partition: acknowledged by acks -1, i.e. on
 *   minInsyncReplicas brokers); `fetch` sees them once it resolved, never
 *   before; a rejected commit changes nothing.
 * - Commits are applied in the order they were made durable: a later commit
 *   of the same (group, topic, partition) wins.
 * - `deleteTopic` removes every group's offsets of the topic, durably.
 * - After `close` every write rejects.
 */
import type { CommittedOffset } from '@runnel/client/codec';

export interface OffsetStore {
  /** Durably records the offsets of one commit request; visible to `fetch` once resolved. */
  commit(group: string, offsets: CommittedOffset[]): Promise<void>;
  /** Drops every group's offsets for a deleted topic (its id changes on re-creation). */
  deleteTopic(topic: string): Promise<void>;
  /** Committed offsets of `group` (only of `topics` when given and non-empty). */
  fetch(group: string, topics?: readonly string[]): CommittedOffset[];
  /** Groups that have committed offsets. */
  groups(): string[];
  /** Waits for writes in flight, then refuses new ones. Does not delete anything. */
  close(): Promise<void>;
}
