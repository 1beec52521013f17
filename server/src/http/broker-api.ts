/**
 * The part of the `Broker` (server/src/broker/broker.ts) the HTTP API uses,
 * declared structurally so routes depend on the contract, not the class:
 * the real `Broker` satisfies it, and route unit tests use a small in-memory
 * implementation of it. Shapes follow docs/http.md.
 */
import type { TopicInfo, TopicSpec } from '../broker/topic-registry.ts';
import type { GroupCoordinator } from '../groups/coordinator.ts';

export type { TopicInfo, TopicSpec };

export interface PartitionInfo {
  partition: number; leader: number; replicas: number[]; isr: number[];
  logStartOffset: number; highWatermark: number; logEndOffset: number;
}

export interface FetchResult {
  /** Concatenated stored RecordBatch bytes; the first batch may start below the requested offset. */
  batches: Uint8Array; firstOffset: number; nextOffset: number; highWatermark: number; logStartOffset: number;
}

export interface ProduceResult { baseOffset: number; lastOffset: number; logAppendTimeMs: number; duplicate: boolean }

export interface BrokerApi {
  readonly config: { readonly defaultPartitions: number };
  createTopic(spec: TopicSpec): Promise<TopicInfo>;
  listTopics(): TopicInfo[];
  /** Throws UNKNOWN_TOPIC_OR_PARTITION. */
  describeTopic(name: string): { topic: TopicInfo; partitions: PartitionInfo[] };
  deleteTopic(name: string): Promise<void>;
  /** Auto-creates the topic when the broker allows it, else UNKNOWN_TOPIC_OR_PARTITION. */
  ensureTopic(name: string): Promise<TopicInfo>;
  /** Resolves once the batch is durable (acks −1); takes ownership of `batch`. */
  produce(topic: string, partition: number, batch: Uint8Array, acks: -1 | 0 | 1): Promise<ProduceResult>;
  fetch(topic: string, partition: number, offset: number, maxBytes: number): Promise<FetchResult>;
  /** Resolves once highWatermark > offset, on timeout, or on abort. */
  waitForRecords(topic: string, partition: number, offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  readonly groups: Pick<GroupCoordinator, 'commitOffsets' | 'fetchOffsets' | 'describeGroup' | 'listGroups' | 'lag'>;
}
