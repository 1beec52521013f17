/**
 * `ReplicaPartition`: a replica of a replicated partition on this broker,
 * the `Partition` the broker serves clients from (partition/partition.ts).
 * Its role follows the leadership etcd holds (`applyLeadership`): leader
 * (leader.ts: appends, answers follower fetches, high watermark, ISR),
 * follower (follower.ts: fetch loop; appends from clients are refused
 * NOT_LEADER_OR_FOLLOWER) or none (leader offline, not a replica, or
 * elected while not electable: see `isElectable`).
 *
 * Ordering contract (on top of Partition's):
 * - leadership changes apply one at a time, in call order; an older epoch
 *   (or the same epoch at an older revision) is ignored;
 * - a role ends completely (follower loop stopped, leader's waiting acks
 *   failed NOT_LEADER_OR_FOLLOWER) before the next begins, so a truncation
 *   by epoch happens before the first fetch of the new epoch and no append
 *   of one role runs during another;
 * - reads on every role stop below the high watermark: a follower's is the
 *   leader's (as learned) capped at its own durable end, so consumers of a
 *   follower never see uncommitted records.
 */
import { assert, RunnelError } from '@runnel/client/codec';
import { isNewerRevision, type ClusterPartitionView, type IsrStore, type VersionedLeadership } from '../cluster/cluster-state.ts';
import type { PartitionLog } from '../log/partition-log.ts';
import type { ProducerEntry } from '../log/producer-state.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { AppendOptions, AppendResult, Partition, PartitionReadResult, PartitionState, VisibleBatch } from '../partition/partition.ts';
import { VisibleWaiters } from '../partition/visible-waiters.ts';
import { FollowerRole } from './follower.ts';
import { LeaderRole } from './leader.ts';
import { resolveReplicationLimits, type ReplicationLimits } from './limits.ts';
import type { PeerLinks } from './peer-links.ts';
import type { FetchRequest, FetchResponse } from './protocol.ts';
import type { FetchHandlerRegistry } from './replication-server.ts';

export type ReplicaRole = 'leader' | 'follower' | 'none';

export interface ReplicaPartitionOptions {
  topic: TopicInfo;
  partition: number;
  minInsyncReplicas: number;
  /** Opened with `isReplicated: true` (its high watermark moves only by replication). */
  log: PartitionLog;
  brokerId: number;
  links: PeerLinks;
  isrStore: IsrStore;
  /** Where follower fetches for this partition find it (the broker's ReplicationServer). */
  server: FetchHandlerRegistry;
  limits?: Partial<ReplicationLimits>;
  warn?: (message: string) => void;
  nowMs?: () => number;
}

export class ReplicaPartition implements Partition {
  readonly topic: TopicInfo;
  readonly partition: number;
  readonly log: PartitionLog;
  readonly limits: ReplicationLimits;
  readonly #o: ReplicaPartitionOptions;
  readonly #warn: (message: string) => void;
  readonly #waiters: VisibleWaiters;
  readonly #offAppend: () => void;
  readonly #unregister: () => void;
  readonly #checkpointTimer: ReturnType<typeof setInterval>;
  #leadership: VersionedLeadership | null = null;
  #leader: LeaderRole | null = null;
  #follower: FollowerRole | null = null;
  #chain: Promise<void> = Promise.resolve();
  #isClosed = false;
  #isElectable: boolean;
  /** The re-read of a fenced leadership (#rereadAfterFence). */
  #fenceTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Registers itself for follower fetches; role 'none' until the first `applyLeadership`.
   * @example const p = new ReplicaPartition({ topic, partition: 0, minInsyncReplicas: 2, log, brokerId: 1, links, isrStore, server }); await p.applyLeadership(await store.leadership(topic.topicId, 0));
   */
  constructor(o: ReplicaPartitionOptions) {
    assert(o.log.isReplicated, 'a ReplicaPartition needs its log opened with { isReplicated: true } (else a restarted replica would serve records the cluster never committed)');
    this.#o = o;
    this.topic = o.topic;
    this.partition = o.partition;
    this.log = o.log;
    this.limits = resolveReplicationLimits(o.limits);
    this.#warn = o.warn ?? ((m) => console.warn(`[replica ${o.brokerId} ${o.topic.name}/${o.partition}] ${m}`));
    // Only a cut below the checkpointed high watermark proves lost committed records: a tail torn by a crash
    // was never fdatasync'ed, so never counted (a whole-cluster crash must not leave no electable replica).
    const report = o.log.recoveryReport;
    const committed = o.log.checkpointedHighWatermark;
    const isCut = report.problem !== null || report.truncatedBytes > 0;
    this.#isElectable = !(isCut && committed !== null && o.log.logEndOffset < committed);
    if (!this.#isElectable) this.#warn(`recovery cut the log to ${o.log.logEndOffset}, below the high watermark ${committed} it had (${report.problem?.reason ?? 'truncated'}): not electable until it caught up with a leader`);
    this.#waiters = new VisibleWaiters(() => o.log.highWatermark);
    this.#offAppend = o.log.onAppend(() => this.#waiters.notify());
    this.#unregister = o.server.registerReplica(o.topic.topicId, o.partition, (request, from, signal) => this.#handleFetch(request, from, signal));
    this.#checkpointTimer = setInterval(() => {
      o.log.checkpointHighWatermark().catch((err: unknown) => this.#warn(`high watermark checkpoint failed: ${(err as Error)?.message ?? err}`));
    }, this.limits.highWatermarkCheckpointMs);
    this.#checkpointTimer.unref?.();
  }

  get role(): ReplicaRole {
    if (this.#leader?.isActive) return 'leader';
    const l = this.#leadership;
    return l && l.replicas.includes(this.#o.brokerId) && l.leader !== this.#o.brokerId ? 'follower' : 'none';
  }

  get leaderEpoch(): number { return this.#leadership?.leaderEpoch ?? -1; }
  get logStartOffset(): number { return this.log.logStartOffset; }
  get logEndOffset(): number { return this.log.logEndOffset; }
  get highWatermark(): number { return this.log.highWatermark; }

  /**
   * Each group-commit fdatasync of this replica's log, leader or follower, with its duration: the
   * broker's runnel_fsync_latency_seconds (ClusterPartition passes it on). Returns the unsubscribe.
   */
  onFlush(listener: (durationMs: number) => void): () => void {
    return this.log.onFlush(listener);
  }
  /**
   * False while this replica lacks committed records: its recovery cut a torn
   * or corrupt tail at open below the high watermark it had checkpointed, and
   * no fetch has brought it back to a leader's high watermark since (a cut
   * above it is electable: a crash's torn tail was never acknowledged; a cut
   * of records committed after the last checkpoint goes unseen here, and the
   * leader drops such a replica from the ISR at its first fetch). Electing it then would be an unclean
   * election (acknowledged records lost): the controller must skip it.
   */
  get isElectable(): boolean { return this.#isElectable; }

  /** The leadership this replica acts on (null before the first). */
  get leadership(): VersionedLeadership | null { return this.#leadership; }

  /**
   * Applies a leadership read from etcd: idempotent; an older epoch (or revision) is ignored;
   * a new epoch ends the current role and starts the one it names. Resolves when applied.
   */
  applyLeadership(l: VersionedLeadership): Promise<void> {
    assert(l.topicId === this.topic.topicId && l.partition === this.partition, `leadership of ${l.topicId}/${l.partition} applied to ${this.topic.topicId}/${this.partition}`);
    const next = this.#chain.then(() => this.#apply(l));
    this.#chain = next.catch((err: unknown) => this.#warn(`applying leadership epoch ${l.leaderEpoch} failed: ${(err as Error)?.message ?? err}`));
    return next;
  }

  async #apply(l: VersionedLeadership): Promise<void> {
    if (this.#isClosed) return;
    const current = this.#leadership;
    if (current && l.leaderEpoch < current.leaderEpoch) return;
    if (current && l.leaderEpoch === current.leaderEpoch) {
      const isResumingFenced = this.#leader !== null && !this.#leader.isActive && l.leader === this.#o.brokerId && isNewerRevision(l.revision, current.revision);
      if (!isNewerRevision(l.revision, current.revision)) return;
      this.#leadership = l;
      if (isResumingFenced) {
        // Logged: a fence without this line after it is a partition this broker stopped leading for good.
        this.#warn(`resuming as leader at epoch ${l.leaderEpoch} (revision ${l.revision}) after a fence`);
        await this.#becomeRole(l);
      }
      else this.#leader?.updateLeadership(l);
      return;
    }
    this.#leadership = l;
    await this.#becomeRole(l);
  }

  /** Ends the current role (completely), then starts the one `l` names for this broker. */
  async #becomeRole(l: VersionedLeadership): Promise<void> {
    await this.#endRole();
    if (this.#isClosed) return;
    const me = this.#o.brokerId;
    if (l.leader === me && !this.#isElectable) {
      // Leading now could make the cluster lose acknowledged records (the others would truncate to this log).
      this.#warn(`elected leader at epoch ${l.leaderEpoch} while not electable (recovery cut this log; it has not caught up since): refusing to lead; the controller must elect another in-sync replica`);
      return;
    }
    if (l.leader === me) {
      this.#leader = new LeaderRole({
        brokerId: me, leadership: l, minInsyncReplicas: this.#o.minInsyncReplicas, log: this.log, isrStore: this.#o.isrStore, limits: this.limits,
        onLeadership: (accepted) => {
          if (!this.#leadership || isNewerRevision(accepted.revision, this.#leadership.revision)) this.#leadership = accepted;
        },
        onFenced: () => {
          this.#warn(`fenced at epoch ${l.leaderEpoch}: the leadership changed in the store; waiting for the next one`);
          this.#rereadAfterFence(l.leaderEpoch);
        },
        warn: this.#warn, nowMs: this.#o.nowMs,
      });
    } else if (l.leader >= 0 && l.replicas.includes(me)) {
      this.#follower = new FollowerRole({
        brokerId: me, leaderId: l.leader, leaderEpoch: l.leaderEpoch, topicId: this.topic.topicId, partition: this.partition,
        log: this.log, links: this.#o.links, limits: this.limits, warn: this.#warn,
        onCaughtUp: () => { this.#isElectable = true; },
      });
      this.#follower.start();
    }
  }

  /**
   * A fenced leader resumes when the revision that fenced it arrives (#apply, `isResumingFenced`), which the
   * store's watch brings. If it has not come within alterIsrRetryMs (a watch event late or lost; a failed CI run
   * logged a fence and nothing after it, not proven to be this), the store is read again, and again every
   * alterIsrRetryMs, until a role of this epoch is active again, a newer epoch is applied, or the replica closes.
   * Applying what is read is what the watch would have done (idempotent, ordered on #chain).
   */
  #rereadAfterFence(epoch: number): void {
    const read = this.#o.isrStore.readLeadership?.bind(this.#o.isrStore);
    if (!read) return;
    const isSettled = () => this.#isClosed || this.#leader?.isActive === true || (this.#leadership?.leaderEpoch ?? -1) > epoch;
    const again = () => {
      if (isSettled()) return;
      clearTimeout(this.#fenceTimer);
      this.#fenceTimer = setTimeout(() => {
        if (isSettled()) return;
        read(this.topic.topicId, this.partition).then(
          (stored) => (stored && !isSettled() ? this.applyLeadership(stored) : undefined),
          (err: unknown) => this.#warn(`reading the leadership after a fence failed: ${(err as Error)?.message ?? err}; retrying`),
        ).catch(() => undefined).finally(again);
      }, this.limits.alterIsrRetryMs);
      this.#fenceTimer.unref?.();
    };
    again();
  }

  async #endRole(): Promise<void> {
    const leader = this.#leader;
    const follower = this.#follower;
    this.#leader = null;
    this.#follower = null;
    leader?.stop();
    await follower?.stop();
  }

  append(batch: Uint8Array, options: AppendOptions): Promise<AppendResult> {
    const leader = this.#leader;
    if (leader === null || !leader.isActive) return Promise.reject(this.#notLeader());
    return leader.append(batch, options);
  }

  #notLeader(): RunnelError {
    const l = this.#leadership;
    return new RunnelError('NOT_LEADER_OR_FOLLOWER', `broker ${this.#o.brokerId} does not lead ${this.topic.name}/${this.partition}${l ? ` (leader ${l.leader}, epoch ${l.leaderEpoch})` : ''}`, { details: { leader: l?.leader ?? -1, leaderEpoch: l?.leaderEpoch ?? -1 } });
  }

  read(offset: number, maxBytes: number, options: { maxOffset?: number } = {}): Promise<PartitionReadResult> {
    const hw = this.log.highWatermark;
    return this.log.read(offset, maxBytes, { maxOffset: Math.min(options.maxOffset ?? hw, hw) });
  }

  offsetForTimestamp(timestampMs: number): Promise<number | null> {
    return this.log.offsetForTimestamp(timestampMs);
  }

  async producerState(producerId: number): Promise<ProducerEntry | undefined> {
    if (this.#leader === null || !this.#leader.isActive) throw this.#notLeader();
    return this.log.producerState(producerId);
  }

  onVisible(listener: (batch: VisibleBatch) => void): () => void {
    return this.log.onAppend(listener);
  }

  waitForVisible(offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.#waiters.wait(offset, timeoutMs, signal);
  }

  state(): PartitionState {
    const l = this.#leadership;
    const log = this.log;
    return {
      partition: this.partition, leader: l?.leader ?? -1, leaderEpoch: l?.leaderEpoch ?? -1, replicas: l ? [...l.replicas] : [],
      isr: l ? [...l.isr] : [], logStartOffset: log.logStartOffset, highWatermark: log.highWatermark, logEndOffset: log.logEndOffset,
    };
  }

  /** This replica as the cluster view shows it (GET /v1/cluster, metrics). */
  replicationView(): ClusterPartitionView {
    const l = this.#leadership;
    const leader = this.#leader?.isActive ? this.#leader : null;
    const view: ClusterPartitionView = {
      topic: this.topic.name, partition: this.partition, leader: l?.leader ?? -1, leaderEpoch: l?.leaderEpoch ?? -1,
      replicas: l ? [...l.replicas] : [], isr: l ? [...l.isr] : [], role: this.role,
      highWatermark: this.log.highWatermark, logEndOffset: this.log.logEndOffset,
    };
    if (leader) view.followers = leader.followerViews().map(({ brokerId, lagRecords, lagMs, inIsr }) => ({ brokerId, lagRecords, lagMs, inIsr }));
    return view;
  }

  /** Ends the role and waits, stops serving fetches, then flushes and closes the log. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    clearInterval(this.#checkpointTimer);
    clearTimeout(this.#fenceTimer);
    this.#unregister();
    await this.#chain;
    await this.#endRole();
    this.#waiters.close();
    this.#offAppend();
    await this.log.close();
  }

  /** Wakes waits without closing (broker shutdown ends long polls before the logs flush). */
  endWaits(): void {
    this.#waiters.close();
  }

  #handleFetch(request: FetchRequest, fromBrokerId: number, signal: AbortSignal): Promise<FetchResponse> {
    const leader = this.#leader;
    if (leader === null || !leader.isActive) {
      const l = this.#leadership;
      // A follower naming a newer epoch than this replica knows: it has not heard yet (the follower retries).
      if (l && request.currentLeaderEpoch > l.leaderEpoch) return Promise.reject(new RunnelError('UNKNOWN_LEADER_EPOCH', `fetch names epoch ${request.currentLeaderEpoch}; broker ${this.#o.brokerId} knows ${l.leaderEpoch}`));
      return Promise.reject(new RunnelError('NOT_LEADER_OR_FOLLOWER', `broker ${this.#o.brokerId} does not lead ${this.topic.name}/${this.partition}${l ? ` (leader ${l.leader}, epoch ${l.leaderEpoch})` : ''}`));
    }
    return leader.handleFetch(request, fromBrokerId, signal);
  }
}
