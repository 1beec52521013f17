/**
 * The request layer's contract: every operation a client can ask for, over
 * WebSocket frames or HTTP routes, takes the `RequestContext` of who asks.
 * `RequestLayer` (request-layer.ts) is the implementation over the broker
 * and the one place that authorizes and applies quotas; the HTTP routes see
 * the `HttpBrokerApi` part, which the route tests' in-memory broker also
 * implements (both run broker-api.contract.ts). Result types are declared
 * once, by the partition and metadata modules, and only re-exported here.
 */
import type { CommittedOffset, ErrorName, GroupAssignmentFrame } from '@runnel/client/codec';
import type { GroupDescription, GroupMemberSink, GroupSummary } from '../groups/coordinator.ts';
import type { TopicInfo, TopicSpec } from '../metadata/topic-info.ts';
import type { ProducerEntry } from '../log/producer-state.ts';
import type { Acks, AppendResult, PartitionReadResult, PartitionState } from '../partition/partition.ts';
import type { Authentication } from './access-control.ts';
import type { RequestContext } from './request-context.ts';

export type { Acks, AppendResult as ProduceResult, PartitionReadResult as FetchResult, PartitionState as PartitionInfo, TopicInfo, TopicSpec };
export type { GroupDescription, GroupMemberSink, GroupSummary, Authentication };

export interface TopicDescription { topic: TopicInfo; partitions: PartitionState[] }
export interface ConsumerLag { group: string; topic: string; partition: number; lag: number }
export interface GroupJoinRequest { requestId: number; group: string; memberId: string; topics: string[]; sessionTimeoutMs: number }

/** How a client proves it owns the producer ids its batches carry. */
export type ProducerProof =
  /** WebSocket: the ids this connection claimed with initProducer. */
  | { readonly claimed: ReadonlySet<number> }
  /** HTTP: the secret issued with the id (`x-runnel-producer-secret` header or `producerSecret` query). */
  | { readonly secret: string };

/** What the HTTP routes use. */
export interface HttpBrokerApi {
  readonly config: { readonly defaultPartitions: number };
  /** True when clients must present a valid token (auth configured). */
  readonly requiresToken: boolean;
  /** Verifies a presented token (undefined/'' = none); refusals are audited. Anonymous when no auth is configured. */
  authenticate(token: string | undefined, remoteAddress: string): Promise<Authentication>;
  /** Operator-only endpoints (/metrics): CLUSTER_AUTHORIZATION_FAILED without the admin grant (audited). */
  checkAdmin(ctx: RequestContext): void;
  /** INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, LIMIT_EXCEEDED. */
  createTopic(ctx: RequestContext, spec: TopicSpec): Promise<TopicInfo>;
  listTopics(ctx: RequestContext): TopicInfo[];
  /** UNKNOWN_TOPIC_OR_PARTITION. */
  describeTopic(ctx: RequestContext, name: string): TopicDescription;
  deleteTopic(ctx: RequestContext, name: string): Promise<void>;
  /** Look again for a topic this broker does not serve (a cluster broker may not have seen a topic created elsewhere a moment ago); describe it after. */
  refreshTopic(ctx: RequestContext, name: string): Promise<void>;
  /** The topic a produce goes to: auto-created when the broker allows it, else UNKNOWN_TOPIC_OR_PARTITION. */
  ensureTopic(ctx: RequestContext, name: string): Promise<TopicInfo>;
  /**
   * Resolves once the batch is durable (acks −1); takes ownership of `batch`; validates it once. An
   * idempotent batch (producerId ≥ 0) needs `producer`'s proof: UNKNOWN_PRODUCER_ID otherwise.
   */
  produce(ctx: RequestContext, topic: string, partition: number, batch: Uint8Array, acks: Acks, producer?: ProducerProof): Promise<AppendResult>;
  /**
   * The batches of one request (an HTTP JSON body, one per partition), all or none past the quota:
   * the produce quota is reserved for all their records at once before any is written, so a throttled
   * request never answers 429 after writing part of itself. Non-idempotent batches only.
   */
  produceAll(ctx: RequestContext, topic: string, batches: readonly { partition: number; batch: Uint8Array }[], acks: Acks): Promise<AppendResult[]>;
  /**
   * The partition's idempotent-producer state of `producerId` (needs the produce grant): what an append of
   * that producer is checked against, rebuilt from the log on restart, as the partition's leader holds it (in
   * a cluster, asked of the leader). UNKNOWN_TOPIC_OR_PARTITION.
   */
  producerState(ctx: RequestContext, topic: string, partition: number, producerId: number): Promise<ProducerEntry | undefined>;
  /** Stored batches from the one containing `offset`, below the high watermark. OFFSET_OUT_OF_RANGE. */
  fetch(ctx: RequestContext, topic: string, partition: number, offset: number, maxBytes: number): Promise<PartitionReadResult>;
  /** Resolves once highWatermark > offset, on timeout, on abort or topic deletion (never rejects once started). */
  waitForRecords(ctx: RequestContext, topic: string, partition: number, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Standalone commits: generationId −1 and memberId ''. Durable before it resolves. `rewind`: it may lower committed offsets (otherwise OFFSET_COMMIT_BACKWARDS). */
  commitOffsets(ctx: RequestContext, group: string, generationId: number, memberId: string, offsets: CommittedOffset[], rewind?: boolean): Promise<void>;
  fetchOffsets(ctx: RequestContext, group: string, topics?: string[]): Promise<CommittedOffset[]>;
  /** UNKNOWN_GROUP. In a cluster, asked of the group's coordinator. */
  describeGroup(ctx: RequestContext, group: string): Promise<GroupDescription>;
  /** In a cluster, every coordinator's groups (a coordinator that does not answer is left out). */
  listGroups(ctx: RequestContext): Promise<GroupSummary[]>;
  /** Lag of every committed offset of the groups coordinated by this broker (scrape time, for /metrics; not a client operation). */
  consumerLag(): ConsumerLag[];
}

/** Everything, including what only WebSocket sessions ask. */
export interface BrokerApi extends HttpBrokerApi {
  readonly brokerId: number;
  /** `(-1, -1)` allocates a producer id. */
  /** `(-1, …)` allocates; an issued id is re-claimed only with its secret by the same subject, else a fresh id is issued. */
  initProducer(ctx: RequestContext, producerId: number, producerEpoch: number, producerSecret: string): Promise<{ producerId: number; producerEpoch: number; producerSecret: string }>;
  /** The topic a subscription reads (auto-created like a produce's, when allowed); INVALID_TOPIC_EXCEPTION, UNKNOWN_TOPIC_OR_PARTITION. */
  subscribe(ctx: RequestContext, topic: string, partition: number): Promise<TopicInfo>;
  offsetForTimestamp(ctx: RequestContext, topic: string, partition: number, timestampMs: number): Promise<number | null>;
  /** Credit a subscriber grants: the ms to withhold it (0 = now) while the client is over its fetch quota. */
  creditDelayMs(ctx: RequestContext, topic: string, partition: number, bytes: number): number;
  /** A WebSocket connection from `ip` may open (connections-per-IP quota); pair with releaseConnection. */
  admitConnection(ip: string): boolean;
  releaseConnection(ip: string): void;
  /** Resolves to the joiner's answer (an error answer carries its code); the other members' new assignments reach their sinks. */
  joinGroup(ctx: RequestContext, request: GroupJoinRequest, sink: GroupMemberSink): Promise<GroupAssignmentFrame>;
  /** null, or the error a member must act on (UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS: join again). */
  heartbeat(ctx: RequestContext, group: string, memberId: string, generationId: number): Promise<ErrorName | null>;
  leaveGroup(ctx: RequestContext, group: string, memberId: string): Promise<void>;
  /** The connection closed: its members leave at once. */
  leaveAll(sink: GroupMemberSink): void;
}
