/**
 * A partition leader's replication state (pure, sans-IO): follower positions,
 * the in-sync replica set and the high watermark, for one leader epoch
 * (Kafka's Partition/Replica state; docs/cluster.md "Replication protocol").
 * Events come in with `nowMs`; each returns a `LeaderReady` the driver
 * (leader.ts) performs. No timers, no I/O.
 *
 * Rules:
 * - A follower's position is the fetchOffset of its latest fetch: its DURABLE
 *   log end. Unknown (-1) until it fetches in this epoch.
 * - High watermark = the smallest durable end over the maximal ISR (the
 *   leader's own included), never moving back. Maximal ISR = the ISR etcd
 *   accepted ∪ the one proposed (KIP-497): a member being removed still counts
 *   until etcd accepted the removal; a member being added counts at once
 *   (it can only hold the high watermark lower).
 * - Caught up (Kafka's lastCaughtUpTimeMs): a fetch at the leader's log end
 *   makes the follower caught up now; a fetch at the log end the leader had
 *   at that follower's previous fetch makes it caught up as of that fetch.
 * - Shrink: an ISR follower not caught up for replicaLagTimeMs leaves; one
 *   whose durable end is below the high watermark leaves at once (it lost
 *   committed records: a corrupt or torn tail cut at its restart), so it
 *   cannot be elected before it has them again.
 *   Expand: a replica whose durable end reached the high watermark and the
 *   start of this epoch joins. One alterIsr at a time; 'unavailable' is
 *   retried after alterIsrRetryMs; 'fenced' ends this state (the leadership
 *   changed under it), unless a newer revision of this epoch naming this
 *   leader came in by updateLeadership meanwhile: then it is proposed again.
 * Invariants: highWatermark never decreases and never exceeds the leader's
 * own durable end; the leader is always in the ISR; the accepted leadership's
 * revision never goes back (an alterIsr answer or a read older than the one
 * held is not applied).
 */
import { assert } from '@runnel/client/codec';
import { isNewerRevision, type AlterIsrResult, type VersionedLeadership } from '../cluster/cluster-state.ts';

export interface LeaderStateOptions {
  brokerId: number;
  /** Names this broker as leader. */
  leadership: VersionedLeadership;
  minInsyncReplicas: number;
  replicaLagTimeMs: number;
  alterIsrRetryMs: number;
  /** The log end when this epoch began: its first offset (a joining follower must have reached it). */
  epochStartOffset: number;
  /** The log's high watermark now (it only moves forward from here). */
  highWatermark: number;
  /** The leader's own durable log end now. */
  localDurableEnd: number;
  nowMs: number;
}

/**
 * What one event made true. Perform in field order.
 */
export interface LeaderReady {
  /**
   * The high watermark now. When `isHighWatermarkAdvanced`: pass it to
   * `log.setHighWatermark` FIRST (reads and onVisible see it), THEN settle the
   * acks=-1 appends whose lastOffset is below it (by `isUnderMinIsr`), THEN
   * answer the follower fetches held for a newer high watermark.
   */
  highWatermark: number;
  isHighWatermarkAdvanced: boolean;
  /**
   * The ISR etcd accepted has fewer than minInsyncReplicas members: an acks=-1
   * append the high watermark covers fails NOT_ENOUGH_REPLICAS_AFTER_APPEND
   * instead of succeeding, and a new one fails NOT_ENOUGH_REPLICAS before appending.
   */
  isUnderMinIsr: boolean;
  /**
   * Start this compare-and-swap now (no other is in flight) and report its
   * result with `handleAlterIsrResult`. The new ISR counts for shrinking only
   * after `ok` (already folded in here for additions).
   */
  alterIsr: { expected: VersionedLeadership; isr: number[] } | null;
  /** The leadership changed under this leader (alterIsr said fenced): stop acting as leader; fail waiting acks NOT_LEADER_OR_FOLLOWER. */
  isFenced: boolean;
}

export interface FollowerView {
  brokerId: number;
  /** Durable log end of its latest fetch; -1 before its first fetch in this epoch. */
  durableEnd: number;
  lagRecords: number;
  /** Ms since it was last caught up. */
  lagMs: number;
  /** In the maximal ISR (counted for the high watermark). */
  inIsr: boolean;
}

interface FollowerPosition {
  durableEnd: number;
  lastFetchMs: number;
  /** The leader's log end at this follower's previous fetch; -1 before one. */
  lastFetchLeaderEnd: number;
  lastCaughtUpMs: number;
}

const UNKNOWN = -1;

export class LeaderState {
  readonly brokerId: number;
  readonly leaderEpoch: number;
  readonly epochStartOffset: number;
  readonly #options: LeaderStateOptions;
  #leadership: VersionedLeadership;
  readonly #followers = new Map<number, FollowerPosition>();
  #highWatermark: number;
  #localDurableEnd: number;
  /** The ISR of the alterIsr in flight, or null. */
  #proposed: number[] | null = null;
  /** The revision the alterIsr in flight compares against. */
  #proposedAgainst = '';
  /** No alterIsr before this time (after 'unavailable'). */
  #retryAtMs = 0;
  #isFenced = false;

  constructor(o: LeaderStateOptions) {
    assert(o.leadership.leader === o.brokerId, `leadership names broker ${o.leadership.leader} as leader, not ${o.brokerId}`);
    assert(o.highWatermark <= o.localDurableEnd && o.localDurableEnd <= o.epochStartOffset, `highWatermark ${o.highWatermark} <= durable end ${o.localDurableEnd} <= epoch start ${o.epochStartOffset} is required`);
    this.brokerId = o.brokerId;
    this.leaderEpoch = o.leadership.leaderEpoch;
    this.epochStartOffset = o.epochStartOffset;
    this.#options = o;
    this.#leadership = withLeaderInIsr(o.leadership);
    this.#highWatermark = o.highWatermark;
    this.#localDurableEnd = o.localDurableEnd;
    for (const id of o.leadership.replicas) {
      if (id === o.brokerId) continue;
      // Kafka resets ISR members to caught up at election, so they get replicaLagTimeMs to fetch.
      const isInIsr = o.leadership.isr.includes(id);
      this.#followers.set(id, { durableEnd: UNKNOWN, lastFetchMs: o.nowMs, lastFetchLeaderEnd: UNKNOWN, lastCaughtUpMs: isInIsr ? o.nowMs : 0 });
    }
  }

  get leadership(): VersionedLeadership { return this.#leadership; }
  /** The ISR etcd accepted. */
  get isr(): readonly number[] { return this.#leadership.isr; }
  /** The ISR the high watermark waits for: accepted ∪ proposed. */
  get maximalIsr(): number[] {
    const isr = this.#leadership.isr;
    if (this.#proposed === null) return [...isr];
    return [...isr, ...this.#proposed.filter((id) => !isr.includes(id))];
  }
  get highWatermark(): number { return this.#highWatermark; }
  get isUnderMinIsr(): boolean { return this.#leadership.isr.length < this.#options.minInsyncReplicas; }
  get isFenced(): boolean { return this.#isFenced; }
  get isAlterIsrInFlight(): boolean { return this.#proposed !== null; }

  /** Whether `brokerId` is an assigned follower of this partition (fetches from others are refused). */
  isReplica(brokerId: number): boolean {
    return this.#followers.has(brokerId);
  }

  /** A follower fetched from `fetchOffset` (its durable end) while the leader's log ended at `leaderLogEnd`. */
  handleFollowerFetch(followerId: number, fetchOffset: number, leaderLogEnd: number, nowMs: number): LeaderReady {
    const f = this.#followers.get(followerId);
    assert(f !== undefined, `broker ${followerId} is not a follower of this partition`);
    if (fetchOffset >= leaderLogEnd) f.lastCaughtUpMs = nowMs;
    else if (f.lastFetchLeaderEnd !== UNKNOWN && fetchOffset >= f.lastFetchLeaderEnd) f.lastCaughtUpMs = Math.max(f.lastCaughtUpMs, f.lastFetchMs);
    f.lastFetchLeaderEnd = leaderLogEnd;
    f.lastFetchMs = nowMs;
    f.durableEnd = fetchOffset;
    return this.#step(nowMs);
  }

  /** The leader's own durable end moved (an fdatasync completed). */
  handleLocalDurable(durableEnd: number, nowMs: number): LeaderReady {
    if (durableEnd > this.#localDurableEnd) this.#localDurableEnd = durableEnd;
    return this.#step(nowMs);
  }

  /** Periodic: the ISR lag check and alterIsr retries. */
  tick(nowMs: number): LeaderReady {
    return this.#step(nowMs);
  }

  /** The result of the alterIsr this state asked for. */
  handleAlterIsrResult(result: AlterIsrResult, nowMs: number): LeaderReady {
    assert(this.#proposed !== null, 'an alterIsr result arrived with none in flight');
    this.#proposed = null;
    if (result.ok) {
      assert(result.leadership.leaderEpoch === this.leaderEpoch && result.leadership.leader === this.brokerId, `alterIsr answered epoch ${result.leadership.leaderEpoch} leader ${result.leadership.leader}`);
      // NB: the watch can bring this write AND a later one (the controller dropping a follower the write re-added)
      // before the write's own answer: the later revision already holds this write; going back to it would have
      // the leader wait for a follower etcd's ISR no longer has, and its next proposal lose against a key it never
      // sees change again (a fence no revision revives).
      if (isNewerRevision(result.leadership.revision, this.#leadership.revision)) this.#leadership = withLeaderInIsr(result.leadership);
    } else if (result.reason === 'fenced') {
      // A newer revision of this epoch, naming this leader, arrived while the compare-and-swap was in flight (the
      // controller dropped a dead follower, KIP-841): that is why it failed, not a new leadership. Propose again on
      // it; fencing here would leave a leader no later revision revives (fault seeds 1048/1049: the ISR never re-formed).
      if (this.#leadership.revision === this.#proposedAgainst) this.#isFenced = true;
    } else {
      this.#retryAtMs = nowMs + this.#options.alterIsrRetryMs;
    }
    return this.#step(nowMs);
  }

  /**
   * The same epoch, a newer revision of the leadership key (read back from
   * etcd): its ISR becomes the accepted one (an older or equal one is ignored). NB: an alterIsr in flight will be
   * answered fenced (the revision it names is stale): not a fence, it is
   * proposed again against this revision (handleAlterIsrResult).
   */
  updateLeadership(l: VersionedLeadership, nowMs: number): LeaderReady {
    assert(l.leaderEpoch === this.leaderEpoch && l.leader === this.brokerId, `updateLeadership of epoch ${l.leaderEpoch} leader ${l.leader} on epoch ${this.leaderEpoch}`);
    if (isNewerRevision(l.revision, this.#leadership.revision)) this.#leadership = withLeaderInIsr(l);
    return this.#step(nowMs);
  }

  /** Per follower: position, lag, ISR membership (GET /v1/cluster, metrics). */
  followerViews(leaderLogEnd: number, nowMs: number): FollowerView[] {
    const maximal = this.maximalIsr;
    return [...this.#followers].map(([brokerId, f]) => ({
      brokerId, durableEnd: f.durableEnd,
      lagRecords: Math.max(0, leaderLogEnd - Math.max(f.durableEnd, 0)),
      lagMs: f.durableEnd >= leaderLogEnd ? 0 : Math.max(0, nowMs - f.lastCaughtUpMs),
      inIsr: maximal.includes(brokerId),
    }));
  }

  /** NB: the high watermark first, then the ISR decision: a replica joins when it reached the high watermark this step produced. */
  #step(nowMs: number): LeaderReady {
    const before = this.#highWatermark;
    if (!this.#isFenced) this.#highWatermark = Math.max(before, this.#minDurableEnd());
    const alterIsr = this.#isFenced ? null : this.#maybeAlterIsr(nowMs);
    return {
      highWatermark: this.#highWatermark, isHighWatermarkAdvanced: this.#highWatermark > before,
      isUnderMinIsr: this.isUnderMinIsr, alterIsr, isFenced: this.#isFenced,
    };
  }

  #minDurableEnd(): number {
    let min = this.#localDurableEnd;
    for (const id of this.maximalIsr) {
      if (id === this.brokerId) continue;
      const f = this.#followers.get(id);
      // An ISR member this leader has not heard from holds the high watermark where it is.
      if (!f || f.durableEnd === UNKNOWN) return this.#highWatermark;
      if (f.durableEnd < min) min = f.durableEnd;
    }
    return min;
  }

  /** Proposes the next ISR when it differs and nothing is in flight. */
  #maybeAlterIsr(nowMs: number): { expected: VersionedLeadership; isr: number[] } | null {
    if (this.#proposed !== null || nowMs < this.#retryAtMs) return null;
    const lagTimeMs = this.#options.replicaLagTimeMs;
    const current = this.#leadership.isr;
    const next: number[] = [];
    for (const id of this.#leadership.replicas) {
      if (id === this.brokerId) {
        next.push(id);
        continue;
      }
      const f = this.#followers.get(id);
      if (!f) continue;
      if (current.includes(id)) {
        const hasCommitted = f.durableEnd === UNKNOWN || f.durableEnd >= this.#highWatermark;
        if (nowMs - f.lastCaughtUpMs <= lagTimeMs && hasCommitted) next.push(id);
      } else if (f.durableEnd !== UNKNOWN && f.durableEnd >= this.#highWatermark && f.durableEnd >= this.epochStartOffset) {
        next.push(id);
      }
    }
    if (next.length === current.length && next.every((id) => current.includes(id))) return null;
    // A joining replica reached the high watermark, maybe never the log end while catching up: it counts as
    // caught up from now (else the lag rule would shrink it at once and the ISR would flap).
    for (const id of next) if (!current.includes(id)) this.#followers.get(id)!.lastCaughtUpMs = nowMs;
    this.#proposed = next;
    this.#proposedAgainst = this.#leadership.revision;
    return { expected: this.#leadership, isr: next };
  }
}

/** The leader is always in its own ISR (a leadership read from etcd names it; this only guards the invariant). */
function withLeaderInIsr(l: VersionedLeadership): VersionedLeadership {
  assert(l.isr.includes(l.leader), `the ISR ${JSON.stringify(l.isr)} must include the leader ${l.leader}`);
  return l;
}
