/**
 * The `OffsetsLeadership` (groups/offsets-coordinators.ts) of a cluster
 * broker, over what its topic source serves: the `__consumer_offsets` topic
 * (its partition count and each partition's leader) and this broker's local
 * replicas of it. Also `ensureOffsetsTopic`, which the wiring runs at start.
 *
 * Changes are found by comparing each partition's (leader, epoch, local
 * role, replica) with the last seen: `check()` does it at once (the wiring
 * calls it after a leadership change was applied to the replica) and a poll
 * every `pollMs` catches whatever no call announced (a topic created by
 * another broker, a role change that completed later).
 * Invariant: a listener hears of p only after this broker's replica of p
 * took its new role, so a coordinator loads only on a replica that already
 * leads (its appends are accepted) and resigns once it no longer does.
 *
 * `confirmLeader` is the read barrier of offset fetches and describes: a
 * linearizable read of p's leadership in etcd, started after the call.
 * Concurrent barriers of one partition share reads: a call joins the next
 * read to start (at most one in flight and one queued per partition), so a
 * burst of fetches costs two etcd round trips, not one each.
 *
 * `ensureOffsetsTopic` sizes the topic by the brokers the cluster has shown
 * (`offsetsReplicationFactor`), not by those live at that instant: its
 * replicas never change after creation.
 */
import { RunnelError } from '@runnel/client/codec';
import type { TopicInfo, TopicSpec } from '../metadata/topic-info.ts';
import type { Partition } from '../partition/partition.ts';
import { OFFSETS_TOPIC, offsetsTopicSpec } from '../groups/coordinator-placement.ts';
import { defaultReplicationFactor } from '../cluster/replica-assignment.ts';
import type { OffsetsLeadership } from '../groups/offsets-coordinators.ts';

/** What the adapter reads of the broker's topic source. */
export interface OffsetsTopicView {
  /** `__consumer_offsets` as served here (its partitions' current leader), undefined until it exists. */
  topic(): { info: TopicInfo; partitions: readonly { readonly leader: number }[] } | undefined;
  /** This broker's local replica of partition p (not the forwarding facade), undefined when it holds none. */
  replicaOf(p: number): (Partition & { readonly role: 'leader' | 'follower' | 'none' }) | undefined;
  /** This broker, and p's leadership as etcd holds it now (a linearizable read: ClusterStore.readLeadership). Absent: no read barrier. */
  leaderCheck?: {
    readonly brokerId: number;
    read(p: number): Promise<{ readonly leader: number; readonly leaderEpoch: number } | undefined>;
  };
}

type LeadershipRead = Promise<{ readonly leader: number; readonly leaderEpoch: number } | undefined>;

/** Default period of the poll that catches unannounced changes; a takeover waits at most this long for it. */
export const OFFSETS_LEADERSHIP_POLL_MS = 100;

export class ClusterOffsetsLeadership implements OffsetsLeadership {
  private readonly listeners = new Set<(p: number) => void>();
  private readonly seen: string[] = [];
  private readonly timer: NodeJS.Timeout;
  /** Per partition: the barrier read in flight and the one queued behind it (started when it ends). */
  private readonly reads = new Map<number, { running: LeadershipRead | null; queued: LeadershipRead | null }>();

  constructor(private readonly view: OffsetsTopicView, pollMs = OFFSETS_LEADERSHIP_POLL_MS) {
    this.timer = setInterval(() => this.check(), pollMs);
    this.timer.unref();
    this.check();
  }

  get partitions(): number {
    return this.view.topic()?.info.partitions ?? 0;
  }

  offsetsPartition(p: number): Partition | undefined {
    return this.view.replicaOf(p);
  }

  isLeader(p: number): boolean {
    return this.view.replicaOf(p)?.role === 'leader';
  }

  leaderOf(p: number): number {
    return this.view.topic()?.partitions[p]?.leader ?? -1;
  }

  /** See the file header. Rejects LEADER_NOT_AVAILABLE (retryable) when etcd does not answer: a fetch then waits, it is never answered unconfirmed. */
  async confirmLeader(p: number, epoch: number): Promise<boolean> {
    const check = this.view.leaderCheck;
    if (!check) return this.isLeader(p) && this.view.replicaOf(p)?.leaderEpoch === epoch;
    let l: Awaited<LeadershipRead>;
    try {
      l = await this.freshRead(p, check.read);
    } catch (e) {
      throw new RunnelError('LEADER_NOT_AVAILABLE', `${OFFSETS_TOPIC} partition ${p}: cannot confirm this broker still coordinates it (${(e as Error)?.message ?? e})`, { cause: e });
    }
    return l !== undefined && l.leader === check.brokerId && l.leaderEpoch === epoch;
  }

  /** A read of p started after this call: the one in flight started earlier, so a caller shares the one queued behind it. */
  private freshRead(p: number, read: (p: number) => LeadershipRead): LeadershipRead {
    let slot = this.reads.get(p);
    if (!slot) this.reads.set(p, (slot = { running: null, queued: null }));
    const s = slot;
    const start = (): LeadershipRead => {
      const r = read(p).finally(() => { if (s.running === r) s.running = null; });
      s.running = r;
      return r;
    };
    if (s.queued) return s.queued;
    if (!s.running) return start();
    const queued = s.running.then(() => undefined, () => undefined).then(() => {
      s.queued = null;
      return start();
    });
    s.queued = queued;
    return queued;
  }

  onLeadershipChange(listener: (p: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Announces every partition whose leadership, epoch or local role changed since the last check. */
  check(): void {
    const n = this.partitions;
    for (let p = 0; p < n; p++) {
      const replica = this.view.replicaOf(p);
      const key = `${this.leaderOf(p)}/${replica?.leaderEpoch ?? -1}/${replica?.role ?? 'absent'}/${replica ? replicaIdentity(replica) : 0}`;
      if (this.seen[p] === key) continue;
      this.seen[p] = key;
      for (const l of [...this.listeners]) l(p);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.listeners.clear();
  }
}

/** A number per replica object, so a replica re-opened for the same partition counts as a change. */
const identities = new WeakMap<object, number>();
let nextIdentity = 1;
function replicaIdentity(replica: object): number {
  let id = identities.get(replica);
  if (id === undefined) identities.set(replica, (id = nextIdentity++));
  return id;
}

/** Broker ids as the topic source sees them: `live` = registered now; `known` = those and every replica of every topic (so it includes `live`). */
export interface ClusterBrokerIds {
  readonly live: readonly number[];
  readonly known: readonly number[];
}

/**
 * The replication factor `__consumer_offsets` is created with: min(`configured` (the broker's
 * defaultReplicationFactor) or 3, brokers), brokers = the ones the cluster has shown (`known`, live
 * or a replica of some topic). Not the brokers live at the instant of the first group
 * request: the topic's replicas never change, and a broker that missed its heartbeats or lease on a loaded
 * machine (registered again a moment later) would leave every group coordinator with fewer replicas for
 * good; one SIGKILL then took the only in-sync replica and the group's committed offsets stayed unreadable
 * (test/cluster/groups-failover: 503 LEADER_NOT_AVAILABLE for a minute after the kill).
 * Kafka's offsets.topic.replication.factor: the topic is not created before that many brokers are live.
 */
export function offsetsReplicationFactor(brokers: ClusterBrokerIds, configured?: number): number {
  const known = brokers.known.length; // NB: `known` includes `live` (ClusterBrokerIds)
  return configured === undefined ? defaultReplicationFactor(known) : Math.max(1, Math.min(configured, known));
}

/**
 * Creates `__consumer_offsets` unless it exists (any broker may: creation is a transaction in etcd
 * and a lost race answers TOPIC_ALREADY_EXISTS), with `offsetsReplicationFactor` replicas; while fewer
 * brokers are live than that, refuses LEADER_NOT_AVAILABLE (retryable: group requests wait and a later
 * one tries again). Resolves to the topic's partition count, which is the one placement uses even when
 * `partitions` differs (docs/groups.md).
 */
export async function ensureOffsetsTopic(
  source: { get(name: string): { info: TopicInfo } | undefined; create(spec: TopicSpec): Promise<TopicInfo>; brokerIds(): ClusterBrokerIds },
  partitions: number,
  retentionMs: number,
  configuredReplicationFactor?: number,
): Promise<number> {
  const existing = source.get(OFFSETS_TOPIC);
  if (existing) return existing.info.partitions;
  const brokers = source.brokerIds();
  const replicationFactor = offsetsReplicationFactor(brokers, configuredReplicationFactor);
  if (brokers.live.length < replicationFactor) {
    const missing = brokers.known.filter((id) => !brokers.live.includes(id));
    throw new RunnelError('LEADER_NOT_AVAILABLE', `${OFFSETS_TOPIC} is created with replication factor ${replicationFactor} and only ${brokers.live.length} broker(s) are live (waiting for broker(s) ${missing.join(', ')}; a cluster that lost one for good: set --default-replication-factor)`);
  }
  try {
    return (await source.create({ ...offsetsTopicSpec(partitions, retentionMs), replicationFactor })).partitions;
  } catch (e) {
    const now = source.get(OFFSETS_TOPIC);
    if (e instanceof RunnelError && e.errorName === 'TOPIC_ALREADY_EXISTS' && now) return now.info.partitions;
    throw e;
  }
}
