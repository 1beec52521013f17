/**
 * The cluster as this broker sees it: `GET /v1/cluster` (nodes, controller,
 * etcd reachability, and per partition leader, epoch, replicas, ISR, high
 * watermark, follower lag) and the cluster gauges of `/metrics`, both from
 * one `ClusterView` (server/src/cluster/cluster-state.ts) computed on demand:
 * at the request, at the scrape; never on the produce path.
 *
 * Without a cluster view provider (a single node, `npm start`) the view is
 * derived from the broker's own partitions: one node, its own controller,
 * `etcdConnected: false`; that combination (controller = brokerId while etcd
 * is not connected) only a single node reports, since a cluster broker that
 * loses etcd reports `controller: null`.
 *
 * Invariant: a client sees only partitions of topics it may describe (the
 * topics `GET /v1/topics` lists it, through the request layer), and a scrape
 * or an answer holds a bounded number of partitions (`ClusterViewLimits`),
 * the unhealthy ones first, so the partitions that need attention are never
 * the ones cut.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { RunnelError } from '@runnel/client/codec';
import type { BrokerEndpoint, ClusterPartitionView, ClusterView } from '../../cluster/cluster-state.ts';
import type { RunnelMetrics } from '../../metrics.ts';
import type { HttpBrokerApi } from '../../request/broker-api.ts';
import { requestContext, type RequestContext } from '../../request/request-context.ts';
import { contextOf, type RouteContext } from '../route-context.ts';
import { errorResponses } from './schemas.ts';

// ---- limits ----

export interface ClusterViewLimits {
  /**
   * Partitions in one `GET /v1/cluster` answer (the rest are counted in `omittedPartitions`; `?topic=`
   * narrows). Too low hides healthy partitions from the dashboard; too high lets a poll of a cluster
   * with maxTopics × maxPartitionsPerTopic partitions build a multi-megabyte answer every 2 s.
   */
  maxClusterViewPartitions: number;
  /**
   * Partitions with per-partition series (`runnel_partition_leader`, `_isr_size`, `_replicas`) in one
   * scrape of one broker. Each is one label set per gauge; too high bloats scrapes and Prometheus.
   */
  maxPartitionSeries: number;
  /** Follower series (`runnel_replica_lag_records`, `_ms`) in one scrape of one broker: the largest lags. */
  maxReplicaLagSeries: number;
}

export const defaultClusterViewLimits: ClusterViewLimits = {
  maxClusterViewPartitions: 10_000,
  maxPartitionSeries: 1000,
  maxReplicaLagSeries: 1000,
};

/** Fills defaults for the fields `input` lacks (it may be the broker's whole `Limits` once they are folded in); RangeError on a bad value. */
export function validateClusterViewLimits(input: Partial<ClusterViewLimits> = {}): ClusterViewLimits {
  const limits: ClusterViewLimits = {
    maxClusterViewPartitions: input.maxClusterViewPartitions ?? defaultClusterViewLimits.maxClusterViewPartitions,
    maxPartitionSeries: input.maxPartitionSeries ?? defaultClusterViewLimits.maxPartitionSeries,
    maxReplicaLagSeries: input.maxReplicaLagSeries ?? defaultClusterViewLimits.maxReplicaLagSeries,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`cluster view limit ${name} must be a non-negative integer, got ${value}`);
  }
  if (limits.maxClusterViewPartitions < 1) throw new RangeError('maxClusterViewPartitions must be at least 1');
  return limits;
}

// ---- health, order and selection (pure) ----

export type PartitionHealth = 'offline' | 'under-replicated' | 'ok';

/** offline: no leader (never an unclean election, docs/cluster.md); under-replicated: ISR smaller than the replica set. */
export function partitionHealth(p: Pick<ClusterPartitionView, 'leader' | 'isr' | 'replicas'>): PartitionHealth {
  if (p.leader < 0) return 'offline';
  return p.isr.length < p.replicas.length ? 'under-replicated' : 'ok';
}

const HEALTH_RANK: Record<PartitionHealth, number> = { offline: 0, 'under-replicated': 1, ok: 2 };
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byTopicPartition = (a: ClusterPartitionView, b: ClusterPartitionView): number => byName(a.topic, b.topic) || a.partition - b.partition;
const unhealthyFirst = (a: ClusterPartitionView, b: ClusterPartitionView): number =>
  HEALTH_RANK[partitionHealth(a)] - HEALTH_RANK[partitionHealth(b)] || byTopicPartition(a, b);

/** At most `max` partitions, unhealthy first, returned by topic then partition. */
export function boundedPartitions(partitions: readonly ClusterPartitionView[], max: number): { kept: ClusterPartitionView[]; omitted: number } {
  if (partitions.length <= max) return { kept: [...partitions].sort(byTopicPartition), omitted: 0 };
  const kept = [...partitions].sort(unhealthyFirst).slice(0, Math.max(0, max)).sort(byTopicPartition);
  return { kept, omitted: partitions.length - kept.length };
}

/** What one client may see of `view`: partitions of `visibleTopics` only (and of `topic`, when given), bounded. */
export function visibleClusterView(view: ClusterView, visibleTopics: ReadonlySet<string>, maxPartitions: number, topic?: string): ClusterView & { omittedPartitions?: number } {
  const partitions = view.partitions.filter((p) => visibleTopics.has(p.topic) && (topic === undefined || p.topic === topic));
  const { kept, omitted } = boundedPartitions(partitions, maxPartitions);
  return {
    brokerId: view.brokerId,
    controller: view.controller,
    etcdConnected: view.etcdConnected,
    brokers: [...view.brokers].sort((a, b) => a.id - b.id),
    partitions: kept,
    ...(omitted > 0 ? { omittedPartitions: omitted } : {}),
  };
}

/** What `/metrics` exposes of one view: totals always exact, per-partition and per-follower series bounded. */
export interface ClusterSamples {
  brokers: number;
  isController: boolean;
  etcdConnected: boolean;
  partitionsLed: number;
  underReplicated: number;
  offline: number;
  partitions: { topic: string; partition: number; leader: number; isrSize: number; replicas: number }[];
  followers: { topic: string; partition: number; follower: number; lagRecords: number; lagMs: number }[];
}

/**
 * Which broker reports what, so that summing a gauge over brokers counts each partition once
 * (Kafka's rule): a partition's leader reports it; a partition without a leader is reported by the
 * controller. Followers are reported by their leader, which alone tracks their positions.
 */
export function clusterSamples(view: ClusterView, limits: Pick<ClusterViewLimits, 'maxPartitionSeries' | 'maxReplicaLagSeries'>): ClusterSamples {
  const isController = view.controller === view.brokerId;
  const led = view.partitions.filter((p) => p.role === 'leader');
  const reported = view.partitions.filter((p) => p.role === 'leader' || (isController && p.leader < 0));
  const followers = led.flatMap((p) => (p.followers ?? []).map((f) => ({ topic: p.topic, partition: p.partition, follower: f.brokerId, lagRecords: f.lagRecords, lagMs: f.lagMs })));
  followers.sort((a, b) => b.lagRecords - a.lagRecords || b.lagMs - a.lagMs || byName(a.topic, b.topic) || a.partition - b.partition || a.follower - b.follower);
  return {
    brokers: view.brokers.length,
    isController,
    etcdConnected: view.etcdConnected,
    partitionsLed: led.length,
    underReplicated: led.filter((p) => partitionHealth(p) === 'under-replicated').length,
    offline: isController ? view.partitions.filter((p) => p.leader < 0).length : 0,
    partitions: [...reported].sort(unhealthyFirst).slice(0, Math.max(0, limits.maxPartitionSeries))
      .map((p) => ({ topic: p.topic, partition: p.partition, leader: p.leader, isrSize: p.isr.length, replicas: p.replicas.length })),
    followers: followers.slice(0, Math.max(0, limits.maxReplicaLagSeries)),
  };
}

/** Sets the cluster gauges (reset by metrics.ts before the fillers run). */
export function setClusterMetrics(metrics: RunnelMetrics, s: ClusterSamples): void {
  metrics.clusterBrokers.set(s.brokers);
  metrics.clusterIsController.set(s.isController ? 1 : 0);
  metrics.clusterEtcdConnected.set(s.etcdConnected ? 1 : 0);
  metrics.partitionsLed.set(s.partitionsLed);
  metrics.underReplicatedPartitions.set(s.underReplicated);
  metrics.offlinePartitions.set(s.offline);
  for (const p of s.partitions) {
    const labels = { topic: p.topic, partition: String(p.partition) };
    metrics.partitionLeader.set(labels, p.leader);
    metrics.partitionIsrSize.set(labels, p.isrSize);
    metrics.partitionReplicas.set(labels, p.replicas);
  }
  for (const f of s.followers) {
    const labels = { topic: f.topic, partition: String(f.partition), follower: String(f.follower) };
    metrics.replicaLagRecords.set(labels, f.lagRecords);
    metrics.replicaLagMs.set(labels, f.lagMs);
  }
}

// ---- the single-node view ----

/**
 * One node's view from its own partitions: it is its own controller, uses no etcd, and has no
 * replication address, lease or client URL to report (the HTTP app does not know the URL it is
 * reached by: TLS ends before it and Host is the client's word), so those are '' / 0.
 */
export function localClusterView(broker: HttpBrokerApi, ctx: RequestContext, node: { brokerId: number; startedAtMs: number }): ClusterView {
  const partitions: ClusterPartitionView[] = [];
  for (const topic of broker.listTopics(ctx)) {
    let described;
    try {
      described = broker.describeTopic(ctx, topic.name);
    } catch (e) {
      // Deleted between the list and the describe: it is simply gone from the view.
      if (e instanceof RunnelError && e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION') continue;
      throw e;
    }
    for (const p of described.partitions) {
      partitions.push({
        topic: topic.name, partition: p.partition, leader: p.leader, leaderEpoch: p.leaderEpoch, replicas: [...p.replicas], isr: [...p.isr],
        role: p.leader === node.brokerId ? 'leader' : 'none', highWatermark: p.highWatermark, logEndOffset: p.logEndOffset,
        ...(p.leader === node.brokerId ? { followers: [] } : {}),
      });
    }
  }
  const self: BrokerEndpoint = { id: node.brokerId, clientUrl: '', replicationHost: '', replicationPort: 0, startedAtMs: node.startedAtMs, leaseId: '' };
  return { brokerId: node.brokerId, controller: node.brokerId, etcdConnected: false, brokers: [self], partitions };
}

// ---- the route ----

const BrokerEndpointSchema = z.object({
  id: z.number().int(),
  clientUrl: z.string().openapi({ description: "Base URL clients use ('' on a single node: the URL you asked)", example: 'http://10.0.0.2:8080' }),
  replicationHost: z.string(),
  replicationPort: z.number().int(),
  startedAtMs: z.number(),
  leaseId: z.string().openapi({ description: 'etcd lease of the registration (decimal); \'\' on a single node' }),
}).openapi('BrokerEndpoint');

const FollowerLagSchema = z.object({
  brokerId: z.number().int(),
  lagRecords: z.number().int().openapi({ description: 'Records behind the leader\'s log end' }),
  lagMs: z.number().openapi({ description: 'Milliseconds since it was last caught up' }),
  inIsr: z.boolean(),
}).openapi('FollowerLag');

const ClusterPartitionSchema = z.object({
  topic: z.string(),
  partition: z.number().int(),
  leader: z.number().int().openapi({ description: 'Leader broker id; -1 = offline (no live in-sync replica)' }),
  leaderEpoch: z.number().int(),
  replicas: z.array(z.number().int()).openapi({ description: 'Assigned replicas, preferred leader first' }),
  isr: z.array(z.number().int()),
  role: z.enum(['leader', 'follower', 'none']).openapi({ description: "This broker's role ('none': no replica here)" }),
  highWatermark: z.number().int(),
  logEndOffset: z.number().int(),
  followers: z.array(FollowerLagSchema).optional().openapi({ description: 'Only where this broker leads' }),
}).openapi('ClusterPartition');

const ClusterViewSchema = z.object({
  brokerId: z.number().int().openapi({ description: 'The broker that answered' }),
  controller: z.number().int().nullable().openapi({ description: 'Controller broker id; null while none is elected or etcd is unreachable. A single node is its own.' }),
  etcdConnected: z.boolean().openapi({ description: 'Whether the answering broker reaches etcd now (false on a single node, which uses none)' }),
  brokers: z.array(BrokerEndpointSchema).openapi({ description: 'Live registered brokers, by id' }),
  partitions: z.array(ClusterPartitionSchema).openapi({ description: 'Partitions of the topics the caller may describe, by topic then partition' }),
  omittedPartitions: z.number().int().optional().openapi({ description: 'Present when maxClusterViewPartitions cut the list: how many were left out (healthy ones first)' }),
}).openapi('ClusterView');

const describeCluster = createRoute({
  method: 'get', path: '/v1/cluster', tags: ['cluster'],
  summary: 'Nodes, controller, and every partition\'s leader, epoch, replicas, ISR, high watermark and follower lag, as this broker sees them',
  request: { query: z.object({ topic: z.string().min(1).optional().openapi({ description: 'Only this topic\'s partitions' }) }) },
  responses: { 200: { description: 'Cluster view', content: { 'application/json': { schema: ClusterViewSchema } } }, ...errorResponses(401) },
});

/** The context of the broker's own reads for the scrape (not a client: like `consumerLag()`, it sees every topic). */
const SCRAPE_CONTEXT = requestContext('http', '', 'runnel-metrics');

export function registerClusterRoutes({ app, broker, metrics, limits }: RouteContext, clusterView?: () => ClusterView): void {
  const bounds = validateClusterViewLimits(limits as Partial<ClusterViewLimits>);
  // NB: HttpBrokerApi does not name the broker id; the request layer (BrokerApi) does, the route tests' double does not (0).
  const named = (broker as Partial<{ brokerId: unknown }>).brokerId;
  const brokerId = typeof named === 'number' ? named : 0;
  const node = { brokerId, startedAtMs: Date.now() };
  const viewFor = (ctx: RequestContext): ClusterView => (clusterView ? clusterView() : localClusterView(broker, ctx, node));

  metrics.onClusterCollect(() => setClusterMetrics(metrics, clusterSamples(viewFor(SCRAPE_CONTEXT), bounds)));
  app.openapi(describeCluster, (c) => {
    const ctx = contextOf(c);
    const visible = new Set(broker.listTopics(ctx).map((t) => t.name));
    return c.json(visibleClusterView(viewFor(ctx), visible, bounds.maxClusterViewPartitions, c.req.valid('query').topic), 200);
  });
}
