/**
 * The controller (docs/cluster.md "Roles"): one broker, elected through
 * etcd, that moves partition leadership when leaders die or preferred
 * leaders come back. This is the driver: the decisions are
 * controller-decisions.ts; this file campaigns, watches, detects failures
 * and performs the compare-and-swap writes.
 *
 * Election: etcd3's election layout (`election/controller/<lease id>`,
 * value = broker id, the lowest create revision leads), on a lease of
 * `controllerLeaseTtlMs`. The store's watched cache says who leads; a
 * campaign key can only be deleted, never preceded, so once the cache shows
 * ours first we lead until our key goes.
 *
 * Invariants:
 * - every write is a compare-and-swap on the partition key's mod revision
 *   AND on our campaign key's create revision (`WriteGuard`): a deposed
 *   controller (its lease expired while it was paused or cut off) cannot
 *   write, even before it learns that it was deposed;
 * - a lost CAS re-reads the partition and decides again;
 * - failure detection only decides *when* to elect (a `LivenessProbe`
 *   report revokes the broker's lease at once; its expiry is the fallback);
 *   safety comes from epochs and compare-and-swap.
 */
import type { Lease } from 'etcd3';
import type { BrokerEndpoint, VersionedLeadership } from './cluster-state.ts';
import type { ClusterListener, ClusterStore, WriteGuard } from './cluster-store.ts';
import { ClusterKeys } from './cluster-keys.ts';
import { decideLeadership, decidePartition, type ElectionReason, type LeadershipWrite } from './controller-decisions.ts';
import { leaseTtlSeconds, revokeBrokerLease } from './membership.ts';

/** Tells the controller that a broker died (socket closed and reconnect refused, missed heartbeats). */
export interface LivenessProbe {
  /** Watch these brokers (the controller's own id excluded); returns the stop. */
  watch(brokers: BrokerEndpoint[], onDown: (brokerId: number, reason: string) => void, onCutOff?: (reason: string) => void): () => void;
}

export interface ControllerLimits {
  /** A preferred leader live (and in the ISR) this long gets its leadership back. Too short: leadership flaps while a broker restarts; too long: load stays skewed. */
  preferredLeaderDelayMs: number;
  /** TTL of the campaign lease: how long a dead controller blocks the next one (when nobody revokes it). */
  controllerLeaseTtlMs: number;
  /** Delay before campaigning again or retrying a write that etcd did not take. */
  controllerRetryDelayMs: number;
  /** Re-reads of one partition after lost compare-and-swaps, per reconcile. */
  maxCasRetries: number;
  /** Leadership writes in flight at once. */
  maxConcurrentWrites: number;
}

export const defaultControllerLimits: ControllerLimits = {
  preferredLeaderDelayMs: 10_000,
  controllerLeaseTtlMs: 6_000,
  controllerRetryDelayMs: 250,
  maxCasRetries: 8,
  maxConcurrentWrites: 16,
};

export function validateControllerLimits(limits: ControllerLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`controller limit ${name} must be a non-negative integer, got ${value}`);
  }
  if (limits.controllerLeaseTtlMs < 1000) throw new RangeError('controllerLeaseTtlMs must be at least 1000 (etcd leases are whole seconds)');
  if (limits.maxCasRetries < 1 || limits.maxConcurrentWrites < 1) throw new RangeError('maxCasRetries and maxConcurrentWrites must be at least 1');
}

export interface ControllerEvents {
  becameController?(): void;
  /** No longer the controller (deposed, lease lost, closing); it campaigns again unless closing. */
  resigned?(reason: string): void;
  /** A leadership write etcd took. */
  leadershipMoved?(leadership: VersionedLeadership, reason: ElectionReason): void;
  /** The probe reported a broker down; its lease is being revoked. */
  brokerDown?(brokerId: number, reason: string): void;
  /** The probe heard no broker at all: this controller steps down (see handleCutOff). */
  steppedDown?(reason: string): void;
}

export interface ControllerOptions {
  store: ClusterStore;
  brokerId: number;
  probe?: LivenessProbe;
  limits?: Partial<ControllerLimits>;
  events?: ControllerEvents;
  /** Clock (ms); default Date.now. */
  now?: () => number;
}

interface Candidacy { lease: Lease; key: string; createRevision: string; unhook: () => void }

interface Active {
  guard: WriteGuard;
  /** broker id → its registration's lease and when this controller first saw it. */
  liveSince: Map<number, { leaseId: string; sinceMs: number }>;
  stopProbe: (() => void) | undefined;
  probedSet: string;
  wakeTimer: NodeJS.Timeout | undefined;
  retryTimer: NodeJS.Timeout | undefined;
}

export class Controller {
  private readonly store: ClusterStore;
  private readonly limits: ControllerLimits;
  private readonly events: ControllerEvents;
  private readonly now: () => number;
  private candidacy: Candidacy | undefined;
  private campaigning = false;
  private active: Active | undefined;
  private isClosed = false;
  private isDirty = false;
  private reconciling: Promise<void> | undefined;
  private readonly unsubscribe: () => void;
  private campaignTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: ControllerOptions) {
    this.store = options.store;
    this.limits = { ...defaultControllerLimits, ...options.limits };
    validateControllerLimits(this.limits);
    this.events = options.events ?? {};
    this.now = options.now ?? Date.now;
    const changed = () => this.handleChange();
    const listener: ClusterListener = {
      topicsChanged: changed, leadershipChanged: changed, leadershipRemoved: changed, brokersChanged: changed, controllerChanged: changed, resynced: changed,
    };
    this.unsubscribe = this.store.watch(listener);
  }

  /**
   * Campaigns now and for as long as it runs (again after every loss).
   * @example
   * const controller = Controller.start({ store, brokerId: 1, probe, events: { becameController: () => log('controller') } });
   * await controller.close();
   */
  static start(options: ControllerOptions): Controller {
    const controller = new Controller(options);
    void controller.campaign();
    return controller;
  }

  /** Whether this broker is the controller now (as far as it knows: its writes are fenced if not). */
  get isActive(): boolean {
    return this.active !== undefined;
  }

  /** Stops; resigns (revokes the campaign lease) so another broker takes over at once. Idempotent. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.campaignTimer);
    this.unsubscribe();
    this.becomeInactive('closing');
    await this.reconciling;
    const candidacy = this.candidacy;
    this.candidacy = undefined;
    if (candidacy) {
      candidacy.unhook();
      const connection = this.store.connection;
      if (!connection.closed) await connection.run('resign controller', () => candidacy.lease.revoke()).catch(() => candidacy.lease.release());
      else candidacy.lease.release();
    }
  }

  private get stopped(): boolean {
    return this.isClosed || this.store.connection.closed;
  }

  /** Puts our campaign key under a new lease; retries while etcd is unreachable. */
  private async campaign(): Promise<void> {
    if (this.campaigning || this.candidacy || this.stopped) return;
    this.campaigning = true;
    const connection = this.store.connection;
    const lease = connection.client.lease(leaseTtlSeconds(this.limits.controllerLeaseTtlMs));
    const unhook = connection.onClose(() => lease.release());
    lease.on('lost', (err) => this.loseCandidacy(lease, `campaign lease lost: ${err.message}`));
    try {
      const leaseId = await connection.run('grant controller lease', () => lease.grant());
      const key = connection.key(`${ClusterKeys.controllerElection}${leaseId}`);
      const client = connection.client;
      const result = await connection.run('campaign for controller', () =>
        client.if(key, 'Create', '==', 0).then(client.put(key).value(String(this.options.brokerId)).lease(leaseId)).commit());
      if (this.stopped) {
        unhook();
        await connection.run('resign controller', () => lease.revoke()).catch(() => lease.release());
        return;
      }
      this.candidacy = { lease, key, createRevision: result.header.revision, unhook };
      this.handleChange();
    } catch {
      unhook();
      lease.release();
      this.scheduleCampaign();
    } finally {
      this.campaigning = false;
    }
  }

  private scheduleCampaign(): void {
    if (this.stopped) return;
    clearTimeout(this.campaignTimer);
    this.campaignTimer = setTimeout(() => void this.campaign(), this.limits.controllerRetryDelayMs);
  }

  private loseCandidacy(lease: Lease, reason: string): void {
    const candidacy = this.candidacy;
    if (!candidacy || candidacy.lease !== lease) return;
    this.candidacy = undefined;
    candidacy.unhook();
    this.becomeInactive(reason);
    // Revoke rather than release: the key of a campaign we gave up must not keep others waiting.
    if (!this.store.connection.closed) void this.store.connection.run('resign controller', () => lease.revoke()).catch(() => lease.release());
    this.scheduleCampaign();
  }

  /** Any change in the cache: are we (still) elected, did brokers change, reconcile. */
  private handleChange(): void {
    if (this.stopped) return;
    const candidacy = this.candidacy;
    if (candidacy) {
      const candidates = this.store.electionCandidates();
      const cacheCoversOurKey = BigInt(this.store.revision) >= BigInt(candidacy.createRevision);
      if (cacheCoversOurKey && !candidates.some((c) => c.key === candidacy.key)) {
        this.loseCandidacy(candidacy.lease, 'campaign key deleted');
        return;
      }
      if (!this.active && candidates[0]?.key === candidacy.key) this.becomeActive(candidacy);
    }
    if (this.active) {
      this.trackBrokers(this.store.brokers());
      this.requestReconcile();
    }
  }

  private becomeActive(candidacy: Candidacy): void {
    this.active = {
      guard: { key: candidacy.key, createRevision: candidacy.createRevision },
      liveSince: new Map(), stopProbe: undefined, probedSet: '', wakeTimer: undefined, retryTimer: undefined,
    };
    this.events.becameController?.();
  }

  private becomeInactive(reason: string): void {
    const active = this.active;
    if (!active) return;
    this.active = undefined;
    active.stopProbe?.();
    clearTimeout(active.wakeTimer);
    clearTimeout(active.retryTimer);
    this.events.resigned?.(reason);
  }

  /**
   * Live-since per broker: a registration first seen now is live since now
   * (NB: after a failover every broker counts as new, which only delays
   * preferred-leader moves). The probe follows the set.
   */
  private trackBrokers(brokers: BrokerEndpoint[]): void {
    const active = this.active!;
    const nowMs = this.now();
    const next = new Map<number, { leaseId: string; sinceMs: number }>();
    for (const b of brokers) {
      const known = active.liveSince.get(b.id);
      next.set(b.id, known && known.leaseId === b.leaseId ? known : { leaseId: b.leaseId, sinceMs: nowMs });
    }
    active.liveSince = next;
    const others = brokers.filter((b) => b.id !== this.options.brokerId);
    const probedSet = others.map((b) => `${b.id}:${b.leaseId}`).join(',');
    if (!this.options.probe || probedSet === active.probedSet) return;
    active.stopProbe?.();
    active.probedSet = probedSet;
    active.stopProbe = this.options.probe.watch(others, (brokerId, reason) => this.handleBrokerDown(active, brokerId, reason), (reason) => this.handleCutOff(active, reason));
  }

  /**
   * The probe hears no broker at all: this controller is the one cut off (a network partition that leaves it
   * etcd). It steps down (revokes its campaign key, campaigns again behind the others) so a broker that reaches
   * the rest leads and moves this one's leaderships; revoking everyone else's lease instead would empty the ISRs
   * of partitions that are fine. Fallback when they are all dead after all: it leads again, and their leases expire.
   */
  private handleCutOff(active: Active, reason: string): void {
    if (this.active !== active || !this.candidacy) return;
    this.events.steppedDown?.(reason);
    this.loseCandidacy(this.candidacy.lease, `cut off: ${reason}`);
  }

  private handleBrokerDown(active: Active, brokerId: number, reason: string): void {
    if (this.active !== active) return; // a report for a controller term that ended
    const broker = this.store.broker(brokerId);
    if (!broker) return;
    this.events.brokerDown?.(brokerId, reason);
    // The broker's key goes with its lease; the watch then brings the change here.
    revokeBrokerLease(this.store.connection, broker.leaseId).catch(() => this.retryLater(active));
  }

  private requestReconcile(): void {
    this.isDirty = true;
    if (!this.reconciling) this.reconciling = this.reconcileLoop().finally(() => { this.reconciling = undefined; });
  }

  private async reconcileLoop(): Promise<void> {
    while (this.isDirty && this.active && !this.stopped) {
      this.isDirty = false;
      const active = this.active;
      const liveSinceMs = new Map([...active.liveSince].map(([id, v]) => [id, v.sinceMs]));
      const decisions = decideLeadership({
        nowMs: this.now(), liveSinceMs, leaderships: this.store.leaderships(), preferredLeaderDelayMs: this.limits.preferredLeaderDelayMs,
      });
      const queue = [...decisions.writes];
      const worker = async () => {
        for (let w = queue.shift(); w && this.active === active; w = queue.shift()) await this.write(active, w, liveSinceMs);
      };
      await Promise.all(Array.from({ length: Math.min(this.limits.maxConcurrentWrites, queue.length) }, worker));
      if (this.active !== active) return;
      clearTimeout(active.wakeTimer);
      if (decisions.wakeAtMs !== undefined) {
        active.wakeTimer = setTimeout(() => this.requestReconcile(), Math.max(0, decisions.wakeAtMs - this.now()));
      }
    }
  }

  /** One decided write; a lost CAS re-reads the partition and decides again. */
  private async write(active: Active, first: LeadershipWrite, liveSinceMs: Map<number, number>): Promise<void> {
    let write: LeadershipWrite | undefined = first;
    for (let attempt = 0; write && attempt < this.limits.maxCasRetries; attempt++) {
      const result = await this.store.casLeadership(write.expected, write.next, active.guard);
      if (this.active !== active) return;
      if (result.ok) {
        this.events.leadershipMoved?.(result.leadership, write.reason);
        return;
      }
      if (result.reason === 'unavailable') return this.retryLater(active);
      try {
        if (!(await this.guardHolds(active.guard))) {
          if (this.candidacy) this.loseCandidacy(this.candidacy.lease, 'deposed: our campaign key is gone');
          return;
        }
        const fresh = await this.store.readLeadership(write.expected.topicId, write.expected.partition);
        if (!fresh) return; // the topic was deleted
        write = decidePartition(fresh, { nowMs: this.now(), liveSinceMs, preferredLeaderDelayMs: this.limits.preferredLeaderDelayMs }).write;
      } catch {
        return this.retryLater(active);
      }
    }
    if (write) this.retryLater(active); // still contended: the next round reads the cache again
  }

  private async guardHolds(guard: WriteGuard): Promise<boolean> {
    const response = await this.store.connection.run('read controller key', () => this.store.connection.client.get(guard.key).exec());
    return response.kvs[0]?.create_revision === guard.createRevision;
  }

  private retryLater(active: Active): void {
    if (this.active !== active || active.retryTimer) return;
    active.retryTimer = setTimeout(() => {
      active.retryTimer = undefined;
      this.requestReconcile();
    }, this.limits.controllerRetryDelayMs);
  }
}
