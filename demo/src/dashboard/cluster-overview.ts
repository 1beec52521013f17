/**
 * What the dashboard's Cluster panel shows, computed from `GET /v1/cluster`
 * answers (docs/http.md): the answer of the broker that served the page
 * names the nodes, the controller and every partition; each partition's
 * follower lag comes from its leader's own answer, since only a leader
 * tracks its followers. Pure: no DOM, no fetch (cluster-poller.ts fetches,
 * cluster-panel.ts draws).
 *
 * Invariant: at most `maxRows` partition rows, the offline and
 * under-replicated ones first, so a large cluster never hides the
 * partitions that need attention.
 */
import * as z from 'zod/mini';

const id = z.int();
const FollowerLag = z.object({ brokerId: id, lagRecords: z.number(), lagMs: z.number(), inIsr: z.boolean() });

/** The answer of GET /v1/cluster, validated once as it arrives (the server's ClusterView, server/src/cluster/cluster-state.ts). */
export const ClusterViewJson = z.object({
  brokerId: id,
  controller: z.nullable(id),
  etcdConnected: z.boolean(),
  brokers: z.array(z.object({ id, clientUrl: z.string(), startedAtMs: z.number() })),
  partitions: z.array(z.object({
    topic: z.string(),
    partition: id,
    leader: id,
    leaderEpoch: id,
    replicas: z.array(id),
    isr: z.array(id),
    role: z.enum(['leader', 'follower', 'none']),
    highWatermark: z.number(),
    logEndOffset: z.number(),
    followers: z.optional(z.array(FollowerLag)),
  })),
  omittedPartitions: z.optional(z.int()),
});
export type ClusterViewJson = z.infer<typeof ClusterViewJson>;
type PartitionJson = ClusterViewJson['partitions'][number];

/** One poll: the page's broker's answer, and each other broker's own answer or why it gave none. */
export interface PolledViews {
  self: ClusterViewJson;
  peers: ReadonlyMap<number, ClusterViewJson | { error: string }>;
}

export const clusterOverviewLimits = {
  /** Partition rows drawn; more is slow to draw every 2 s and unreadable anyway. */
  maxRows: 200,
};

export type NodeState =
  /** Registered (live lease) and, when the dashboard asked it, it answered. */
  | 'up'
  /** Registered, but its own /v1/cluster did not answer this page (down just now, or not reachable from this browser). */
  | 'unreachable'
  /** Named as a replica but not registered: the cluster considers it dead. */
  | 'down';

export interface NodeOverview {
  id: number;
  url: string;
  state: NodeState;
  /** Why `unreachable`. */
  problem?: string;
  isController: boolean;
  /** The broker that served this page. */
  isSelf: boolean;
  leads: number;
  hosts: number;
}

export type PartitionHealth = 'offline' | 'under-replicated' | 'ok';

export interface PartitionOverview {
  topic: string;
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  health: PartitionHealth;
  highWatermark: number;
  logEndOffset: number;
  /** From the leader's answer; null when no leader answered (offline, or unreachable from here). */
  followers: { brokerId: number; lagRecords: number; lagMs: number; inIsr: boolean }[] | null;
  /** The largest follower lag (records, ms); 0 with no followers, null with no answer. */
  maxLagRecords: number | null;
  maxLagMs: number | null;
}

export interface ClusterOverview {
  /** A single node: its own controller, no etcd (the only view that reports controller = itself while etcd is not connected). */
  isSingleNode: boolean;
  brokerId: number;
  controller: number | null;
  etcdConnected: boolean;
  nodes: NodeOverview[];
  partitions: PartitionOverview[];
  /** Partitions not drawn: cut by maxRows here or by the server's maxClusterViewPartitions. */
  omittedPartitions: number;
  totals: { partitions: number; underReplicated: number; offline: number };
}

export function partitionHealth(p: { leader: number; isr: readonly number[]; replicas: readonly number[] }): PartitionHealth {
  if (p.leader < 0) return 'offline';
  return p.isr.length < p.replicas.length ? 'under-replicated' : 'ok';
}

const HEALTH_RANK: Record<PartitionHealth, number> = { offline: 0, 'under-replicated': 1, ok: 2 };
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byTopicPartition = (a: PartitionJson, b: PartitionJson): number => byName(a.topic, b.topic) || a.partition - b.partition;
const key = (p: { topic: string; partition: number }): string => `${p.partition}\u0000${p.topic}`;
const isView = (v: ClusterViewJson | { error: string } | undefined): v is ClusterViewJson => v !== undefined && !('error' in v);

/** The answer that knows a partition's followers: its leader's. */
function followersOf(p: PartitionJson, polled: PolledViews, peerPartitions: Map<number, Map<string, PartitionJson>>): PartitionOverview['followers'] {
  if (p.leader < 0) return null;
  if (p.leader === polled.self.brokerId) return p.followers ?? [];
  const fromLeader = peerPartitions.get(p.leader)?.get(key(p));
  return fromLeader?.role === 'leader' ? fromLeader.followers ?? [] : null;
}

function nodesOf(polled: PolledViews, pageOrigin: string): NodeOverview[] {
  const { self } = polled;
  const registered = new Map(self.brokers.map((b) => [b.id, b]));
  const ids = new Set<number>(registered.keys());
  for (const p of self.partitions) for (const r of p.replicas) ids.add(r);
  return [...ids].sort((a, b) => a - b).map((nodeId) => {
    const peer = polled.peers.get(nodeId);
    const isSelf = nodeId === self.brokerId;
    const state: NodeState = !registered.has(nodeId) && !isSelf ? 'down' : peer !== undefined && !isView(peer) ? 'unreachable' : 'up';
    const url = registered.get(nodeId)?.clientUrl || (isSelf ? pageOrigin : '');
    return {
      id: nodeId, url, state, isController: self.controller === nodeId, isSelf,
      leads: self.partitions.filter((p) => p.leader === nodeId).length,
      hosts: self.partitions.filter((p) => p.replicas.includes(nodeId)).length,
      ...(peer !== undefined && !isView(peer) ? { problem: peer.error } : {}),
    };
  });
}

/**
 * @example
 * const overview = clusterOverview({ self: ClusterViewJson.parse(await res.json()), peers: new Map() }, location.origin);
 * overview.totals.offline; // partitions without a leader
 */
export function clusterOverview(polled: PolledViews, pageOrigin: string, limits = clusterOverviewLimits): ClusterOverview {
  const { self } = polled;
  const peerPartitions = new Map<number, Map<string, PartitionJson>>();
  for (const [peerId, view] of polled.peers) if (isView(view)) peerPartitions.set(peerId, new Map(view.partitions.map((p) => [key(p), p])));

  const ranked = [...self.partitions].sort((a, b) => HEALTH_RANK[partitionHealth(a)] - HEALTH_RANK[partitionHealth(b)] || byTopicPartition(a, b));
  const drawn = ranked.slice(0, limits.maxRows).sort(byTopicPartition);
  const partitions = drawn.map((p): PartitionOverview => {
    const followers = followersOf(p, polled, peerPartitions);
    return {
      topic: p.topic, partition: p.partition, leader: p.leader, leaderEpoch: p.leaderEpoch, replicas: p.replicas, isr: p.isr,
      health: partitionHealth(p), highWatermark: p.highWatermark, logEndOffset: p.logEndOffset, followers,
      maxLagRecords: followers === null ? null : Math.max(0, ...followers.map((f) => f.lagRecords)),
      maxLagMs: followers === null ? null : Math.max(0, ...followers.map((f) => f.lagMs)),
    };
  });
  return {
    isSingleNode: !self.etcdConnected && self.controller === self.brokerId && self.brokers.length <= 1,
    brokerId: self.brokerId,
    controller: self.controller,
    etcdConnected: self.etcdConnected,
    nodes: nodesOf(polled, pageOrigin),
    partitions,
    omittedPartitions: self.partitions.length - drawn.length + (self.omittedPartitions ?? 0),
    totals: {
      partitions: self.partitions.length + (self.omittedPartitions ?? 0),
      underReplicated: self.partitions.filter((p) => partitionHealth(p) === 'under-replicated').length,
      offline: self.partitions.filter((p) => p.leader < 0).length,
    },
  };
}
