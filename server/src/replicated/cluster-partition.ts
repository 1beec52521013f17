/**
 * `ClusterPartition`: the `Partition` a cluster broker serves for one
 * topic partition, whatever its role. With a local replica it reads from
 * it (below the replica's high watermark: a follower serves only committed
 * records); without one it reads through the leader with one shared tail
 * stream. A produce goes to the local replica when it leads, otherwise it is
 * forwarded to the leader; while the partition has no leader (an election)
 * it waits up to `leaderWaitMs` for one instead of failing at once, so a
 * failover costs clients one election, not an error and a backoff.
 *
 * Invariants: consumers never see offsets at or above the high watermark of
 * the replica that answered them; an append is acknowledged only by the
 * leader of the epoch it went to (a forwarded produce is answered by that
 * leader's replica, with its acks); no wait outlives its bound.
 */
import { RunnelError, iterateBatches } from '@runnel/client/codec';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { AppendOptions, AppendResult, Partition, PartitionReadResult, PartitionState, VisibleBatch } from '../partition/partition.ts';
import { VisibleWaiters } from '../partition/visible-waiters.ts';
import type { ProducerEntry } from '../log/producer-state.ts';
import type { ServedPartition } from '../broker/topic-source.ts';
import type { ClusterPartitionView, PartitionLeadership, VersionedLeadership } from '../cluster/cluster-state.ts';

/** What the facade needs of a local replica (server/src/replication/replica-partition.ts). */
export interface LocalReplica extends Partition {
  readonly role: 'leader' | 'follower' | 'none';
  applyLeadership(l: VersionedLeadership): void | Promise<void>;
  replicationView(): ClusterPartitionView;
  onFlush?(listener: (durationMs: number) => void): () => void;
}

/** Requests to another broker (replicated/leader-forwarder.ts). */
export interface LeaderForwarder {
  /** `signal` abandons the wait for the answer (the leader may still write it: only an idempotent resend is de-duplicated). */
  produce(leader: number, topicId: string, partition: number, batch: Uint8Array, acks: AppendOptions['acks'], signal?: AbortSignal): Promise<AppendResult>;
  read(leader: number, topicId: string, partition: number, offset: number, maxBytes: number, waitMs: number): Promise<PartitionReadResult>;
  offsetForTimestamp(leader: number, topicId: string, partition: number, timestampMs: number): Promise<number | null>;
  /** The leader's entry of `producerId`: NOT_LEADER_OR_FOLLOWER from a broker that no longer leads. */
  producerState(leader: number, topicId: string, partition: number, producerId: number): Promise<ProducerEntry | undefined>;
}

export interface ClusterPartitionLimits {
  /** How long a produce waits for a leader during an election before LEADER_NOT_AVAILABLE. */
  leaderWaitMs: number;
  /** Long-poll wait of the shared tail stream to a remote leader. */
  remoteReadWaitMs: number;
  /** Bytes per read of the tail stream. */
  remoteReadMaxBytes: number;
}

/** Errors after which a forwarded produce is sent again to whoever leads next (the batch was not acknowledged). */
const LEADER_MOVED = new Set(['NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'FENCED_LEADER_EPOCH', 'UNKNOWN_LEADER_EPOCH', 'REQUEST_TIMED_OUT', 'NOT_CONNECTED']);

export class ClusterPartition implements ServedPartition {
  private leadership: PartitionLeadership;
  private readonly leaderWaiters = new Set<() => void>();
  private readonly remoteWaiters: VisibleWaiters;
  private readonly remoteListeners = new Set<(b: VisibleBatch) => void>();
  private remote = { highWatermark: 0, logStartOffset: 0, nextOffset: -1 };
  private tail: { stop: boolean } | null = null;
  private closed = false;

  constructor(
    readonly topic: TopicInfo,
    readonly partition: number,
    private readonly brokerId: number,
    private readonly replica: LocalReplica | undefined,
    private readonly forwarder: LeaderForwarder,
    private readonly limits: ClusterPartitionLimits,
    leadership: PartitionLeadership,
  ) {
    this.leadership = leadership;
    this.remoteWaiters = new VisibleWaiters(() => this.remote.highWatermark);
  }

  /** This broker's replica of the partition, if it is in the replica set. */
  get localReplica(): LocalReplica | undefined { return this.replica; }
  get leader(): number { return this.leadership.leader; }
  get logStartOffset(): number { return this.replica?.logStartOffset ?? this.remote.logStartOffset; }
  get logEndOffset(): number { return this.replica?.logEndOffset ?? this.remote.highWatermark; }
  get highWatermark(): number { return this.replica?.highWatermark ?? this.remote.highWatermark; }
  get leaderEpoch(): number { return this.leadership.leaderEpoch; }

  /** A new leadership from etcd: the replica changes role, waiting produces look again. */
  async applyLeadership(l: VersionedLeadership): Promise<void> {
    if (l.leaderEpoch < this.leadership.leaderEpoch) return;
    this.leadership = { leader: l.leader, leaderEpoch: l.leaderEpoch, isr: l.isr, replicas: l.replicas };
    try {
      await this.replica?.applyLeadership(l);
    } finally {
      for (const wake of [...this.leaderWaiters]) wake();
    }
  }

  async append(batch: Uint8Array, options: AppendOptions): Promise<AppendResult> {
    return this.atLeader((replica) => replica.append(batch, options), async (leader, leaderEpoch) => {
      // A leader that stops answering (paused, partitioned) is replaced by the controller: stop waiting for it then and
      // send to the new one, instead of waiting out the forward timeout.
      const moved = new AbortController();
      const watch = this.onLeaderChange(leaderEpoch, () => moved.abort());
      try {
        return await this.forwarder.produce(leader, this.topic.topicId, this.partition, batch, options.acks, moved.signal);
      } catch (e) {
        if (!moved.signal.aborted) throw e;
        throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `partition ${this.topic.name}/${this.partition}: leadership moved from broker ${leader} while the produce waited for it`);
      } finally {
        watch();
      }
    });
  }

  read(offset: number, maxBytes: number, options: { maxOffset?: number } = {}): Promise<PartitionReadResult> {
    if (this.replica) return this.replica.read(offset, maxBytes, options);
    return this.remoteRead(offset, maxBytes, 0).then((r) => (options.maxOffset === undefined ? r : this.cut(r, options.maxOffset)));
  }

  offsetForTimestamp(timestampMs: number): Promise<number | null> {
    if (this.replica) return this.replica.offsetForTimestamp(timestampMs);
    return this.forwarder.offsetForTimestamp(this.requireLeader(), this.topic.topicId, this.partition, timestampMs);
  }

  /**
   * The state the leader checks this producer's next append against: the local replica's while it leads, else
   * the leader's, asked over the internal links. Like `append`, it waits up to `leaderWaitMs` through an
   * election (the new leader rebuilt the same state from the replicated batches).
   */
  /** The state the leader checks this producer's next append against (after an election, the new leader rebuilt it from the replicated batches). */
  producerState(producerId: number): Promise<ProducerEntry | undefined> {
    return this.atLeader(async (replica) => replica.producerState(producerId), (leader) => this.forwarder.producerState(leader, this.topic.topicId, this.partition, producerId));
  }

  /**
   * `local(replica)` while this broker's replica leads, else `remote(leader, leaderEpoch)` to the leader, waiting up
   * to `leaderWaitMs` through an election. Only errors that say "not done, someone else leads now" (LEADER_MOVED)
   * are retried, against the new leader; the idempotent producer de-duplicates a batch an old leader had written.
   */
  private async atLeader<T>(local: (replica: LocalReplica) => Promise<T>, remote: (leader: number, leaderEpoch: number) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.limits.leaderWaitMs;
    for (;;) {
      if (this.closed) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', `partition ${this.topic.name}/${this.partition} is closing on broker ${this.brokerId}`);
      const { leader, leaderEpoch } = this.leadership;
      if (leader === this.brokerId && this.replica?.role === 'leader') return local(this.replica);
      if (leader >= 0 && leader !== this.brokerId) {
        try {
          return await remote(leader, leaderEpoch);
        } catch (e) {
          if (!(e instanceof RunnelError) || !LEADER_MOVED.has(e.errorName) || Date.now() >= deadline) throw e;
          if (this.leadership.leaderEpoch === leaderEpoch && !this.closed) await this.waitForLeaderChange(Math.min(deadline - Date.now(), 200));
          continue;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new RunnelError('LEADER_NOT_AVAILABLE', leader < 0
          ? `partition ${this.topic.name}/${this.partition} has no live in-sync replica to lead it (ISR ${JSON.stringify(this.leadership.isr)})`
          : `partition ${this.topic.name}/${this.partition}: broker ${leader} was elected leader but has not taken over within ${this.limits.leaderWaitMs} ms`);
      }
      await this.waitForLeaderChange(Math.min(left, 50));
    }
  }

  onVisible(listener: (batch: VisibleBatch) => void): () => void {
    if (this.replica) return this.replica.onVisible(listener);
    this.remoteListeners.add(listener);
    if (!this.tail) this.startTail();
    return () => {
      this.remoteListeners.delete(listener);
      if (this.remoteListeners.size === 0 && this.tail) {
        this.tail.stop = true;
        this.tail = null;
      }
    };
  }

  waitForVisible(offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.replica) return this.replica.waitForVisible(offset, timeoutMs, signal);
    if (!this.tail && this.remoteListeners.size === 0) {
      // No tail stream runs: one long poll at the leader answers this wait.
      const waitMs = Math.max(0, Math.min(timeoutMs, this.limits.remoteReadWaitMs));
      return this.remoteRead(offset, 1, waitMs).then(() => undefined, () => undefined);
    }
    return this.remoteWaiters.wait(offset, timeoutMs, signal);
  }

  state(): PartitionState {
    const l = this.leadership;
    return {
      partition: this.partition, leader: l.leader, leaderEpoch: l.leaderEpoch, replicas: [...l.replicas], isr: [...l.isr],
      logStartOffset: this.logStartOffset, highWatermark: this.highWatermark, logEndOffset: this.logEndOffset,
    };
  }

  view(): ClusterPartitionView {
    if (this.replica) return this.replica.replicationView();
    const l = this.leadership;
    return {
      topic: this.topic.name, partition: this.partition, leader: l.leader, leaderEpoch: l.leaderEpoch, replicas: [...l.replicas], isr: [...l.isr],
      role: 'none', highWatermark: this.remote.highWatermark, logEndOffset: this.remote.highWatermark,
    };
  }

  onFlush(listener: (durationMs: number) => void): () => void {
    return this.replica?.onFlush?.(listener) ?? (() => undefined);
  }

  endWaits(): void {
    this.remoteWaiters.close();
    (this.replica as { endWaits?: () => void } | undefined)?.endWaits?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.tail) this.tail.stop = true;
    this.tail = null;
    for (const wake of [...this.leaderWaiters]) wake();
    this.remoteWaiters.close();
    await this.replica?.close();
  }

  private requireLeader(): number {
    const { leader } = this.leadership;
    if (leader < 0) throw new RunnelError('LEADER_NOT_AVAILABLE', `partition ${this.topic.name}/${this.partition} has no leader right now`);
    return leader;
  }

  private async remoteRead(offset: number, maxBytes: number, waitMs: number): Promise<PartitionReadResult> {
    const r = await this.forwarder.read(this.requireLeader(), this.topic.topicId, this.partition, offset, maxBytes, waitMs);
    this.remote.logStartOffset = r.logStartOffset;
    if (r.highWatermark > this.remote.highWatermark) {
      this.remote.highWatermark = r.highWatermark;
      this.remoteWaiters.notify();
    }
    return r;
  }

  /** Drops whole batches at or above `maxOffset` from a remote answer. */
  private cut(r: PartitionReadResult, maxOffset: number): PartitionReadResult {
    let end = 0;
    let next = r.firstOffset;
    for (const b of iterateBatches(r.batches)) {
      if (!b.ok) break;
      if (b.value.header.baseOffset >= maxOffset) break;
      end = b.value.at + b.value.header.totalBytes;
      next = b.value.header.baseOffset + b.value.header.lastOffsetDelta + 1;
    }
    return end === r.batches.length ? r : { ...r, batches: r.batches.subarray(0, end), nextOffset: next };
  }

  /** The one tail stream of a partition read through its leader: every listener gets each batch once, in order. */
  private startTail(): void {
    const tail = { stop: false };
    this.tail = tail;
    void (async () => {
      let next = this.remote.nextOffset;
      while (!tail.stop && !this.closed) {
        try {
          if (next < 0) next = (await this.remoteRead(0, 1, 0).catch(() => null))?.highWatermark ?? -1;
          if (next < 0) {
            await this.waitForLeaderChange(this.limits.remoteReadWaitMs);
            continue;
          }
          const r = await this.remoteRead(next, this.limits.remoteReadMaxBytes, this.limits.remoteReadWaitMs);
          for (const b of iterateBatches(r.batches)) {
            if (!b.ok || tail.stop) break;
            const { at, header } = b.value;
            const lastOffset = header.baseOffset + header.lastOffsetDelta;
            if (lastOffset < next) continue;
            const visible: VisibleBatch = { batch: r.batches.subarray(at, at + header.totalBytes), baseOffset: header.baseOffset, lastOffset, highWatermark: r.highWatermark };
            for (const l of [...this.remoteListeners]) l(visible);
            next = lastOffset + 1;
          }
          this.remote.nextOffset = next;
        } catch (e) {
          // Leader gone or moving, or our offset fell below its log start: look again after a short wait.
          if (e instanceof RunnelError && e.errorName === 'OFFSET_OUT_OF_RANGE') next = -1;
          await this.waitForLeaderChange(Math.min(this.limits.remoteReadWaitMs, 200));
        }
      }
    })();
  }

  /** Calls `fn` once the leader epoch passes `epoch` (or the partition closes); returns the stop. */
  private onLeaderChange(epoch: number, fn: () => void): () => void {
    const check = () => {
      if (this.leadership.leaderEpoch > epoch || this.closed) {
        this.leaderWaiters.delete(check);
        fn();
      }
    };
    this.leaderWaiters.add(check);
    return () => this.leaderWaiters.delete(check);
  }

  private waitForLeaderChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.leaderWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.leaderWaiters.add(done);
    });
  }
}
