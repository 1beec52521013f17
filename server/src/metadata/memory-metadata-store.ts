/** In-memory `MetadataStore` (unit tests of the registry; the contract suite runs on it and on the file store). */
import type { MetadataStore } from './metadata-store.ts';
import type { TopicInfo } from './topic-info.ts';
import { TopicTable } from './topic-table.ts';

export class MemoryMetadataStore implements MetadataStore {
  private readonly table = new TopicTable();

  async load(): Promise<TopicInfo[]> {
    return this.table.list();
  }

  async createTopic(info: TopicInfo): Promise<void> {
    this.table.create(info);
  }

  async deleteTopic(name: string, topicId: string): Promise<void> {
    this.table.delete(name, topicId);
  }

  async close(): Promise<void> {}
}
