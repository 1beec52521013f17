/**
 * How a cluster broker builds its group service (`clusterGroupService`), for
 * the cluster wiring (replicated/cluster-node.ts): the
 * `ForwardingGroupService` over `ClusterOffsetsLeadership` of the replicated
 * registry's `__consumer_offsets`, with the topic created on first use
 * (`ensureOffsetsTopic`, sized by the brokers the cluster has shown), and fresh high watermarks asked of a partition's
 * leader when this broker's view trails the offset a member commits.
 *
 * @example
 * // In Broker.open's sources (after `topics` opened the registry):
 * groups: (host) => clusterGroupService({ brokerId, registry, links, server, host, forwarder, offsetsRetentionMs: 7 * 86_400_000, onError: warn }),
 */
import type { TopicInfo, TopicSpec } from '../metadata/topic-info.ts';
import type { Partition } from '../partition/partition.ts';
import type { ClusterGroupLimits } from '../groups/cluster-group-limits.ts';
import { resolveClusterGroupLimits } from '../groups/cluster-group-limits.ts';
import { OFFSETS_TOPIC } from '../groups/coordinator-placement.ts';
import type { GroupServiceHost } from '../groups/group-service.ts';
import type { LeaderForwarder } from './cluster-partition.ts';
import { ForwardingGroupService } from './group-forwarding.ts';
import { ClusterOffsetsLeadership, ensureOffsetsTopic, type ClusterBrokerIds } from './group-forwarding-leadership.ts';
import type { PeerRequester, RequestHandlers } from './leader-forwarder.ts';

/** The registry as the group service reads it (replicated-registry.ts: `get` → ClusterPartitions with `leader` and `localReplica`). */
export interface GroupTopicSource {
  get(name: string): { info: TopicInfo; partitions: readonly (Partition & { readonly leader: number; readonly localReplica?: unknown })[] } | undefined;
  create(spec: TopicSpec): Promise<TopicInfo>;
  /** Brokers live now, and every broker the cluster has shown (live, or a replica of some topic): how `__consumer_offsets` is sized. */
  brokerIds(): ClusterBrokerIds;
}

export interface ClusterGroupServiceOptions {
  brokerId: number;
  registry: GroupTopicSource;
  links: PeerRequester;
  server: RequestHandlers;
  host: GroupServiceHost;
  /** Reads through a partition's leader (the registry's PeerForwarder): fresh high watermarks for commit checks. */
  forwarder?: Pick<LeaderForwarder, 'read'>;
  /** Retention of `__consumer_offsets`, and so of committed offsets nobody renews (docs/groups.md). */
  offsetsRetentionMs: number;
  /**
   * The broker's defaultReplicationFactor, if configured: `__consumer_offsets` gets min(it, brokers the cluster has
   * shown) replicas. Absent: min(3, those brokers). Either way it waits until that many are live (offsetsReplicationFactor).
   */
  offsetsReplicationFactor?: number;
  limits?: Partial<ClusterGroupLimits>;
  /**
   * A partition's leadership as etcd holds it now, linearizably (ClusterStore.readLeadership): the read barrier
   * before a coordinator answers an offset fetch or describe from memory (docs/groups.md). Absent: no barrier.
   */
  readLeadership?(topicId: string, partition: number): Promise<{ readonly leader: number; readonly leaderEpoch: number } | undefined>;
  onError?(what: string, error: unknown): void;
}

export function clusterGroupService(o: ClusterGroupServiceOptions): ForwardingGroupService {
  const limits = resolveClusterGroupLimits(o.limits);
  const leadership = new ClusterOffsetsLeadership({
    topic: () => o.registry.get(OFFSETS_TOPIC),
    replicaOf: (p) => o.registry.get(OFFSETS_TOPIC)?.partitions[p]?.localReplica as (Partition & { role: 'leader' | 'follower' | 'none' }) | undefined,
    ...(o.readLeadership ? {
      leaderCheck: {
        brokerId: o.brokerId,
        read: async (p: number) => {
          const topic = o.registry.get(OFFSETS_TOPIC);
          return topic ? o.readLeadership!(topic.info.topicId, p) : undefined;
        },
      },
    } : {}),
  });
  const forwarder = o.forwarder;
  const service = new ForwardingGroupService({
    brokerId: o.brokerId, leadership, links: o.links, server: o.server, host: o.host, limits, onError: o.onError,
    createOffsetsTopic: async () => {
      await ensureOffsetsTopic(o.registry, limits.offsetsTopicPartitions, o.offsetsRetentionMs, o.offsetsReplicationFactor);
      leadership.check();
    },
    ...(forwarder ? {
      freshHighWatermark: async (topic: string, p: number) => {
        const partition = o.registry.get(topic)?.partitions[p];
        if (!partition || partition.leader < 0) return undefined;
        if (partition.leader === o.brokerId) return partition.highWatermark; // the leader's own is the fresh one
        // A one-byte read at our own high watermark: the leader answers with its high watermark (and at most one batch).
        const answer = await forwarder.read(partition.leader, partition.topic.topicId, p, partition.highWatermark, 1, 0).catch(() => undefined);
        return answer?.highWatermark;
      },
    } : {}),
  });
  return service;
}
