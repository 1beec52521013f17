/**
 * What a client-facing test needs to know about a running LocalCluster
 * (etcd + broker processes), asked the way an operator would: each broker's
 * HTTP API (`GET /v1/topics/:topic`, `GET /v1/cluster?topic=`, `/metrics`).
 * Conditions are polled with a deadline (`waitFor`), never slept for.
 *
 * NB: a topic is waited for on every broker after its `POST /v1/topics`
 * answered 201 because today that answer can come before any broker serves
 * the topic (ClusterStore's cache learns the new keys from the etcd watch,
 * and ReplicatedRegistry.create syncs from that cache); a producer sending
 * in that window has its record rejected with UNKNOWN_TOPIC_OR_PARTITION.
 * test/sdk/cluster-topic-visibility.test.ts pins that case.
 */
import type { BrokerNode, LocalCluster } from '../../../server/src/cluster/local-cluster.ts';
import type { ClusterPartitionView } from '../../../server/src/cluster/cluster-state.ts';
import { BrokerHttp } from './broker-http.ts';
import { waitFor } from './wait-for.ts';

/** How long a probe waits for one broker's answer (a loaded machine, a broker busy electing). */
const PROBE_TIMEOUT_MS = 3_000;

/** Brokers with a process that is not SIGSTOPped. */
export function runningBrokers(cluster: LocalCluster): BrokerNode[] {
  return cluster.brokers.filter((b) => b.isRunning && !b.isPaused);
}

/** Every broker's log tail, for failure messages. */
export function clusterLog(cluster: LocalCluster): string {
  return cluster.brokers.map((b) => b.log()).join('\n');
}

/**
 * Creates `topic` through `via` and resolves once every running broker
 * serves it: `GET /v1/topics/:topic` answers 200 with every partition led.
 * @example await createServedTopic(cluster, cluster.brokers[0], { name: 't', partitions: 3, replicationFactor: 3, minInsyncReplicas: 2 });
 */
export async function createServedTopic(
  cluster: LocalCluster, via: BrokerNode,
  spec: { name: string; partitions: number; replicationFactor: number; minInsyncReplicas?: number },
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const created = await new BrokerHttp(via.url).request('POST', '/v1/topics', spec);
  if (created.status !== 201) throw new Error(`create topic ${spec.name} through node ${via.id}: HTTP ${created.status} ${JSON.stringify(created.json)}`);
  await waitFor(`topic ${spec.name} served by every broker`, async () => {
    for (const broker of runningBrokers(cluster)) {
      const { status, json } = await new BrokerHttp(broker.url).request('GET', `/v1/topics/${encodeURIComponent(spec.name)}`);
      if (status !== 200) return false;
      const partitions = json.partitions as { leader: number }[];
      if (partitions.length !== spec.partitions || partitions.some((p) => p.leader < 0)) return false;
    }
    return true;
  }, { timeoutMs: options.timeoutMs ?? 30_000, intervalMs: 20, context: () => clusterLog(cluster) });
}

/** `topic`'s partitions as `broker` sees them (`GET /v1/cluster?topic=`). */
export async function partitionViews(broker: BrokerNode, topic: string): Promise<ClusterPartitionView[]> {
  return (await broker.clusterView(PROBE_TIMEOUT_MS, topic)).partitions.filter((p) => p.topic === topic);
}

/**
 * Resolves once every running broker sees every partition of `topic` led,
 * with all `replicas` brokers in its ISR: the precondition for killing any
 * one broker without falling below minInsyncReplicas 2 of 3.
 */
export async function waitFullIsr(cluster: LocalCluster, topic: string, replicas: number, options: { timeoutMs?: number } = {}): Promise<void> {
  await waitFor(`every partition of ${topic} with ${replicas} replicas in its ISR`, async () => {
    for (const broker of runningBrokers(cluster)) {
      const views = await partitionViews(broker, topic);
      if (views.length === 0 || views.some((p) => p.leader < 0 || p.isr.length !== replicas)) return false;
    }
    return true;
  }, { timeoutMs: options.timeoutMs ?? 45_000, intervalMs: 50, context: () => clusterLog(cluster) });
}

/** Open client WebSocket connections per running broker (`runnel_connections` of its /metrics). */
export async function connectionCounts(cluster: LocalCluster): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  await Promise.all(runningBrokers(cluster).map(async (b) => counts.set(b.id, await new BrokerHttp(b.url).metric('runnel_connections'))));
  return counts;
}

/** The controller and the partitions of `topic` each broker leads, as `via` sees them. */
export async function roles(via: BrokerNode, topic: string): Promise<{ controller: number | null; leaderOf: Map<number, number[]> }> {
  const view = await via.clusterView(PROBE_TIMEOUT_MS, topic);
  const leaderOf = new Map<number, number[]>();
  for (const p of view.partitions) if (p.topic === topic) leaderOf.set(p.leader, [...(leaderOf.get(p.leader) ?? []), p.partition]);
  return { controller: view.controller, leaderOf };
}
