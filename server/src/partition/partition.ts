/**
 * `Partition`: the one way any code in the broker reads or writes a topic
 * partition (produce over WebSocket and HTTP, live fan-out, catch-up,
 * HTTP fetch, long poll, SSE, group offset checks). Single node: a
 * `LocalPartition` over its `PartitionLog`; the cluster adds leader,
 * follower and remote implementations behind the same interface.
 *
 * Ordering contract (every implementation):
 * - `append` resolves only when the batch is covered by the high watermark
 *   for `acks: -1` (all in-sync replicas durable), by the local durable end
 *   for `acks: 1`; `acks: 0` still resolves after the local append.
 * - consumers never see offsets >= `highWatermark`: `read` stops below it
 *   (or below a smaller `maxOffset`), and `onVisible` fires for a batch only
 *   once it is below the high watermark, in offset order, exactly once.
 * - logStartOffset <= highWatermark <= logEndOffset.
 */
import type { BatchHeader } from '@runnel/client/codec';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { ProducerEntry } from '../log/producer-state.ts';

/** Kafka's produce acks: -1 = all in-sync replicas, 1 = leader, 0 = no answer wanted. */
export type Acks = -1 | 0 | 1;

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  logAppendTimeMs: number;
  /** A retry of an already stored idempotent batch: nothing was appended, these are its original offsets. */
  duplicate: boolean;
  /** The partition's log start offset when the append was acknowledged (Kafka's ProduceResponse log_start_offset). */
  logStartOffset: number;
}

export interface AppendOptions {
  acks: Acks;
  /**
   * The header the caller's `validateRecords` returned for exactly these
   * bytes (CRC and every record checked): the batch is validated once, at
   * the boundary, not again on the way to disk.
   */
  header: BatchHeader;
}

/** A batch that just became visible to consumers. `batch` is the stored bytes: shared, never mutate. */
export interface VisibleBatch {
  batch: Uint8Array;
  baseOffset: number;
  lastOffset: number;
  highWatermark: number;
}

export interface PartitionReadResult {
  /** Whole stored batches, concatenated, verbatim; the first may start below the requested offset. */
  batches: Uint8Array;
  firstOffset: number;
  /** Offset to read next. */
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

/** What `describe` and metadata report per partition. */
export interface PartitionState {
  partition: number;
  /** Broker id of the leader; -1 while the partition has none (offline or electing). */
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  logStartOffset: number;
  highWatermark: number;
  logEndOffset: number;
}

export interface Partition {
  readonly topic: TopicInfo;
  readonly partition: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  /** Consumers see only offsets below it. */
  readonly highWatermark: number;
  readonly leaderEpoch: number;
  /** Appends one validated RecordBatch; takes ownership of `batch` (its base offset is written in place). */
  append(batch: Uint8Array, options: AppendOptions): Promise<AppendResult>;
  /**
   * Whole batches from the one containing `offset`, about `maxBytes` (at least one batch if any),
   * none at or above `maxOffset` (default and upper bound: the high watermark).
   * OFFSET_OUT_OF_RANGE outside [logStartOffset, logEndOffset].
   */
  read(offset: number, maxBytes: number, options?: { maxOffset?: number }): Promise<PartitionReadResult>;
  /** First offset whose batch has maxTimestamp >= `timestampMs`, below the high watermark; null if none. */
  offsetForTimestamp(timestampMs: number): Promise<number | null>;
  /**
   * The idempotent-producer state the appends of `producerId` are checked against (rebuilt from the log on
   * restart, replicated with the batches), as the partition's leader holds it: a cluster broker that does not
   * lead the partition asks the leader (the check is the leader's).
   */
  producerState(producerId: number): Promise<ProducerEntry | undefined>;
  /** "New data visible": called synchronously, in offset order, for each batch that falls below the high watermark. Returns the unsubscribe. */
  onVisible(listener: (batch: VisibleBatch) => void): () => void;
  /** Resolves once highWatermark > `offset`, after `timeoutMs`, on abort or when the partition closes (never rejects). */
  waitForVisible(offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Current state for describe/metadata. */
  state(): PartitionState;
  /** Ends waits, flushes and closes. */
  close(): Promise<void>;
}
