/**
 * Broker-wide fan-out: one PartitionFanout per open partition, attached
 * through the broker's `watchPartitions`, plus the shared catch-up
 * scheduler. Channels are named `<topicId>/<partition>`, so a re-created
 * topic never shares a channel with its deleted predecessor.
 */
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { Partition } from '../partition/partition.ts';
import { CatchUpScheduler } from './catch-up.ts';
import { PartitionFanout } from './partition-fanout.ts';

/** Where partitions come from (the broker's `watchPartitions`). */
export interface PartitionSource {
  watchPartitions(watcher: { partitionOpened(topic: TopicInfo, partition: Partition): void; topicClosed(topic: TopicInfo): void }): () => void;
}

interface Attached { fanout: PartitionFanout; detach: () => void }

export class Fanout {
  readonly catchUp: CatchUpScheduler;
  private readonly byTopic = new Map<string, Attached[]>(); // topic name → partitions
  private readonly unwatch: () => void;

  constructor(partitions: PartitionSource, private readonly limits: Limits, private readonly publish: (channel: string, frame: Uint8Array) => void, private readonly metrics?: RunnelMetrics) {
    this.catchUp = new CatchUpScheduler(limits, metrics);
    this.unwatch = partitions.watchPartitions(this);
  }

  partitionOpened(topic: TopicInfo, source: Partition): void {
    const fanout = new PartitionFanout(source, {
      limits: this.limits, metrics: this.metrics, publish: this.publish,
      enqueueCatchUp: (sub) => this.catchUp.enqueue(sub),
    });
    let list = this.byTopic.get(topic.name);
    if (!list || list[0]?.fanout.topic.topicId !== topic.topicId) this.byTopic.set(topic.name, (list = []));
    list[source.partition] = { fanout, detach: source.onVisible((batch) => fanout.handleAppend(batch)) };
  }

  topicClosed(topic: TopicInfo): void {
    const list = this.byTopic.get(topic.name);
    if (!list || list[0]?.fanout.topic.topicId !== topic.topicId) return;
    this.byTopic.delete(topic.name);
    for (const a of list) this.closeOne(a);
  }

  get(topic: string, partition: number): PartitionFanout | undefined {
    return this.byTopic.get(topic)?.[partition]?.fanout;
  }

  close(): void {
    this.catchUp.stop();
    this.unwatch();
    for (const list of this.byTopic.values()) for (const a of list) this.closeOne(a);
    this.byTopic.clear();
  }

  private closeOne(a: Attached | undefined): void {
    if (!a) return;
    a.detach();
    a.fanout.close();
  }
}
