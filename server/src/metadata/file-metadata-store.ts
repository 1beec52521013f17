/**
 * Single-node `MetadataStore`: `<data>/meta/topics.json`, replaced
 * atomically (write, fdatasync, rename) on every change, changes serialised.
 * A failed write leaves the table as it was before the change.
 */
import { join } from 'node:path';
import { RunnelError } from '@runnel/client/codec';
import { readFileIfExists, writeFileAtomic } from '../log/atomic-file.ts';
import type { MetadataStore } from './metadata-store.ts';
import type { TopicInfo } from './topic-info.ts';
import { TopicTable } from './topic-table.ts';

const FORMAT_VERSION = 1;

export class FileMetadataStore implements MetadataStore {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly path: string, private readonly table: TopicTable) {}

  static async open(dataDir: string): Promise<FileMetadataStore> {
    const path = join(dataDir, 'meta', 'topics.json');
    const text = await readFileIfExists(path);
    const topics = text ? (JSON.parse(text) as { topics: TopicInfo[] }).topics : [];
    return new FileMetadataStore(path, new TopicTable(topics));
  }

  async load(): Promise<TopicInfo[]> {
    return this.table.list();
  }

  createTopic(info: TopicInfo): Promise<void> {
    return this.change(() => this.table.create(info));
  }

  deleteTopic(name: string, topicId: string): Promise<void> {
    return this.change(() => this.table.delete(name, topicId));
  }

  async close(): Promise<void> {
    await this.chain.catch(() => undefined);
  }

  private change(apply: () => () => void): Promise<void> {
    const run = this.chain.then(async () => {
      const undo = apply();
      try {
        await writeFileAtomic(this.path, `${JSON.stringify({ version: FORMAT_VERSION, topics: this.table.list() }, null, 1)}\n`);
      } catch (e) {
        undo();
        throw new RunnelError('KAFKA_STORAGE_ERROR', `could not persist topic metadata: ${(e as Error).message}`, { cause: e });
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
