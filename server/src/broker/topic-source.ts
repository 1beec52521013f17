/**
 * `TopicSource`: where the broker service gets its topics and their
 * partitions. A single node opens a `LocalPartition` per partition
 * (topic-registry.ts); a cluster broker opens replicas of the partitions
 * assigned to it and reaches the others through their leaders
 * (replicated/replicated-registry.ts). The broker service (broker.ts) is
 * the same over both.
 *
 * Contract: `get`/`list` reflect only topics whose metadata is durable;
 * `create` resolves once the topic is servable here; `delete` resolves once
 * its metadata is gone (files may follow); the hooks fire in order, a
 * partition's `onPartitionOpen` before any use, `onTopicClose` before its
 * partitions close.
 */
import type { TopicInfo, TopicSpec } from '../metadata/topic-info.ts';
import type { Partition } from '../partition/partition.ts';

/** A partition as the broker serves it. */
export interface ServedPartition extends Partition {
  /** Wakes long polls without closing (shutdown ends them before the logs flush; topic deletion). */
  endWaits(): void;
  /** Each group-commit fdatasync of a local log, with its duration (the fsyncLatency metric); absent without a local log. */
  onFlush?(listener: (durationMs: number) => void): () => void;
}

export interface ServedTopic {
  info: TopicInfo;
  partitions: ServedPartition[];
}

export interface TopicSourceHooks {
  /** Called for each partition right after it opens (fan-out attaches here). */
  onPartitionOpen?: (topic: TopicInfo, partition: ServedPartition) => void;
  /** Called before a topic's partitions close on deletion (fan-out detaches here). */
  onTopicClose?: (topic: ServedTopic) => void;
  /** The set of topics changed by someone else (a cluster's other brokers): groups rebalance onto new partition counts. */
  onTopicsChanged?: () => void;
}

export interface TopicSource {
  get(name: string): ServedTopic | undefined;
  list(): TopicInfo[];
  openTopics(): ServedTopic[];
  /** TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, LIMIT_EXCEEDED. */
  create(spec: TopicSpec): Promise<TopicInfo>;
  /** UNKNOWN_TOPIC_OR_PARTITION. */
  delete(name: string): Promise<TopicInfo>;
  /** A topic asked for by name and not served: look again at the source of truth (a cluster's etcd) before refusing it. */
  refresh?(name: string): Promise<void>;
  enforceRetention(nowMs: number): Promise<void>;
  endWaits(): void;
  close(): Promise<void>;
}
