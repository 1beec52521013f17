/**
 * The dashboard's consumer: feeds every record of the activity topic into
 * ActivityAggregates exactly once, across reloads and replays.
 *
 * How (docs/demo.md, "Exactly-once counting"): the aggregates carry the
 * next offset of every partition they cover and are stored as one IndexedDB
 * object (SnapshotStore) at most every `persistIntervalMs` and when the page
 * is hidden. On load each partition is subscribed from exactly the stored
 * offset (`from: { offset }`, one SDK subscription per partition), so what
 * is re-read is precisely what the stored numbers do not contain yet; the
 * aggregates also ignore any offset they already counted. Replay starts new
 * aggregates from a timestamp (`from: { timestamp }`) and persists them, so
 * a reload after a replay continues the replayed view.
 */
import type { NotRecoveredEvent, RunnelClient, Subscription } from '@runnel/client';
import { activityTopic, ACTIVITY_TOPIC_NAME, type ActivityEvent } from '../activity.ts';
import { ActivityAggregates } from './aggregates.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export const consumerLimits = {
  /** Longest time counted records may go unsaved: a reload re-reads at most this much of the stream. */
  persistIntervalMs: 1_000,
} as const;

/** SDK consumer id of the dashboard's subscriptions (its stored offsets are not used for resuming; see header). */
const CONSUMER_ID = 'runnel-demo-dashboard';

export interface ActivityConsumerEvents {
  /** Aggregates changed (records counted, or replaced by a replay). */
  onChange(): void;
  /** Records that can no longer be read (retention) or a recreated topic. */
  onNotRecovered(event: NotRecoveredEvent): void;
}

export class ActivityConsumer {
  aggregates = new ActivityAggregates();
  private subscriptions: Subscription<ActivityEvent>[] = [];
  private controller = new AbortController();
  private isDirty = false;
  private persistTimer: ReturnType<typeof setInterval> | undefined;
  private saving: Promise<void> = Promise.resolve();
  private readonly pageListeners = new AbortController();

  constructor(
    private readonly client: RunnelClient,
    private readonly store: SnapshotStore,
    private readonly events: ActivityConsumerEvents,
  ) {}

  /** Restores the stored aggregates (when they belong to the current topic id) and subscribes. */
  async start(): Promise<void> {
    const [snapshot, topic] = await Promise.all([this.store.load(), this.describeTopic()]);
    const isSameTopic = snapshot !== undefined && (snapshot.topicId === '' || snapshot.topicId === topic.topicId);
    this.aggregates = isSameTopic ? ActivityAggregates.fromSnapshot(snapshot) : new ActivityAggregates(0, topic.topicId);
    this.aggregates.topicId = topic.topicId;
    this.events.onChange();
    this.subscribeAll(topic.partitionCount);
    this.persistTimer = setInterval(() => void this.persist(), consumerLimits.persistIntervalMs);
    const persistNow = (): void => void this.persist();
    const { signal } = this.pageListeners;
    addEventListener('pagehide', persistNow, { signal });
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && persistNow(), { signal });
  }

  /** Re-reads the stream from `fromTimestampMs` (0 = the beginning) into fresh aggregates. */
  async replay(fromTimestampMs: number): Promise<void> {
    await this.unsubscribeAll();
    const topic = await this.describeTopic();
    this.aggregates = new ActivityAggregates(fromTimestampMs, topic.topicId);
    this.isDirty = true;
    await this.persist();
    this.events.onChange();
    this.subscribeAll(topic.partitionCount);
  }

  /** Subscribes partitions the topic gained since start (called with fresh metadata). */
  maybeSubscribeNewPartitions(partitionCount: number): void {
    if (partitionCount > this.subscriptions.length && this.subscriptions.length > 0) this.subscribeAll(partitionCount);
  }

  /** Saves the aggregates if anything changed since the last save (one write in flight). */
  persist(): Promise<void> {
    if (!this.isDirty) return this.saving;
    this.isDirty = false;
    this.aggregates.pruneIdleUsers(Date.now());
    const snapshot = this.aggregates.snapshot();
    this.saving = this.saving.then(() => this.store.save(snapshot)).catch((error: unknown) => {
      this.isDirty = true; // try again next time
      console.error('dashboard: saving aggregates failed', error);
    });
    return this.saving;
  }

  async close(): Promise<void> {
    clearInterval(this.persistTimer);
    this.pageListeners.abort();
    await this.unsubscribeAll();
    await this.persist();
  }

  private async describeTopic(): Promise<{ topicId: string; partitionCount: number }> {
    const metadata = await this.client.metadata([ACTIVITY_TOPIC_NAME]);
    const topic = metadata.topics.find((t) => t.name === ACTIVITY_TOPIC_NAME);
    if (!topic || topic.errorCode !== 0) throw new Error(`topic "${ACTIVITY_TOPIC_NAME}" is not available (error ${topic?.errorCode})`);
    return { topicId: topic.topicId, partitionCount: topic.partitions.length };
  }

  /** One subscription per partition, each starting exactly where the aggregates stopped. */
  private subscribeAll(partitionCount: number): void {
    const aggregates = this.aggregates; // records of an older generation (before a replay) never reach newer aggregates
    const { signal } = this.controller;
    for (let partition = this.subscriptions.length; partition < partitionCount; partition++) {
      const next = aggregates.nextOffset(partition);
      const from = next !== undefined ? { offset: next }
        : aggregates.fromTimestampMs > 0 ? { timestamp: aggregates.fromTimestampMs } : 'earliest' as const;
      const subscription = this.client.subscribe(activityTopic, (record) => {
        if (aggregates.apply(record.partition, record.offset, record.value)) this.markChanged();
      }, {
        partitions: [partition], from, reset: 'earliest', consumerId: CONSUMER_ID, signal,
        onNotRecovered: (event) => this.events.onNotRecovered(event),
      });
      subscription.on('error', (error) => console.warn(`dashboard: partition ${partition}:`, error.message));
      this.subscriptions.push(subscription);
    }
  }

  private async unsubscribeAll(): Promise<void> {
    this.controller.abort();
    await Promise.all(this.subscriptions.map((s) => s.unsubscribe()));
    this.subscriptions = [];
    this.controller = new AbortController();
  }

  private markChanged(): void {
    this.isDirty = true;
    this.events.onChange();
  }
}
