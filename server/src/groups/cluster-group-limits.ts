/**
 * Limits of consumer groups in a cluster (docs/groups.md "Groups in a
 * cluster"): what each bounds and the cost of setting it wrong.
 * `resolveClusterGroupLimits` fills defaults and rejects impossible values.
 * (To be folded into server/src/limits.ts and docs/configuration.md by the
 * cluster wiring.)
 */
import { assert } from '@runnel/client/codec';

export interface ClusterGroupLimits {
  /**
   * Partitions of the internal topic `__consumer_offsets`, fixed when the topic is created: group g's
   * coordinator is the leader of partition murmur2(g) % N. More spreads coordinators (and replay
   * time) over more leaders; changing it later moves every group to another partition, so its
   * committed offsets would be lost. Kafka's offsets.topic.num.partitions is 50; 16 suits clusters of
   * up to a few dozen brokers.
   */
  offsetsTopicPartitions: number;
  /** Bytes per read while a new coordinator replays its offsets partition. Each read is held in memory at once. */
  offsetsReplayReadBytes: number;
  /** Period at which a loading coordinator, waiting for its high watermark, checks it still leads. */
  offsetsLoadPollMs: number;
  /**
   * How long a group request waits for a coordinator while its offsets partition has no leader, the
   * leader is still loading, or the leader moved (then it is sent again): a failover costs members a
   * wait, not an error. Too low turns every election into errors; too high holds requests of a
   * partition that stays offline.
   */
  coordinatorWaitMs: number;
  /**
   * A commit must be appended at its coordinator within this long of reaching the broker the client
   * asked, or it is refused REQUEST_TIMED_OUT and never appended. It must stay below clients' request
   * timeouts: a commit its client gave up on and committed past must not land after the newer one
   * (the retry of a commit across a coordinator move is safe only within it). Brokers' clocks are
   * compared (the deadline travels as epoch ms): keep them within a small fraction of it (NTP).
   */
  groupCommitDeadlineMs: number;
  /** A group request forwarded to the coordinator broker waits this long for its answer (REQUEST_TIMED_OUT). Covers a commit's acks=all. */
  groupForwardTimeoutMs: number;
  /** A coordinator's push of an assignment to the member's broker waits this long; a lost push is repaired by the member's next heartbeat. */
  groupPushTimeoutMs: number;
  /** Pushes held for one connection's group while its join is still on the way back (delivered after the join answer, in order). */
  maxPushesHeldPerJoin: number;
}

export const defaultClusterGroupLimits: ClusterGroupLimits = {
  offsetsTopicPartitions: 16,
  offsetsReplayReadBytes: 1024 * 1024,
  offsetsLoadPollMs: 200,
  coordinatorWaitMs: 5000,
  groupCommitDeadlineMs: 2000,
  groupForwardTimeoutMs: 10_000,
  groupPushTimeoutMs: 2000,
  maxPushesHeldPerJoin: 4,
};

/** Fills defaults; asserts every limit is a positive integer. */
export function resolveClusterGroupLimits(given: Partial<ClusterGroupLimits> = {}): ClusterGroupLimits {
  const l: ClusterGroupLimits = { ...defaultClusterGroupLimits };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) (l as unknown as Record<string, number>)[k] = v;
  for (const [k, v] of Object.entries(l)) assert(Number.isSafeInteger(v) && v > 0, `cluster group limit ${k} must be a positive integer, got ${v}`);
  assert(l.offsetsReplayReadBytes >= 1024, `offsetsReplayReadBytes (${l.offsetsReplayReadBytes}) must be >= 1024`);
  assert(l.offsetsTopicPartitions <= 1000, `offsetsTopicPartitions (${l.offsetsTopicPartitions}) must be <= 1000`);
  return l;
}
