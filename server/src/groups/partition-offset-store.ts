/**
 * The cluster's `OffsetStore` (offset-store.ts): committed offsets as
 * records of one partition of the internal topic `__consumer_offsets`
 * (Kafka's design; docs/groups.md "Offsets in a cluster"). The group
 * coordinator of a group is the leader of its partition; this store is
 * what that leader builds when it takes over.
 *
 * - `load` rebuilds the state by reading the partition from its log start to
 *   the high watermark, after waiting until the high watermark covers the
 *   log end the new leader had when it took over: records an old leader
 *   acknowledged are in the new leader's log but may sit above its high
 *   watermark until the followers fetch again (KIP-101's window), and
 *   replaying without them would move committed offsets backwards.
 * - `commit` appends one validated RecordBatch with acks -1: it resolves only
 *   once the commit is on minInsyncReplicas brokers, and only then is it
 *   applied (fetch never shows a commit that could be lost).
 * - No compaction: replay reads every commit the partition still holds, so
 *   load time grows with commits until retention deletes old segments
 *   (docs/groups.md says what bounds it).
 *
 * Invariants: a commit is applied at the log offset it got; a later log
 * offset of the same (group, topic, partition) always wins, whatever order
 * concurrent appends resolve in (replay applies in log order, so the state
 * after a failover equals the state before it). `isCurrent()` is checked
 * before every append: a store whose broker no longer leads the partition in
 * the epoch it loaded refuses (NOT_LEADER_OR_FOLLOWER) instead of writing
 * commits validated against a stale group.
 */
import { RunnelError, decodeRecordBatch, iterateBatches, validateRecords, type CommittedOffset } from '@runnel/client/codec';
import { nativeCrc } from '../log/partition-log.ts';
import type { Partition } from '../partition/partition.ts';
import { decodeOffsetRecord, encodeOffsetBatch, type OffsetRecord } from './offset-commit-record.ts';
import type { OffsetStore } from './offset-store.ts';
import { defaultClusterGroupLimits, type ClusterGroupLimits } from './cluster-group-limits.ts';

/** The limits a store reads (cluster-group-limits.ts). */
export type PartitionOffsetStoreLimits = Pick<ClusterGroupLimits, 'offsetsReplayReadBytes' | 'offsetsLoadPollMs'>;

export interface PartitionOffsetStoreDeps {
  /** This broker's replica of the offsets partition, as its leader (appends must not be forwarded elsewhere). */
  partition: Partition;
  /** False once this broker no longer leads the partition in the epoch the store was loaded for. */
  isCurrent(): boolean;
  /** The batch limits every produced batch is validated against. */
  batchLimits: { maxBatchBytes: number; maxHeadersPerRecord: number };
  limits?: PartitionOffsetStoreLimits;
  nowMs?: () => number;
}

interface Entry { offset: CommittedOffset; logOffset: number }

export class PartitionOffsetStore implements OffsetStore {
  /** group → "topic\0partition" → committed offset and the log offset of the record that set it. */
  private readonly offsets = new Map<string, Map<string, Entry>>();
  /**
   * Log offset of the latest topic tombstone applied while appends were in flight, per topic: a commit
   * below it that resolves later must not bring the deleted topic's offsets back. Cleared whenever no
   * append is in flight (replay is in log order and needs none), so it never outgrows the appends in flight.
   */
  private readonly deletedAt = new Map<string, number>();
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;
  /** Records replay skipped (not a record of this version); reported by `stats`. */
  private skipped = 0;
  private replayed = 0;
  private readonly now: () => number;

  private constructor(private readonly deps: PartitionOffsetStoreDeps) {
    this.now = deps.nowMs ?? Date.now;
  }

  /**
   * Replays the partition (see the file header) and returns the store. Rejects NOT_LEADER_OR_FOLLOWER
   * when `isCurrent()` turns false first, or when `signal` aborts.
   */
  static async load(deps: PartitionOffsetStoreDeps, signal?: AbortSignal): Promise<PartitionOffsetStore> {
    const store = new PartitionOffsetStore(deps);
    await store.replay(signal);
    return store;
  }

  get stats(): { replayedRecords: number; skippedRecords: number } {
    return { replayedRecords: this.replayed, skippedRecords: this.skipped };
  }

  private async replay(signal?: AbortSignal): Promise<void> {
    const { partition } = this.deps;
    const limits = this.deps.limits ?? defaultClusterGroupLimits;
    const target = partition.logEndOffset;
    while (partition.highWatermark < target) {
      this.checkLoading(signal);
      await partition.waitForVisible(target - 1, limits.offsetsLoadPollMs, signal);
    }
    let next = partition.logStartOffset;
    while (next < partition.highWatermark) {
      this.checkLoading(signal);
      let read;
      try {
        read = await partition.read(next, limits.offsetsReplayReadBytes);
      } catch (e) {
        // Retention deleted the segment under us: what it held is gone for every replica alike.
        if (e instanceof RunnelError && e.errorName === 'OFFSET_OUT_OF_RANGE' && partition.logStartOffset > next) {
          next = partition.logStartOffset;
          continue;
        }
        throw e;
      }
      if (read.nextOffset <= next) break; // nothing readable below the high watermark (an empty answer)
      this.applyBatches(read.batches, next);
      next = read.nextOffset;
    }
  }

  private checkLoading(signal?: AbortSignal): void {
    if (signal?.aborted || !this.deps.isCurrent()) {
      throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `offsets partition ${this.deps.partition.topic.name}/${this.deps.partition.partition}: leadership moved while loading`);
    }
  }

  /** Applies every record at or above `from` of the stored batches, in log order. */
  private applyBatches(batches: Uint8Array, from: number): void {
    for (const b of iterateBatches(batches)) {
      if (!b.ok) break;
      const decoded = decodeRecordBatch(batches, b.value.at);
      if (!decoded.ok) {
        this.skipped += b.value.header.recordCount;
        continue;
      }
      for (const r of decoded.value.records) {
        if (r.offset < from) continue;
        const record = decodeOffsetRecord(r.key, r.value);
        if (record) {
          this.apply(record, r.offset);
          this.replayed++;
        } else {
          this.skipped++;
        }
      }
    }
  }

  private apply(record: OffsetRecord, logOffset: number): void {
    if (record.kind === 'deleteTopic') {
      for (const byKey of this.offsets.values()) {
        for (const [key, e] of byKey) if (e.offset.topic === record.topic && e.logOffset < logOffset) byKey.delete(key);
      }
      if (this.inflight.size > 0) this.deletedAt.set(record.topic, Math.max(logOffset, this.deletedAt.get(record.topic) ?? -1));
      return;
    }
    let byKey = this.offsets.get(record.group);
    if (!byKey) this.offsets.set(record.group, (byKey = new Map()));
    for (const c of record.offsets) {
      if ((this.deletedAt.get(c.topic) ?? -1) > logOffset) continue;
      const key = `${c.topic}\0${c.partition}`;
      const held = byKey.get(key);
      if (held && held.logOffset > logOffset) continue;
      byKey.set(key, { offset: { topic: c.topic, partition: c.partition, offset: c.offset, metadata: c.metadata ?? '' }, logOffset });
    }
  }

  commit(group: string, offsets: CommittedOffset[]): Promise<void> {
    return this.write({ kind: 'commit', group, offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata ?? '' })) });
  }

  deleteTopic(topic: string): Promise<void> {
    return this.write({ kind: 'deleteTopic', topic });
  }

  fetch(group: string, topics?: readonly string[]): CommittedOffset[] {
    const byKey = this.offsets.get(group);
    if (!byKey) return [];
    const all = [...byKey.values()].map((e) => e.offset);
    return topics && topics.length > 0 ? all.filter((c) => topics.includes(c.topic)) : all;
  }

  groups(): string[] {
    return [...this.offsets.keys()].filter((g) => (this.offsets.get(g)?.size ?? 0) > 0);
  }

  /** Waits for appends in flight (they resolve or fail on their own bound), then refuses new ones. The partition stays open. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
  }

  private async write(record: OffsetRecord): Promise<void> {
    if (this.closed) throw new RunnelError('SHUTTING_DOWN', 'offset store is closed');
    const { partition } = this.deps;
    if (!this.deps.isCurrent()) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `this broker no longer leads offsets partition ${partition.partition}; the group's coordinator moved`);
    const batch = encodeOffsetBatch(record, this.now());
    // Validated like any produced batch, once, at the boundary (Broker.produce does the same for clients).
    const header = validateRecords(batch, 0, { ...this.deps.batchLimits, crc: nativeCrc });
    if (!header.ok) throw new RunnelError(header.code, `offset commit: ${header.message}`);
    const appended = partition.append(batch, { acks: -1, header: header.value });
    this.inflight.add(appended);
    try {
      const result = await appended;
      this.apply(record, result.baseOffset);
    } finally {
      this.inflight.delete(appended);
      if (this.inflight.size === 0) this.deletedAt.clear();
    }
  }
}
