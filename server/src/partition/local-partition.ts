/**
 * The single-node `Partition`: this broker is the only replica and the
 * leader, so the high watermark is the log's durable end (docs/storage.md)
 * and every ack level is satisfied by the local fdatasync.
 */
import type { PartitionLog } from '../log/partition-log.ts';
import type { ProducerEntry } from '../log/producer-state.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { AppendOptions, AppendResult, Partition, PartitionReadResult, PartitionState, VisibleBatch } from './partition.ts';
import { VisibleWaiters } from './visible-waiters.ts';

/** Leader epoch of a single node: it never changes leader. */
const SINGLE_NODE_LEADER_EPOCH = 0;

export class LocalPartition implements Partition {
  readonly leaderEpoch = SINGLE_NODE_LEADER_EPOCH;
  private readonly waiters: VisibleWaiters;
  private readonly offAppend: () => void;

  constructor(readonly topic: TopicInfo, readonly partition: number, readonly log: PartitionLog, private readonly brokerId: number) {
    this.waiters = new VisibleWaiters(() => log.highWatermark);
    this.offAppend = log.onAppend(() => this.waiters.notify());
  }

  get logStartOffset(): number { return this.log.logStartOffset; }
  get logEndOffset(): number { return this.log.logEndOffset; }
  get highWatermark(): number { return this.log.highWatermark; }

  append(batch: Uint8Array, options: AppendOptions): Promise<AppendResult> {
    // Single replica: acks -1 and 1 both mean "durable here", which the log's promise already is.
    const log = this.log;
    return log.append(batch, { leaderEpoch: this.leaderEpoch, header: options.header }).then((r) => ({ ...r, logStartOffset: log.logStartOffset }));
  }

  read(offset: number, maxBytes: number, options: { maxOffset?: number } = {}): Promise<PartitionReadResult> {
    const hw = this.log.highWatermark;
    return this.log.read(offset, maxBytes, { maxOffset: Math.min(options.maxOffset ?? hw, hw) });
  }

  offsetForTimestamp(timestampMs: number): Promise<number | null> {
    return this.log.offsetForTimestamp(timestampMs);
  }

  async producerState(producerId: number): Promise<ProducerEntry | undefined> {
    return this.log.producerState(producerId);
  }

  onVisible(listener: (batch: VisibleBatch) => void): () => void {
    return this.log.onAppend(listener);
  }

  waitForVisible(offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.waiters.wait(offset, timeoutMs, signal);
  }

  state(): PartitionState {
    const log = this.log;
    return {
      partition: this.partition, leader: this.brokerId, leaderEpoch: this.leaderEpoch, replicas: [this.brokerId], isr: [this.brokerId],
      logStartOffset: log.logStartOffset, highWatermark: log.highWatermark, logEndOffset: log.logEndOffset,
    };
  }

  /** Ends waits, then flushes and closes the log. */
  async close(): Promise<void> {
    this.waiters.close();
    this.offAppend();
    await this.log.close();
  }

  /** Each group-commit fdatasync of the log, with its duration. */
  onFlush(listener: (durationMs: number) => void): () => void {
    return this.log.onFlush(listener);
  }

  /** Wakes waits without closing the log (broker shutdown ends long polls before the logs flush). */
  endWaits(): void {
    this.waiters.close();
  }
}
