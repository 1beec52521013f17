/**
 * `MetadataStore`: where topic metadata lives. A file on a single node
 * (`FileMetadataStore`), etcd in a cluster. Every change is a
 * compare-and-swap on what the caller last saw, so two writers can never
 * both create one topic name or delete a topic they did not see.
 *
 * Contract (metadata-store.contract.ts runs it on every implementation):
 * - `createTopic` is durable before it resolves; TOPIC_ALREADY_EXISTS when
 *   the name is taken;
 * - `deleteTopic` is durable before it resolves; UNKNOWN_TOPIC_OR_PARTITION
 *   when no topic of that name and id is stored (a newer topic of the same
 *   name is never deleted by a stale caller);
 * - `load` returns what was last stored, sorted by name.
 */
import type { TopicInfo } from './topic-info.ts';

export interface MetadataStore {
  load(): Promise<TopicInfo[]>;
  createTopic(info: TopicInfo): Promise<void>;
  deleteTopic(name: string, topicId: string): Promise<void>;
  close(): Promise<void>;
}
