/**
 * Broker-wide fan-out: one PartitionFanout per open partition log, attached
 * through `Broker.watchPartitions`, plus the shared catch-up scheduler.
 * Channels are named `<topicId>/<partition>`, so a re-created topic never
 * shares a channel with its deleted predecessor.
 */
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { PartitionLog } from '../log/partition-log.ts';
import type { Broker, PartitionWatcher } from './broker.ts';
import { CatchUpScheduler } from './catch-up.ts';
import { PartitionFanout } from './partition-fanout.ts';
import type { TopicInfo } from './topic-registry.ts';

export class Fanout implements PartitionWatcher {
  readonly catchUp: CatchUpScheduler;
  private readonly byTopic = new Map<string, PartitionFanout[]>(); // topic name → partitions
  private readonly detachLogs: (() => void)[] = [];
  private readonly unwatch: () => void;

  constructor(broker: Broker, private readonly limits: Limits, private readonly publish: (channel: string, frame: Uint8Array) => void, private readonly metrics?: RunnelMetrics) {
    this.catchUp = new CatchUpScheduler(limits, metrics);
    this.unwatch = broker.watchPartitions(this);
  }

  partitionOpened(topic: TopicInfo, partition: number, log: PartitionLog): void {
    const fanout = new PartitionFanout(topic, partition, log, {
      limits: this.limits, metrics: this.metrics, publish: this.publish,
      enqueueCatchUp: (sub) => this.catchUp.enqueue(sub),
    });
    let list = this.byTopic.get(topic.name);
    if (!list || list[0]?.topic.topicId !== topic.topicId) this.byTopic.set(topic.name, (list = []));
    list[partition] = fanout;
    const off = log.onAppend((event) => fanout.handleAppend(event));
    if (typeof off === 'function') this.detachLogs.push(off);
  }

  topicClosed(topic: TopicInfo): void {
    const list = this.byTopic.get(topic.name);
    if (!list || list[0]?.topic.topicId !== topic.topicId) return;
    this.byTopic.delete(topic.name);
    for (const f of list) f?.close();
  }

  get(topic: string, partition: number): PartitionFanout | undefined {
    return this.byTopic.get(topic)?.[partition];
  }

  close(): void {
    this.catchUp.stop();
    this.unwatch();
    for (const off of this.detachLogs) off();
    for (const list of this.byTopic.values()) for (const f of list) f?.close();
    this.byTopic.clear();
  }
}
