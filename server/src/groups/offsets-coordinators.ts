/**
 * The group coordinators a cluster broker runs: one `GroupCoordinator` per
 * partition of `__consumer_offsets` it leads, over a `PartitionOffsetStore`
 * of that partition (Kafka's GroupMetadataManager: load on becoming leader,
 * unload on resigning). Driven by leadership changes, checked again by every
 * request for a coordinator, and a load that ends without a coordinator is
 * looked at again after offsetsLoadPollMs.
 *
 * Lifecycle of partition p on this broker, per leader epoch:
 *   not leading → (becomes leader of epoch e) loading → ready
 *   loading | ready → (leadership moves, or a new epoch) resigned, and, if
 *   it leads the new epoch, loading again from the log.
 * Invariant: at most one coordinator per partition exists here, and it
 * answers only for the epoch it loaded: a broker that led p, lost it and
 * leads it again replays the log again (another leader may have written in
 * between). A store's `isCurrent` is this same check, so a coordinator
 * that has not yet heard of its resignation still cannot append.
 */
import { RunnelError } from '@runnel/client/codec';
import type { Partition } from '../partition/partition.ts';
import { GroupCoordinator, type GroupCoordinatorDeps } from './coordinator.ts';
import type { ClusterGroupLimits } from './cluster-group-limits.ts';
import type { PartitionLag } from './consumer-lag.ts';
import type { GroupServiceHost, GroupSummary } from './group-service.ts';
import { PartitionOffsetStore } from './partition-offset-store.ts';

/** What the cluster tells the group service about `__consumer_offsets` (the cluster wiring implements it). */
export interface OffsetsLeadership {
  /** Partition count of `__consumer_offsets` as created (placement uses it); 0 while the topic does not exist yet. */
  readonly partitions: number;
  /**
   * This broker's local replica of partition p, undefined when it holds none. Appends on it must not
   * be forwarded to another broker: they fail unless this replica leads (the fencing of a stale
   * coordinator relies on it).
   */
  offsetsPartition(p: number): Partition | undefined;
  /** Whether this broker's replica of p is the leader now. */
  isLeader(p: number): boolean;
  /** Broker id of p's leader; -1 when it has none. */
  leaderOf(p: number): number;
  /**
   * The read barrier of offset fetches and describes: resolves true only if this broker still leads p at
   * `epoch` as of a moment after the call (a linearizable read of the leadership store), false if it does
   * not; rejects retryably (LEADER_NOT_AVAILABLE) when that cannot be told. Absent: no barrier (this
   * broker's own view is trusted; single-process tests).
   */
  confirmLeader?(p: number, epoch: number): Promise<boolean>;
  /** Called after any change of p's leadership (leader or epoch) as this broker learned it. Returns the unsubscribe. */
  onLeadershipChange(listener: (p: number) => void): () => void;
  /** Stops whatever the view runs (a poll); the group service calls it when it closes. */
  close?(): void;
}

export interface OffsetsCoordinatorsDeps {
  leadership: OffsetsLeadership;
  host: GroupServiceHost;
  limits: ClusterGroupLimits;
  freshHighWatermark?: GroupCoordinatorDeps['freshHighWatermark'];
  /** A load failed for another reason than losing leadership (it is retried after offsetsLoadPollMs, as is every load that ends without a coordinator). */
  onLoadError?(p: number, error: unknown): void;
  nowMs?: () => number;
}

interface Slot {
  readonly partition: Partition;
  readonly epoch: number;
  readonly abort: AbortController;
  coordinator?: GroupCoordinator;
  /** Resolves to the coordinator once loaded, or undefined when the load ended without one. */
  readonly ready: Promise<GroupCoordinator | undefined>;
}

export class OffsetsCoordinators {
  private readonly slots = new Map<number, Slot>();
  /** Resignations and closes in progress (close waits for them). */
  private readonly ending = new Set<Promise<void>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly offLeadership: () => void;
  private closed = false;

  constructor(private readonly deps: OffsetsCoordinatorsDeps) {
    this.offLeadership = deps.leadership.onLeadershipChange((p) => this.reconcile(p));
    for (let p = 0; p < deps.leadership.partitions; p++) this.reconcile(p);
    // NB: `partitions` may be 0 until `__consumer_offsets` exists; its partitions are reconciled as their leadership is announced.
  }

  /**
   * The coordinator of p when this broker leads it, waiting up to `waitMs` while it loads (then
   * LEADER_NOT_AVAILABLE: still loading); undefined when this broker does not lead p.
   */
  async coordinatorOf(p: number, waitMs: number): Promise<GroupCoordinator | undefined> {
    // NB: what an announcement would do, in case none came: a leadership that changed and changed back between
    // two polls of it (a fence and resume) is not announced, and a slot dropped meanwhile would never load again.
    this.reconcile(p);
    const slot = this.slots.get(p);
    if (!slot) return undefined;
    if (slot.coordinator) return slot.coordinator;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(resolve, Math.max(0, waitMs), 'timeout'); });
    const coordinator = await Promise.race([slot.ready, timedOut]).finally(() => clearTimeout(timer));
    if (coordinator === 'timeout') {
      throw new RunnelError('LEADER_NOT_AVAILABLE', `${slot.partition.topic.name} partition ${p}: this broker leads it and is still loading its committed offsets`);
    }
    return this.slots.get(p) === slot ? coordinator : undefined;
  }

  /**
   * As `coordinatorOf`, then the read barrier (`OffsetsLeadership.confirmLeader`): the coordinator only if
   * this broker still leads p in the epoch it loaded as of a moment after the call, else undefined. For
   * requests answered from memory (offset fetch, describe): a coordinator deposed while paused or cut off
   * answers them before its watch tells it, and would miss commits its successor already acknowledged.
   * (Commits need no barrier: a deposed leader's acks=-1 append never gets its high watermark.)
   */
  async confirmedCoordinatorOf(p: number, waitMs: number): Promise<GroupCoordinator | undefined> {
    const coordinator = await this.coordinatorOf(p, waitMs);
    const { leadership } = this.deps;
    if (!coordinator || !leadership.confirmLeader) return coordinator;
    const slot = this.slots.get(p);
    if (!slot || slot.coordinator !== coordinator) return undefined;
    if (!(await leadership.confirmLeader(p, slot.epoch))) return undefined;
    return this.slots.get(p) === slot ? coordinator : undefined;
  }

  /** Whether p is loading or loaded here. */
  isLoading(p: number): boolean {
    return this.slots.has(p);
  }

  /** Loaded coordinators (lag, list, topic changes, remote-sink sweeps). */
  loaded(): GroupCoordinator[] {
    const out: GroupCoordinator[] = [];
    for (const slot of this.slots.values()) if (slot.coordinator) out.push(slot.coordinator);
    return out;
  }

  listGroups(): GroupSummary[] {
    return this.loaded().flatMap((c) => c.listGroupsNow());
  }

  lag(): PartitionLag[] {
    return this.loaded().flatMap((c) => c.lag());
  }

  topicsChanged(): void {
    for (const c of this.loaded()) c.topicsChanged();
  }

  /** Resigns nothing: coordinators close (SHUTTING_DOWN), members find the next coordinator after the leadership moves. */
  async close(): Promise<void> {
    this.closed = true;
    this.offLeadership();
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    for (const [p, slot] of [...this.slots]) {
      this.slots.delete(p);
      slot.abort.abort();
      this.track(slot.ready.then((c) => c?.close()));
    }
    await Promise.allSettled([...this.ending]);
  }

  /** Brings p's slot in line with the leadership this broker knows now. */
  private reconcile(p: number): void {
    if (this.closed) return;
    const { leadership } = this.deps;
    const partition = leadership.isLeader(p) ? leadership.offsetsPartition(p) : undefined;
    const slot = this.slots.get(p);
    if (slot && partition === slot.partition && partition.leaderEpoch === slot.epoch && this.isCurrent(p, slot)) return;
    if (slot) this.unload(p, slot);
    if (partition) this.load(p, partition);
  }

  private isCurrent(p: number, slot: { partition: Partition; epoch: number }): boolean {
    const { leadership } = this.deps;
    return !this.closed && leadership.isLeader(p) && leadership.offsetsPartition(p) === slot.partition && slot.partition.leaderEpoch === slot.epoch;
  }

  private load(p: number, partition: Partition): void {
    const abort = new AbortController();
    const epoch = partition.leaderEpoch;
    const identity = { partition, epoch };
    const isCurrent = () => !abort.signal.aborted && this.isCurrent(p, identity);
    const { host, limits, freshHighWatermark, nowMs } = this.deps;
    const ready = PartitionOffsetStore.load({ partition, isCurrent, batchLimits: host.limits, limits, nowMs }, abort.signal).then(
      (store) => {
        if (!isCurrent()) {
          void store.close();
          this.retryLater(p, slot);
          return undefined;
        }
        const coordinator = new GroupCoordinator({ ...host, store, freshHighWatermark, nowMs });
        slot.coordinator = coordinator;
        return coordinator;
      },
      (error: unknown) => {
        if (isCurrent()) this.deps.onLoadError?.(p, error);
        this.retryLater(p, slot);
        return undefined;
      },
    );
    const slot: Slot = { partition, epoch, abort, ready };
    this.slots.set(p, slot);
  }

  /**
   * A load that ended without a coordinator is looked at again after offsetsLoadPollMs, unless its slot was
   * replaced meanwhile: one that failed while leading (a read error, a retention race) loads again; one cut
   * short by a moment of not leading loads again if this broker leads once more. NB: such a moment (a fence
   * and resume in one epoch) may come and go between two polls of the leadership, never announced, and
   * `reconcile` keeps a slot whose identity is current: without this the partition stayed without a
   * coordinator for good (every group request LEADER_NOT_AVAILABLE).
   */
  private retryLater(p: number, slot: Slot): void {
    if (this.closed || slot.abort.signal.aborted || this.slots.get(p) !== slot) return;
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (this.slots.get(p) !== slot) return;
      this.slots.delete(p);
      this.reconcile(p);
    }, this.deps.limits.offsetsLoadPollMs);
    timer.unref();
    this.retryTimers.add(timer);
  }

  private unload(p: number, slot: Slot): void {
    this.slots.delete(p);
    slot.abort.abort();
    this.track(slot.ready.then((c) => c?.resign()));
  }

  private track(work: Promise<unknown>): void {
    const p = work.then(() => undefined, () => undefined);
    this.ending.add(p);
    void p.finally(() => this.ending.delete(p));
  }
}
