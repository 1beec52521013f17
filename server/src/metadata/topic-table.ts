/**
 * The compare-and-swap rules of `MetadataStore` over an in-memory table,
 * shared by the file and memory stores (sans-IO: the stores persist).
 */
import { RunnelError } from '@runnel/client/codec';
import type { TopicInfo } from './topic-info.ts';

export class TopicTable {
  private readonly topics = new Map<string, TopicInfo>();

  constructor(initial: readonly TopicInfo[] = []) {
    for (const t of initial) this.topics.set(t.name, t);
  }

  list(): TopicInfo[] {
    return [...this.topics.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Adds `info`; returns the undo. TOPIC_ALREADY_EXISTS when the name is taken. */
  create(info: TopicInfo): () => void {
    if (this.topics.has(info.name)) throw new RunnelError('TOPIC_ALREADY_EXISTS', `topic ${info.name} already exists`);
    this.topics.set(info.name, info);
    return () => this.topics.delete(info.name);
  }

  /** Removes the topic of this name and id; returns the undo. UNKNOWN_TOPIC_OR_PARTITION otherwise. */
  delete(name: string, topicId: string): () => void {
    const info = this.topics.get(name);
    if (!info || info.topicId !== topicId) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} (id ${topicId}) does not exist`);
    this.topics.delete(name);
    return () => this.topics.set(name, info);
  }
}
