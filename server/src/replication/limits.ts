/**
 * Limits of the replication data path (docs/replication-protocol.md): what
 * each bounds and the cost of setting it wrong. `validateReplicationLimits`
 * rejects combinations that cannot work. (To be folded into
 * server/src/limits.ts and docs/configuration.md by the broker wiring.)
 */
import { assert } from '@runnel/client/codec';

export interface ReplicationLimits {
  /**
   * Largest internal-protocol frame (bytes after the length prefix), both
   * directions; a peer sending a larger one is disconnected. Must hold a fetch
   * answer: max(replicaFetchMaxBytes, maxBatchBytes) plus its fixed fields.
   */
  maxFrameBytes: number;
  /** Requests one connection may have unanswered (each side). Over it: LIMIT_EXCEEDED. Too low stalls a broker with many partitions to fetch. */
  maxInflightRequestsPerConnection: number;
  /**
   * Bytes a connection may have queued for the socket before the server stops
   * reading its requests (TCP backpressure to the peer). Too low serializes
   * fetches; too high lets a slow peer pin memory.
   */
  maxSocketBufferBytes: number;
  /** Bytes of batches one fetch answer carries (at least one whole batch). Larger = fewer round trips; bounded by maxFrameBytes. Kafka's replica.fetch.max.bytes. */
  replicaFetchMaxBytes: number;
  /** How long a leader holds a fetch with nothing new to answer (Kafka's replica.fetch.wait.max.ms). Too high delays nothing (answers come on data); too low spins. */
  replicaFetchMaxWaitMs: number;
  /** How long a follower waits for a fetch answer (beyond it: REQUEST_TIMED_OUT, and it fetches again). Must exceed replicaFetchMaxWaitMs. */
  replicaFetchTimeoutMs: number;
  /** A follower's pause after a failed fetch before the next (Kafka's replica.fetch.backoff.ms). */
  replicaFetchBackoffMs: number;
  /** A follower that has not caught up to the leader's log end for this long leaves the ISR (Kafka's replica.lag.time.max.ms). Too low flaps the ISR under load; too high stalls acks=all behind a dead follower. */
  replicaLagTimeMs: number;
  /** Longest an acks=all append waits for the high watermark before REQUEST_TIMED_OUT (Kafka's request timeout for produce). */
  replicationTimeoutMs: number;
  /** acks=all appends one partition may have waiting for the high watermark; more are refused LIMIT_EXCEEDED before appending. */
  maxPendingAcksPerPartition: number;
  /**
   * Batch bytes a leader may hold appended but not yet below the high watermark,
   * per partition (the log keeps them in memory until they become visible, for
   * the fan-out). Over it appends of any acks are refused LIMIT_EXCEEDED
   * (retryable): backpressure while a follower stalls, until the ISR shrinks.
   * Too low throttles ingest to the replication round trip; too high lets a stalled ISR fill memory.
   */
  maxUnreplicatedBytesPerPartition: number;
  /** Period of a leader's ISR and ack-timeout checks (and the precision of both). */
  replicationTickMs: number;
  /** Period between high watermark checkpoints of a replica (Kafka's replica.high.watermark.checkpoint.interval.ms); a restart hides at most what came since. */
  highWatermarkCheckpointMs: number;
  /** Pause before retrying an IsrStore.alterIsr that found etcd unavailable. */
  alterIsrRetryMs: number;
  /** A connect (TCP + handshake) to a peer that takes longer counts as 'timeout'. */
  connectTimeoutMs: number;
  /** First pause before reconnecting to a peer; doubles per failure up to reconnectBackoffMaxMs. */
  reconnectBackoffMs: number;
  reconnectBackoffMaxMs: number;
}

export const defaultReplicationLimits: ReplicationLimits = {
  maxFrameBytes: 8 * 1024 * 1024 + 1024 * 1024 + 64 * 1024,
  maxInflightRequestsPerConnection: 1024,
  maxSocketBufferBytes: 32 * 1024 * 1024,
  replicaFetchMaxBytes: 8 * 1024 * 1024,
  replicaFetchMaxWaitMs: 500,
  replicaFetchTimeoutMs: 10_000,
  replicaFetchBackoffMs: 100,
  replicaLagTimeMs: 10_000,
  replicationTimeoutMs: 30_000,
  maxPendingAcksPerPartition: 10_000,
  maxUnreplicatedBytesPerPartition: 64 * 1024 * 1024,
  replicationTickMs: 100,
  highWatermarkCheckpointMs: 5000,
  alterIsrRetryMs: 500,
  connectTimeoutMs: 3000,
  reconnectBackoffMs: 50,
  reconnectBackoffMaxMs: 2000,
};

/** Fixed fields of a fetch answer and the frame header around its batches (protocol.ts), rounded up. */
export const FETCH_RESPONSE_OVERHEAD_BYTES = 64;

/** Fills defaults and rejects impossible combinations (`maxBatchBytes`: the logs' largest batch, which one fetch answer may carry alone). */
export function resolveReplicationLimits(given: Partial<ReplicationLimits> = {}, maxBatchBytes = 1024 * 1024): ReplicationLimits {
  const l: ReplicationLimits = { ...defaultReplicationLimits };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) (l as unknown as Record<string, number>)[k] = v;
  validateReplicationLimits(l, maxBatchBytes);
  return l;
}

export function validateReplicationLimits(l: ReplicationLimits, maxBatchBytes: number): void {
  for (const [k, v] of Object.entries(l)) assert(Number.isSafeInteger(v) && v > 0, `replication limit ${k} must be a positive integer, got ${v}`);
  const answer = Math.max(l.replicaFetchMaxBytes, maxBatchBytes) + FETCH_RESPONSE_OVERHEAD_BYTES;
  assert(l.maxFrameBytes >= answer, `maxFrameBytes (${l.maxFrameBytes}) must hold a fetch answer: max(replicaFetchMaxBytes ${l.replicaFetchMaxBytes}, maxBatchBytes ${maxBatchBytes}) + ${FETCH_RESPONSE_OVERHEAD_BYTES}`);
  assert(l.maxFrameBytes <= 0xffff_fffa, 'maxFrameBytes must fit the u32 length prefix');
  assert(l.maxUnreplicatedBytesPerPartition >= maxBatchBytes, `maxUnreplicatedBytesPerPartition (${l.maxUnreplicatedBytesPerPartition}) must hold one batch (maxBatchBytes ${maxBatchBytes})`);
  assert(l.reconnectBackoffMaxMs >= l.reconnectBackoffMs, `reconnectBackoffMaxMs (${l.reconnectBackoffMaxMs}) must be >= reconnectBackoffMs (${l.reconnectBackoffMs})`);
  assert(l.replicaFetchTimeoutMs > l.replicaFetchMaxWaitMs, `replicaFetchTimeoutMs (${l.replicaFetchTimeoutMs}) must exceed replicaFetchMaxWaitMs (${l.replicaFetchMaxWaitMs}): a held fetch would time out`);
  assert(l.replicationTickMs < l.replicaLagTimeMs, `replicationTickMs (${l.replicationTickMs}) must be below replicaLagTimeMs (${l.replicaLagTimeMs}): the tick checks the lag`);
}
