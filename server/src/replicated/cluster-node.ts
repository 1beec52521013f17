/**
 * A broker's membership of a cluster (`runnel start --cluster`), assembled
 * from the parts: the etcd `ClusterStore`, the replication server and the
 * links to peers, the replicated topic registry, forwarded requests, the
 * broker's registration under its lease and its candidacy for controller.
 *
 * Start order (each step needs the previous): etcd reachable → replication
 * port listening → topics opened (replicas follow their leaders as soon as
 * leadership is applied) → client port listening (the caller) → `join`:
 * registered under a lease, then campaigning for controller. Shutdown is
 * the reverse, and deregistering first lets the controller move this
 * broker's leaderships at once instead of after the lease TTL.
 */
import type { Limits } from '../limits.ts';
import type { RunnelConfig } from '../config.ts';
import { ProducerIdAllocator } from '../broker/producer-ids.ts';
import type { TopicSource, TopicSourceHooks } from '../broker/topic-source.ts';
import { ClusterStore } from '../cluster/cluster-store.ts';
import type { ClusterView, PeerDirectory } from '../cluster/cluster-state.ts';
import { Controller } from '../cluster/controller.ts';
import { BrokerMembership, revokeBrokerLease } from '../cluster/membership.ts';
import { deriveLinkKey } from '../replication/link-auth.ts';
import { RunnelError } from '@runnel/client/codec';
import { PeerLinks, ReplicaPartition, ReplicationServer, type ReplicationLimits } from '../replication/index.ts';
import { PeerForwarder, serveForwarded } from './leader-forwarder.ts';
import { HeartbeatProbe } from './liveness-probe.ts';
import { ForwardType, decodeStatusAnswer, encodeStatusAnswer } from './forward-protocol.ts';
import { IsolationDetector, peerObservations, type PeerAnswer, type PeerObservation } from './isolation.ts';
import { ReplicatedRegistry } from './replicated-registry.ts';
import { clusterGroupService } from './group-forwarding-wiring.ts';
import type { GroupService, GroupServiceHost } from '../groups/group-service.ts';
import { DEFAULT_RETENTION_MS } from '../metadata/topic-info.ts';
import { setTraceLabel } from '../replication/trace.ts';

export interface ClusterNodeOptions {
  brokerId: number;
  dataDir: string;
  host: string;
  flushIntervalMs: number;
  limits: Limits;
  cluster: NonNullable<RunnelConfig['cluster']>;
  log: (line: string) => void;
  warn: (line: string) => void;
}

export class ClusterNode {
  private registry: ReplicatedRegistry | undefined;
  private forwarder: PeerForwarder | undefined;
  private membership: BrokerMembership | undefined;
  private controller: Controller | undefined;
  private readonly unwatch: () => void;
  private closed = false;
  private isolationTimer: NodeJS.Timeout | undefined;
  private isolated = false;
  /** The last answer of each peer to this broker's status requests (isolation monitor), and what it said about etcd. */
  private readonly peerAnswers = new Map<number, PeerAnswer>();
  /** When this broker's registration was last revoked while etcd answered (the cluster judged it down). */
  private deposedAtMs: number | null = null;
  /** Lease of each registered broker, as last seen (a new one: the broker registered again). */
  private registrations = new Map<number, string>();
  /** Campaign leases of silent controllers this broker revoked (once each). */
  private readonly revokedCampaigns = new Set<string>();
  private readonly isolationListeners = new Set<(isolated: boolean, reason: string) => void>();

  private constructor(
    private readonly options: ClusterNodeOptions,
    readonly store: ClusterStore,
    readonly server: ReplicationServer,
    readonly links: PeerLinks,
    readonly producerIds: ProducerIdAllocator,
  ) {
    this.unwatch = store.watch({
      topicsChanged: () => void this.registry?.sync(),
      resynced: () => void this.resync(),
      leadershipChanged: (l) => this.registry?.leadershipChanged(l),
      brokersChanged: (brokers) => {
        // A broker registered under a new lease (restarted, or registered again) listens: dial it now, not after the backoff.
        const seen = new Map(brokers.map((b) => [b.id, b.leaseId]));
        for (const [id, lease] of seen) if (this.registrations.get(id) !== lease && id !== options.brokerId) links.redial(id);
        this.registrations = seen;
      },
      connectivityChanged: (connected) => (connected ? options.log : options.warn)(`runnel: cluster: etcd ${connected ? 'reachable again' : 'UNREACHABLE: leaders keep serving what is safe; leadership changes wait for etcd'}`),
    });
    // Served from the moment the replication port listens, not once the registry has opened (recovering every
    // log after a crash takes seconds): meanwhile a peer's forwarded produce is answered NOT_LEADER_OR_FOLLOWER
    // (retried), not "serves no request type" (INVALID_REQUEST: final to the client, whose producer then failed
    // the batch although an earlier attempt of it was in the log; fault seeds 1071, 1033, 1075 after killAll).
    serveForwarded(server, (topicId, p) => this.registry?.partitionById(topicId, p)?.localReplica as (ReplicaPartition | undefined), this.forwardLimits());
  }

  private forwardLimits() {
    const { limits } = this.options;
    return { forwardTimeoutMs: limits.replicationTimeoutMs + 5000, maxReadBytes: limits.maxReadBytes, maxLongPollMs: limits.maxLongPollMs, maxBatchBytes: limits.maxBatchBytes };
  }

  /** Connects to etcd (waiting up to clusterStartWaitMs) and opens the replication port. */
  static async open(options: ClusterNodeOptions): Promise<ClusterNode> {
    const { cluster, limits, brokerId } = options;
    setTraceLabel(`broker ${brokerId}`);
    const store = await openStore(options);
    let key: Buffer;
    try {
      key = await store.producerIdKey();
    } catch (e) {
      await store.close();
      throw e;
    }
    const linkKey = deriveLinkKey(key);
    const server = new ReplicationServer({
      brokerId, host: bindHost(options.host, cluster.replicationHost), port: cluster.replicationPort, limits: replicationLimits(limits), warn: options.warn, linkKey,
    });
    try {
      await server.listen();
    } catch (e) {
      await store.close();
      throw new RunnelError('KAFKA_STORAGE_ERROR', `could not listen for replication on ${cluster.replicationHost}:${cluster.replicationPort}: ${(e as Error).message}`, { cause: e });
    }
    const directory: PeerDirectory = {
      replicationAddress: (id) => {
        const override = cluster.peerAddresses.get(id);
        if (override) return override;
        const b = store.broker(id);
        return b ? { host: b.replicationHost, port: b.replicationPort } : undefined;
      },
    };
    const links = new PeerLinks({ brokerId, directory, limits: replicationLimits(limits), linkKey });
    const producerIds = ProducerIdAllocator.shared({ reserve: (size) => store.allocateProducerIdBlock(size) }, key);
    return new ClusterNode(options, store, server, links, producerIds);
  }

  /** For `Broker.open`: the replicated registry, its forwarded requests served on the replication port. */
  topics(hooks: TopicSourceHooks): Promise<TopicSource> {
    const { options, store, server, links } = this;
    const { limits } = options;
    const forwarder = new PeerForwarder(links, this.forwardLimits());
    this.forwarder = forwarder;
    const unregister = new Map<string, () => void>();
    return ReplicatedRegistry.open({
      brokerId: options.brokerId, dataDir: options.dataDir, limits, flushIntervalMs: options.flushIntervalMs, store, forwarder,
      replica: (topic, partition, log) => new ReplicaPartition({
        topic, partition, minInsyncReplicas: topic.minInsyncReplicas ?? 1, log, brokerId: options.brokerId, links, isrStore: store, server,
        limits: replicationLimits(limits), warn: options.warn,
      }),
      partitionLimits: { leaderWaitMs: limits.leaderWaitMs, remoteReadWaitMs: Math.min(limits.replicaFetchMaxWaitMs, 1000), remoteReadMaxBytes: limits.catchUpReadBytes },
      ...(options.cluster.defaultReplicationFactor === undefined ? {} : { defaultReplicationFactor: options.cluster.defaultReplicationFactor }),
      ...(options.cluster.minInsyncReplicas === undefined ? {} : { minInsyncReplicas: options.cluster.minInsyncReplicas }),
      hooks,
      onReplicaClose: (topic, p) => unregister.get(`${topic.topicId}/${p}`)?.(),
      warn: options.warn,
    }).then((registry) => {
      this.registry = registry; // NB: forwarded requests were served before (the constructor)
      void this.resync();
      return registry;
    });
  }

  /**
   * For `Broker.open` (called after `topics`): consumer groups placed on the leaders of the replicated
   * `__consumer_offsets` partitions, reached from any broker (docs/groups.md).
   */
  groups(host: GroupServiceHost): GroupService {
    const registry = this.registry;
    if (!registry) throw new Error('ClusterNode.groups() needs the registry: call topics() first');
    return clusterGroupService({
      brokerId: this.options.brokerId, registry, links: this.links, server: this.server, host,
      ...(this.forwarder ? { forwarder: this.forwarder } : {}),
      offsetsRetentionMs: DEFAULT_RETENTION_MS,
      ...(this.options.cluster.defaultReplicationFactor === undefined ? {} : { offsetsReplicationFactor: this.options.cluster.defaultReplicationFactor }),
      readLeadership: (topicId, partition) => this.store.readLeadership(topicId, partition),
      onError: (what, error) => this.options.warn(`runnel: cluster: groups: ${what}: ${(error as Error)?.message ?? String(error)}`),
    });
  }

  /** Registers this broker (reachable at `clientUrl`) and campaigns for controller. */
  async join(clientUrl: string): Promise<void> {
    const { options, store, server, links } = this;
    const { limits } = options;
    await this.waitUntilElectable();
    this.startIsolationMonitor();
    this.watchControllerDeath();
    const advertised = options.cluster.advertiseUrl ?? clientUrl;
    this.membership = await BrokerMembership.register(store.connection, {
      id: options.brokerId, clientUrl: advertised, replicationHost: options.cluster.replicationHost, replicationPort: server.address.port, startedAtMs: Date.now(),
    }, {
      limits: { brokerLeaseTtlMs: limits.brokerLeaseTtlMs },
      events: {
        leaseLost: (reason) => {
          // Revoked while etcd answers: another broker (the controller) judged this one down (isolation.ts).
          if (this.store.connected) this.deposedAtMs = Date.now();
          options.warn(`runnel: cluster: registration lost (${reason}); registering again`);
        },
        failed: (error) => options.warn(`runnel: cluster: FATAL: ${error.message}`),
      },
    });
    this.controller = Controller.start({
      store, brokerId: options.brokerId,
      probe: new HeartbeatProbe({
        heartbeat: (id, timeoutMs, signal) => links.heartbeat(id, timeoutMs, signal),
        onPeerDown: (listener) => links.onPeerDown(listener),
        lastAnswerMs: (id) => this.peerAnswers.get(id)?.atMs,
      }, { controllerHeartbeatMs: limits.controllerHeartbeatMs, brokerSessionTimeoutMs: limits.brokerSessionTimeoutMs }),
      limits: { preferredLeaderDelayMs: limits.preferredLeaderDelayMs, controllerLeaseTtlMs: limits.controllerLeaseTtlMs },
      events: {
        becameController: () => options.log(`runnel: cluster: broker ${options.brokerId} is the controller`),
        brokerDown: (id, reason) => options.warn(`runnel: cluster: broker ${id} is down (${reason}): moving its leaderships`),
        steppedDown: (reason) => options.warn(`runnel: cluster: broker ${options.brokerId} steps down as controller (${reason}): a broker that reaches the others takes over`),
      },
    });
    options.log(`runnel: cluster: broker ${options.brokerId} joined (etcd ${options.cluster.etcdEndpoints.join(',')}, prefix ${options.cluster.prefix}, replication ${options.cluster.replicationHost}:${server.address.port}, clients ${advertised})`);
  }

  /** Whether this broker is cut off from the cluster while clients reach it (isolation.ts). */
  get isIsolated(): boolean {
    return this.isolated;
  }

  /** `listener(isolated, reason)` on every change of `isIsolated`. */
  onIsolationChange(listener: (isolated: boolean, reason: string) => void): () => void {
    this.isolationListeners.add(listener);
    return () => this.isolationListeners.delete(listener);
  }

  view(): ClusterView {
    return {
      brokerId: this.options.brokerId,
      controller: this.store.connected ? this.store.controller() : null,
      etcdConnected: this.store.connected,
      brokers: this.store.brokers(),
      partitions: (this.registry?.openTopics() ?? []).flatMap((t) => t.partitions.map((p) => p.view())),
    };
  }

  /** Resigns and deregisters first (others take over at once), then stops the links. The broker closes the registry. */
  async leave(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.isolationTimer);
    await this.controller?.close().catch(() => undefined);
    await this.membership?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.leave();
    this.unwatch();
    this.links.close();
    await this.server.close();
    await this.store.close();
  }

  /**
   * A replica whose recovery cut committed records (a corrupt or torn tail below its checkpointed high watermark)
   * must not be elected until it has caught up (ReplicaPartition.isElectable), and the controller elects only
   * registered brokers: so this broker registers only once no such replica is still in an ISR (its leader drops
   * it at its first fetch, or it catches up), bounded by leaderWaitMs (then a leader election that picks it is
   * refused by the replica: the partition waits for another in-sync replica, never an unclean election).
   */
  private async waitUntilElectable(): Promise<void> {
    const { brokerId, limits } = this.options;
    const deadline = Date.now() + limits.leaderWaitMs;
    const risky = () => (this.registry?.openTopics() ?? []).flatMap((t) => t.partitions.filter((p) => {
      const replica = p.localReplica as ReplicaPartition | undefined;
      return replica !== undefined && !replica.isElectable && (this.store.leadership(t.info.topicId, p.partition)?.isr.includes(brokerId) ?? false);
    }).map((p) => `${t.info.name}/${p.partition}`));
    let waiting = risky();
    if (waiting.length === 0) return;
    this.options.warn(`runnel: cluster: recovery cut committed records of ${waiting.join(', ')}: registering once they are out of their ISR or caught up (up to ${limits.leaderWaitMs} ms)`);
    while (waiting.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      waiting = risky();
    }
  }

  /**
   * A SIGKILLed controller is seen at once by every broker linked to it (its port refuses): revoke its campaign
   * and registration leases then, so the next controller is elected now, not after controllerLeaseTtlMs (the
   * controller's own probe does the same for other brokers). Safe whatever the truth: a live controller that
   * loses its lease is deposed (its writes are guarded by its election key) and campaigns again.
   */
  private watchControllerDeath(): void {
    const { store } = this;
    this.links.onPeerDown((id, reason) => {
      if (reason !== 'refused' || store.controller() !== id || this.closed) return;
      const leases = store.electionCandidates().filter((c) => c.brokerId === id).map((c) => c.key.slice(c.key.lastIndexOf('/') + 1));
      const registration = store.broker(id)?.leaseId;
      if (registration) leases.push(registration);
      this.options.warn(`runnel: cluster: controller ${id} is gone (connection refused): revoking its leases so another broker takes over now`);
      for (const lease of leases) void revokeBrokerLease(store.connection, lease).catch(() => undefined);
    });
  }

  /**
   * A controller that stopped answering (paused, cut off from this broker) while this broker reaches etcd and
   * another peer: its campaign lease is revoked, so the next controller is elected after brokerSessionTimeoutMs
   * instead of when the lease expires (controllerLeaseTtlMs, and etcd's expiry sweep on top); that controller's
   * probe then reports the silent broker at once (HeartbeatProbe starts from the last answer). Only the campaign:
   * its registration (and leaderships) are the next controller's call. Safe whatever the truth: a live controller
   * that loses its campaign key is deposed (its writes are guarded by that key) and campaigns again.
   */
  private revokeSilentController(nowMs: number, peers: PeerObservation[], etcdFresh: boolean): void {
    const { brokerId, limits } = this.options;
    const controller = this.store.controller();
    if (!etcdFresh || this.closed || controller === null || controller === brokerId) return;
    const last = this.peerAnswers.get(controller);
    if (last === undefined || nowMs - last.atMs < limits.brokerSessionTimeoutMs) return;
    if (!peers.some((p) => p.id !== controller && p.reachable)) return; // nobody answers: maybe this side is cut off
    const campaigns = this.store.electionCandidates().filter((c) => c.brokerId === controller).map((c) => c.key.slice(c.key.lastIndexOf('/') + 1));
    for (const l of this.revokedCampaigns) if (!campaigns.includes(l)) this.revokedCampaigns.delete(l); // gone: bounded by the live campaigns
    const leases = campaigns.filter((l) => !this.revokedCampaigns.has(l));
    if (leases.length === 0) return;
    for (const lease of leases) this.revokedCampaigns.add(lease);
    this.options.warn(`runnel: cluster: controller ${controller} has not answered for ${nowMs - last.atMs} ms: revoking its campaign so another broker takes over now`);
    for (const lease of leases) void revokeBrokerLease(this.store.connection, lease).catch(() => undefined);
  }

  /** Asks every registered peer whether it reaches etcd, this often, and judges isolation (isolation.ts). */
  private startIsolationMonitor(): void {
    const { limits, brokerId } = this.options;
    // Peers count as silent once none answered for brokerSessionTimeoutMs (the controller's own verdict on a
    // broker); one more session timeout of continuous silence and clients move, ~2.4 s after the cut — not 3.6 s
    // (fault seed 7000: 5 s from the cut to the next ack). Not less: on a loaded machine a live peer can stall
    // for over a second while another broker dies, and a false verdict sends every client of this broker away
    // (the browser failover test saw its page moved off a broker that had lost only a peer, at 1.8 s).
    const detector = new IsolationDetector({
      etcdSilenceMs: limits.brokerLeaseTtlMs, peerSilenceMs: limits.brokerSessionTimeoutMs,
      witnessMarginMs: this.store.connection.limits.connectivityProbeIntervalMs,
    });
    const answers = this.peerAnswers;
    const inflight = new Set<number>();
    const etcdFresh = () => Date.now() - this.store.connection.lastContactMs < limits.brokerLeaseTtlMs;
    this.server.handle(ForwardType.status, async () => {
      const last = this.store.connection.lastContactMs;
      return encodeStatusAnswer(etcdFresh(), last === 0 ? null : Date.now() - last);
    });
    this.isolationTimer = setInterval(() => {
      const now = Date.now();
      const registered = this.store.brokers().map((b) => b.id).filter((id) => id !== brokerId);
      const peers = peerObservations({ nowMs: now, registered, answers, refusesDial: (id) => this.links.nothingListens(id), answerFreshMs: limits.brokerSessionTimeoutMs });
      for (const id of registered) {
        if (inflight.has(id)) continue;
        inflight.add(id);
        this.links.request(id, ForwardType.status, new Uint8Array(0), limits.brokerSessionTimeoutMs)
          .then((body) => {
            const status = decodeStatusAnswer(body);
            // In this broker's clock: the answer's arrival minus its age (transit makes it at most a little late).
            const atMs = Date.now();
            answers.set(id, { atMs, seesEtcd: status.etcdConnected, etcdContactAtMs: status.etcdContactAgeMs === null ? null : atMs - status.etcdContactAgeMs });
          }, () => undefined)
          .finally(() => inflight.delete(id));
      }
      const verdict = detector.observe({ nowMs: now, etcdLastContactMs: this.store.connection.lastContactMs, peers, deposedAtMs: this.deposedAtMs });
      if (!verdict.isolated) this.revokeSilentController(now, peers, etcdFresh());
      if (verdict.isolated === this.isolated) return;
      this.isolated = verdict.isolated;
      (verdict.isolated ? this.options.warn : this.options.log)(verdict.isolated
        ? `runnel: cluster: ISOLATED (${verdict.reason}): closing client connections so clients move to another broker`
        : 'runnel: cluster: back in the cluster: serving clients again');
      for (const l of [...this.isolationListeners]) l(verdict.isolated, verdict.reason);
    }, limits.controllerHeartbeatMs);
    this.isolationTimer.unref();
  }

  /** After a watch resync every partition gets its current leadership again (applying one is idempotent). */
  private async resync(): Promise<void> {
    const registry = this.registry;
    if (!registry) return;
    await registry.sync();
    for (const l of this.store.leaderships()) registry.leadershipChanged(l);
  }
}

function bindHost(host: string, replicationHost: string): string {
  return host === '0.0.0.0' || host === '::' ? host : replicationHost;
}

function replicationLimits(l: Limits): Partial<ReplicationLimits> {
  return {
    replicaLagTimeMs: l.replicaLagTimeMs, replicaFetchMaxBytes: l.replicaFetchMaxBytes, replicaFetchMaxWaitMs: l.replicaFetchMaxWaitMs,
    replicationTimeoutMs: l.replicationTimeoutMs,
  };
}

async function openStore(options: ClusterNodeOptions): Promise<ClusterStore> {
  const { cluster, limits } = options;
  const deadline = Date.now() + limits.clusterStartWaitMs;
  let said = false;
  for (;;) {
    try {
      return await ClusterStore.open({ endpoints: cluster.etcdEndpoints, prefix: cluster.prefix });
    } catch (e) {
      if (!(e instanceof RunnelError && e.errorName === 'CLUSTER_UNAVAILABLE') || Date.now() >= deadline) throw e;
      if (!said) options.warn(`runnel: cluster: waiting for etcd at ${cluster.etcdEndpoints.join(',')} (up to ${limits.clusterStartWaitMs} ms): ${e.message}`);
      said = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
