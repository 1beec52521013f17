/**
 * The leader role of one replica for one leader epoch: the I/O driver of
 * leader-state.ts. Appends stamped with its epoch, answers follower fetches
 * (holding them until there is data or a newer high watermark), applies the
 * high watermark to the log, settles acks=-1 appends, and asks the IsrStore
 * for ISR changes.
 *
 * Ordering contract:
 * - an acks=-1 append resolves only once the high watermark covers its last
 *   offset while the accepted ISR has >= minInsyncReplicas members (else
 *   NOT_ENOUGH_REPLICAS_AFTER_APPEND); it is refused NOT_ENOUGH_REPLICAS,
 *   before anything is appended, when the ISR is already too small;
 * - `log.setHighWatermark` runs BEFORE the acks it covers settle and before
 *   held fetches are answered (consumers and followers see it first);
 * - after `stop` (or fencing) nothing more is acknowledged as leader: waiting
 *   acks=-1 appends and held fetches fail NOT_LEADER_OR_FOLLOWER.
 * Hot path: per batch, never per record; fetch answers are the log's stored
 * bytes (log.read), sent without re-encoding.
 */
import { RunnelError } from '@runnel/client/codec';
import type { IsrStore, VersionedLeadership } from '../cluster/cluster-state.ts';
import type { PartitionLog } from '../log/partition-log.ts';
import type { AppendOptions, AppendResult } from '../partition/partition.ts';
import { findDivergence } from './divergence.ts';
import { LeaderState, type FollowerView, type LeaderReady } from './leader-state.ts';
import type { ReplicationLimits } from './limits.ts';
import type { FetchRequest, FetchResponse } from './protocol.ts';
import { isTracing, traceNowMs, traceStage } from './trace.ts';

export interface LeaderRoleOptions {
  brokerId: number;
  /** Names this broker as leader. */
  leadership: VersionedLeadership;
  minInsyncReplicas: number;
  log: PartitionLog;
  isrStore: IsrStore;
  limits: ReplicationLimits;
  /** Each leadership the IsrStore accepted (a new revision): the partition keeps it as its current one. */
  onLeadership(l: VersionedLeadership): void;
  /** The leadership changed under this leader (alterIsr fenced): it stopped acting. */
  onFenced(): void;
  warn(message: string): void;
  nowMs?: () => number;
}

interface PendingAck {
  lastOffset: number;
  deadlineMs: number;
  resolve(): void;
  reject(error: RunnelError): void;
}

interface HeldFetch {
  followerId: number;
  /** A high-watermark poll (maxBytes 0): answered for the high watermark only. */
  isPoll: boolean;
  fetchOffset: number;
  knownHighWatermark: number;
  done(): void;
}

const EMPTY = new Uint8Array(0);

/** Writes remembered for leader.toFollowerDurable (RUNNEL_REPLICATION_TRACE only). */
const TRACED_WRITES = 4096;

/** Per-stage timings of one leader (trace.ts); exists only while tracing. */
class LeaderTrace {
  /** Ring of (written end, when). */
  readonly #ends = new Float64Array(TRACED_WRITES);
  readonly #times = new Float64Array(TRACED_WRITES);
  #count = 0;
  /** Per follower: index of the next write not yet reported durable by it. */
  readonly #reported = new Map<number, number>();
  /** Per follower: when the high watermark advanced past what that follower was last told. */
  readonly #hwSince = new Map<number, number>();

  onWritten(end: number): void {
    const i = this.#count++ % TRACED_WRITES;
    this.#ends[i] = end;
    this.#times[i] = traceNowMs();
  }

  onFollowerFetch(followerId: number, fetchOffset: number): void {
    const now = traceNowMs();
    let next = Math.max(this.#reported.get(followerId) ?? 0, this.#count - TRACED_WRITES);
    for (; next < this.#count && this.#ends[next % TRACED_WRITES] <= fetchOffset; next++) traceStage(`leader.toFollowerDurable.${followerId}`, now - this.#times[next % TRACED_WRITES]);
    this.#reported.set(followerId, next);
  }

  onHighWatermark(followers: readonly number[]): void {
    const now = traceNowMs();
    for (const id of followers) if (!this.#hwSince.has(id)) this.#hwSince.set(id, now);
  }

  onAnswer(followerId: number): void {
    const since = this.#hwSince.get(followerId);
    if (since === undefined) return;
    traceStage(`leader.hwToFollower.${followerId}`, traceNowMs() - since);
    this.#hwSince.delete(followerId);
  }
}

export class LeaderRole {
  readonly leaderEpoch: number;
  readonly #o: LeaderRoleOptions;
  readonly #log: PartitionLog;
  readonly #state: LeaderState;
  readonly #now: () => number;
  /** acks=-1 appends waiting for the high watermark, in offset order (they are queued as their local appends resolve). */
  #acks: PendingAck[] = [];
  #ackHead = 0;
  /** acks=-1 appends admitted and not yet settled (bounded by maxPendingAcksPerPartition). */
  #acksInProgress = 0;
  /** Bytes of appends admitted whose batch is not yet below the high watermark (bounded by maxUnreplicatedBytesPerPartition). */
  #unreplicatedBytes = 0;
  /** Appended batches above the high watermark, in offset order: what `#unreplicatedBytes` releases as it passes them. */
  #unreplicated: { lastOffset: number; bytes: number }[] = [];
  #unreplicatedHead = 0;
  readonly #held = new Set<HeldFetch>();
  /**
   * Per follower: the high watermark its released poll is answered with (see #releaseHeld). Taken by that
   * follower's next fetch, which then waits for data instead of carrying the same high watermark a second time.
   */
  readonly #pollAnswered = new Map<number, number>();
  #writtenEnd: number;
  readonly #offWrite: () => void;
  readonly #timer: ReturnType<typeof setInterval>;
  #isStopped = false;
  readonly #trace = isTracing ? new LeaderTrace() : null;

  constructor(o: LeaderRoleOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#now = o.nowMs ?? Date.now;
    this.leaderEpoch = o.leadership.leaderEpoch;
    const log = o.log;
    this.#state = new LeaderState({
      brokerId: o.brokerId, leadership: o.leadership, minInsyncReplicas: o.minInsyncReplicas,
      replicaLagTimeMs: o.limits.replicaLagTimeMs, alterIsrRetryMs: o.limits.alterIsrRetryMs,
      // NB: with flushIntervalMs > 0 the high watermark a follower learned may pass its own fdatasync'ed end.
      epochStartOffset: log.logEndOffset, highWatermark: log.highWatermark, localDurableEnd: Math.max(log.durableEndOffset, log.highWatermark), nowMs: this.#now(),
    });
    this.#writtenEnd = log.writtenEndOffset;
    this.#offWrite = log.onWrite((end) => this.#onWritten(end));
    this.#timer = setInterval(() => this.#tick(), o.limits.replicationTickMs);
    this.#timer.unref?.();
    // Alone in the ISR (or the durable end already covers it): the high watermark may move now.
    this.#perform(this.#state.handleLocalDurable(log.durableEndOffset, this.#now()));
  }

  get isActive(): boolean {
    return !this.#isStopped && !this.#state.isFenced;
  }

  /** The accepted ISR (etcd's). */
  get isr(): readonly number[] {
    return this.#state.isr;
  }

  get highWatermark(): number {
    return this.#state.highWatermark;
  }

  followerViews(): FollowerView[] {
    return this.#state.followerViews(this.#log.logEndOffset, this.#now());
  }

  /** See the ordering contract in the header. */
  async append(batch: Uint8Array, options: AppendOptions): Promise<AppendResult> {
    if (!this.isActive) throw this.#notLeader();
    const isAcksAll = options.acks === -1;
    const maxUnreplicated = this.#o.limits.maxUnreplicatedBytesPerPartition;
    if (this.#unreplicatedBytes > 0 && this.#unreplicatedBytes + batch.length > maxUnreplicated) {
      throw new RunnelError('LIMIT_EXCEEDED', `${this.#unreplicatedBytes} bytes of this partition wait for replication to the ISR ${JSON.stringify(this.#state.maximalIsr)} (maxUnreplicatedBytesPerPartition ${maxUnreplicated})`);
    }
    if (isAcksAll) {
      if (this.#state.isUnderMinIsr) {
        throw new RunnelError('NOT_ENOUGH_REPLICAS', `the ISR ${JSON.stringify(this.#state.isr)} has fewer than minInsyncReplicas ${this.#o.minInsyncReplicas}`, { details: { isr: [...this.#state.isr], minInsyncReplicas: this.#o.minInsyncReplicas } });
      }
      if (this.#acksInProgress >= this.#o.limits.maxPendingAcksPerPartition) {
        throw new RunnelError('LIMIT_EXCEEDED', `${this.#acksInProgress} acks=all appends wait for the high watermark (maxPendingAcksPerPartition)`);
      }
      this.#acksInProgress++;
    }
    const bytes = batch.length;
    this.#unreplicatedBytes += bytes;
    const arrivedMs = this.#trace ? traceNowMs() : 0;
    try {
      const r = await this.#log.append(batch, { leaderEpoch: this.leaderEpoch, header: options.header }).catch((err: unknown) => {
        this.#unreplicatedBytes -= bytes;
        throw err;
      });
      const durableMs = this.#trace ? traceNowMs() : 0;
      if (this.#trace) traceStage('leader.localAppend', durableMs - arrivedMs);
      // Offset order: the log resolves appends in order, so the queue stays sorted.
      if (r.duplicate || r.lastOffset < this.#state.highWatermark) this.#unreplicatedBytes -= bytes;
      else this.#unreplicated.push({ lastOffset: r.lastOffset, bytes });
      if (this.#isStopped) {
        if (isAcksAll) throw this.#notLeader();
      } else this.#perform(this.#state.handleLocalDurable(this.#log.durableEndOffset, this.#now()));
      const result: AppendResult = { ...r, logStartOffset: this.#log.logStartOffset };
      if (!isAcksAll) return result;
      await this.#whenCovered(r.lastOffset);
      if (this.#trace) traceStage('leader.replicationWait', traceNowMs() - durableMs);
      return { ...result, logStartOffset: this.#log.logStartOffset };
    } finally {
      if (isAcksAll) this.#acksInProgress--;
    }
  }

  /** One follower fetch (ReplicationServer dispatches it here while this role is active). */
  async handleFetch(request: FetchRequest, fromBrokerId: number, signal: AbortSignal): Promise<FetchResponse> {
    if (!this.isActive) throw this.#notLeader();
    if (request.currentLeaderEpoch > this.leaderEpoch) throw new RunnelError('UNKNOWN_LEADER_EPOCH', `fetch names epoch ${request.currentLeaderEpoch}; this leader is at ${this.leaderEpoch}`);
    if (request.currentLeaderEpoch < this.leaderEpoch) throw new RunnelError('FENCED_LEADER_EPOCH', `fetch names epoch ${request.currentLeaderEpoch}; the leader epoch is ${this.leaderEpoch}`);
    if (request.replicaId !== fromBrokerId || !this.#state.isReplica(fromBrokerId)) {
      throw new RunnelError('INVALID_REQUEST', `broker ${fromBrokerId} (replicaId ${request.replicaId}) is not a follower of this partition (replicas ${JSON.stringify(this.#state.leadership.replicas)})`);
    }
    if (request.maxBytes === 0) return this.#pollHighWatermark(request, fromBrokerId, signal);
    const log = this.#log;
    const divergingEpoch = findDivergence(log, request.lastFetchedEpoch, request.fetchOffset);
    if (divergingEpoch) return this.#answer(divergingEpoch, EMPTY);
    // Below the log start (retention deleted what the follower needs): no records, no position; the
    // answer's logStartOffset tells the follower where to restart its log (truncateFullyAndStartAt).
    if (request.fetchOffset < log.logStartOffset) return this.#answer(null, EMPTY);
    this.#trace?.onFollowerFetch(fromBrokerId, request.fetchOffset);
    this.#perform(this.#state.handleFollowerFetch(fromBrokerId, request.fetchOffset, log.logEndOffset, this.#now()));
    // The high watermark this follower has or is being sent: its poll's answer, on the same link, carries it.
    const known = Math.max(request.knownHighWatermark, this.#pollAnswered.get(fromBrokerId) ?? -1);
    this.#pollAnswered.delete(fromBrokerId);
    const waitMs = Math.min(request.maxWaitMs, this.#o.limits.replicaFetchMaxWaitMs);
    if (this.#writtenEnd <= request.fetchOffset && this.#state.highWatermark <= known && waitMs > 0) {
      const heldMs = this.#trace ? traceNowMs() : 0;
      await this.#hold(fromBrokerId, false, request.fetchOffset, known, waitMs, signal);
      if (this.#trace) traceStage('leader.fetchHeld', traceNowMs() - heldMs);
    }
    if (!this.isActive) throw this.#notLeader();
    const read = await log.read(request.fetchOffset, Math.min(request.maxBytes, this.#o.limits.replicaFetchMaxBytes), { maxOffset: log.logEndOffset });
    this.#trace?.onAnswer(fromBrokerId);
    return this.#answer(null, read.batches);
  }

  /**
   * A high-watermark poll (maxBytes 0; docs/replication-protocol.md): sent by a follower while it writes and
   * fdatasyncs the previous answer's batches, so a high watermark that advances meanwhile reaches it (and its
   * consumers) at once instead of with the answer to its next fetch. Reports no position (the follower's
   * fetches do) and carries no records; held until the high watermark passes knownHighWatermark.
   */
  async #pollHighWatermark(request: FetchRequest, fromBrokerId: number, signal: AbortSignal): Promise<FetchResponse> {
    const waitMs = Math.min(request.maxWaitMs, this.#o.limits.replicaFetchMaxWaitMs);
    if (this.#state.highWatermark <= request.knownHighWatermark && waitMs > 0) await this.#hold(fromBrokerId, true, Infinity, request.knownHighWatermark, waitMs, signal);
    if (!this.isActive) throw this.#notLeader();
    this.#trace?.onAnswer(fromBrokerId);
    return this.#answer(null, EMPTY);
  }

  /** The same epoch, a newer revision (read back from etcd). */
  updateLeadership(l: VersionedLeadership): void {
    if (!this.isActive) return;
    this.#perform(this.#state.updateLeadership(l, this.#now()));
  }

  /** Ends the role: waiting acks and held fetches fail NOT_LEADER_OR_FOLLOWER. */
  stop(): void {
    if (this.#isStopped) return;
    this.#isStopped = true;
    clearInterval(this.#timer);
    this.#offWrite();
    this.#failAcks(this.#notLeader());
    for (const h of [...this.#held]) h.done();
  }

  #answer(divergingEpoch: FetchResponse['divergingEpoch'], records: Uint8Array): FetchResponse {
    const log = this.#log;
    return { leaderEpoch: this.leaderEpoch, highWatermark: this.#state.highWatermark, logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset, divergingEpoch, records };
  }

  #notLeader(): RunnelError {
    return new RunnelError('NOT_LEADER_OR_FOLLOWER', `broker ${this.#o.brokerId} no longer leads this partition at epoch ${this.leaderEpoch}`);
  }

  /** Performs one LeaderReady in its field order (see LeaderReady). */
  #perform(ready: LeaderReady): void {
    if (this.#isStopped) return;
    if (ready.isHighWatermarkAdvanced) {
      this.#log.setHighWatermark(ready.highWatermark);
      this.#trace?.onHighWatermark(this.#state.maximalIsr.filter((id) => id !== this.#o.brokerId));
      this.#releaseReplicated(ready.highWatermark);
      this.#settleCovered(ready.highWatermark, ready.isUnderMinIsr);
      this.#releaseHeld(ready.highWatermark);
    }
    if (ready.alterIsr) this.#alterIsr(ready.alterIsr.expected, ready.alterIsr.isr);
    if (ready.isFenced) {
      this.stop();
      this.#o.onFenced();
    }
  }

  #alterIsr(expected: VersionedLeadership, isr: number[]): void {
    this.#o.isrStore.alterIsr(expected, isr).catch((err: unknown) => {
      this.#o.warn(`alterIsr ${JSON.stringify(isr)} failed: ${(err as Error)?.message ?? err}; treated as unavailable`);
      return { ok: false as const, reason: 'unavailable' as const };
    }).then((result) => {
      if (this.#isStopped) return;
      if (result.ok) this.#o.onLeadership(result.leadership);
      else if (result.reason === 'unavailable') this.#o.warn(`alterIsr ${JSON.stringify(isr)}: the store is unavailable; the ISR stays ${JSON.stringify(this.#state.isr)}`);
      this.#perform(this.#state.handleAlterIsrResult(result, this.#now()));
    });
  }

  /** Resolves once the high watermark covers `lastOffset` (with enough ISR), or rejects (see the header). */
  #whenCovered(lastOffset: number): Promise<void> {
    if (lastOffset < this.#state.highWatermark) {
      return this.#state.isUnderMinIsr ? Promise.reject(this.#afterAppend(lastOffset)) : Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.#acks.push({ lastOffset, deadlineMs: this.#now() + this.#o.limits.replicationTimeoutMs, resolve, reject });
    });
  }

  #afterAppend(lastOffset: number): RunnelError {
    return new RunnelError('NOT_ENOUGH_REPLICAS_AFTER_APPEND', `offset ${lastOffset} is written but the ISR ${JSON.stringify(this.#state.isr)} shrank below minInsyncReplicas ${this.#o.minInsyncReplicas}`);
  }

  #releaseReplicated(highWatermark: number): void {
    const q = this.#unreplicated;
    while (this.#unreplicatedHead < q.length && q[this.#unreplicatedHead].lastOffset < highWatermark) this.#unreplicatedBytes -= q[this.#unreplicatedHead++].bytes;
    if (this.#unreplicatedHead === q.length) {
      this.#unreplicated = [];
      this.#unreplicatedHead = 0;
    } else if (this.#unreplicatedHead > 1024 && this.#unreplicatedHead * 2 > q.length) {
      this.#unreplicated = q.slice(this.#unreplicatedHead);
      this.#unreplicatedHead = 0;
    }
  }

  #settleCovered(highWatermark: number, isUnderMinIsr: boolean): void {
    const acks = this.#acks;
    while (this.#ackHead < acks.length && acks[this.#ackHead].lastOffset < highWatermark) {
      const a = acks[this.#ackHead++];
      if (isUnderMinIsr) a.reject(this.#afterAppend(a.lastOffset));
      else a.resolve();
    }
    this.#compactAcks();
  }

  #failAcks(error: RunnelError): void {
    const acks = this.#acks;
    for (let i = this.#ackHead; i < acks.length; i++) acks[i].reject(error);
    this.#acks = [];
    this.#ackHead = 0;
  }

  #compactAcks(): void {
    if (this.#ackHead === this.#acks.length) {
      this.#acks = [];
      this.#ackHead = 0;
    } else if (this.#ackHead > 1024 && this.#ackHead * 2 > this.#acks.length) {
      this.#acks = this.#acks.slice(this.#ackHead);
      this.#ackHead = 0;
    }
  }

  #tick(): void {
    if (this.#isStopped) return;
    const now = this.#now();
    // NB: the durable end also moves without an append resolving (flushIntervalMs > 0: the flush timer).
    this.#perform(this.#state.handleLocalDurable(this.#log.durableEndOffset, now));
    const acks = this.#acks;
    while (this.#ackHead < acks.length && acks[this.#ackHead].deadlineMs <= now) {
      const a = acks[this.#ackHead++];
      a.reject(new RunnelError('REQUEST_TIMED_OUT', `offset ${a.lastOffset} was not replicated to the ISR ${JSON.stringify(this.#state.maximalIsr)} within replicationTimeoutMs ${this.#o.limits.replicationTimeoutMs}`));
    }
    this.#compactAcks();
  }

  #onWritten(end: number): void {
    if (end <= this.#writtenEnd) return;
    this.#writtenEnd = end;
    this.#trace?.onWritten(end);
    for (const h of [...this.#held]) if (h.fetchOffset < end) h.done();
  }

  /**
   * The high watermark passed `highWatermark - 1`: answers the held fetches that do not know it. A follower's
   * poll is answered first; that follower's held fetches then keep waiting for data, as if they knew it (the
   * poll's answer tells it, and a second answer carrying only the same high watermark would cost both brokers a
   * message and the follower a fetch round trip). `#pollAnswered` remembers it for that follower's next fetch.
   * NB: if the poll's answer is lost (the link closed), the follower's next fetch may wait up to its maxWaitMs
   * for the high watermark: later visibility on that follower, never a wrong one.
   */
  #releaseHeld(highWatermark: number): void {
    for (const h of [...this.#held]) {
      if (!h.isPoll || h.knownHighWatermark >= highWatermark) continue;
      this.#pollAnswered.set(h.followerId, highWatermark);
      h.done();
    }
    for (const h of [...this.#held]) {
      if (h.isPoll || h.knownHighWatermark >= highWatermark) continue;
      // Its poll was just answered with this high watermark (an earlier answer carried a lower one).
      if (this.#pollAnswered.get(h.followerId) === highWatermark) h.knownHighWatermark = highWatermark;
      else h.done();
    }
  }

  /** Holds a fetch until data past `fetchOffset` is written, the high watermark passes `knownHighWatermark`, `waitMs`, abort or stop. Never rejects. */
  #hold(followerId: number, isPoll: boolean, fetchOffset: number, knownHighWatermark: number, waitMs: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const held: HeldFetch = {
        followerId, isPoll, fetchOffset, knownHighWatermark,
        done: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', held.done);
          this.#held.delete(held);
          resolve();
        },
      };
      const timer = setTimeout(held.done, waitMs);
      signal.addEventListener('abort', held.done, { once: true });
      this.#held.add(held);
    });
  }
}
