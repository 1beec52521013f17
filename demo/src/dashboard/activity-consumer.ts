/**
 * The dashboard's consumer: feeds every record of the activity topic into
 * ActivityAggregates exactly once, across reloads and replays.
 *
 * How (docs/demo.md, "Exactly-once counting"): `materialize` from
 * `@runnel/client/materialize` folds the records into the aggregates and
 * stores them with the per-partition offsets they cover as one snapshot in
 * the client's IndexedDB (`storage.states`), at most every
 * `persistIntervalMs` and when the page is hidden; a reload resumes from
 * that snapshot and folds again only what it does not contain yet. Replay
 * folds fresh aggregates from a timestamp (`rebuild({ timestampMs })`) and
 * stores them, so a reload after a replay continues the replayed view.
 */
import type { RunnelClient } from '@runnel/client';
import { materialize, type Materialized, type StateStore } from '@runnel/client/materialize';
import type { NotRecoveredEvent } from '@runnel/client';
import { activityTopic, type ActivityEvent } from '../activity.ts';
import { ActivityAggregates, type ActivitySnapshot } from './aggregates.ts';

export const consumerLimits = {
  /** Longest time counted records may go unsaved: a reload re-reads at most this much of the stream. */
  persistIntervalMs: 1_000,
} as const;

/** Snapshot name of the dashboard's fold. */
const VIEW_NAME = 'runnel-demo-dashboard';

export interface ActivityConsumerEvents {
  /** Aggregates changed (records counted, or replaced by a replay). */
  onChange(): void;
  /** Records that can no longer be read (retention) or a recreated topic: the view is folded again from earliest. */
  onNotRecovered(event: NotRecoveredEvent): void;
}

export class ActivityConsumer {
  private view: Materialized<ActivityAggregates, ActivityEvent> | null = null;
  private partitionCount = 0;
  private fromTimestampMs = 0;
  private readonly pageListeners = new AbortController();

  constructor(
    private readonly client: RunnelClient,
    private readonly store: StateStore,
    private readonly events: ActivityConsumerEvents,
  ) {}

  get aggregates(): ActivityAggregates {
    return this.view?.state ?? new ActivityAggregates(this.fromTimestampMs);
  }

  /** Restores the stored aggregates and folds on. */
  async start(): Promise<void> {
    await this.open();
    const persistNow = (): void => void this.persist();
    const { signal } = this.pageListeners;
    addEventListener('pagehide', persistNow, { signal });
    document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && persistNow(), { signal });
  }

  private async open(): Promise<void> {
    const metadata = await this.client.metadata([activityTopic.name]);
    this.partitionCount = metadata.topics.find((t) => t.name === activityTopic.name && t.errorCode === 0)?.partitions.length ?? 0;
    const view = materialize<ActivityAggregates, ActivityEvent>(this.client, activityTopic, (aggregates, record) => {
      aggregates.apply(record.partition, record.offset, record.value);
      return aggregates;
    }, {
      name: VIEW_NAME, store: this.store, snapshotEvery: { ms: consumerLimits.persistIntervalMs },
      initial: () => new ActivityAggregates(this.fromTimestampMs),
      codec: {
        encode: (aggregates) => { aggregates.pruneIdleUsers(Date.now()); return aggregates.snapshot(); },
        decode: (stored) => ActivityAggregates.fromSnapshot(stored as ActivitySnapshot),
      },
    });
    this.view = view;
    view.on('change', () => this.events.onChange());
    view.on('rebuild', (e) => { if (e.notRecovered) this.events.onNotRecovered(e.notRecovered); this.events.onChange(); });
    view.on('error', (error) => console.warn('dashboard:', error.message));
    await view.ready;
    this.fromTimestampMs = view.state.fromTimestampMs;
    this.events.onChange();
  }

  /** Re-reads the stream from `fromTimestampMs` (0 = the beginning) into fresh aggregates. */
  async replay(fromTimestampMs: number): Promise<void> {
    this.fromTimestampMs = fromTimestampMs;
    await this.view?.rebuild(fromTimestampMs > 0 ? { timestampMs: fromTimestampMs } : 'earliest');
    this.events.onChange();
  }

  /** Folds partitions the topic gained since start: the view is reopened from its snapshot, a new partition from its start. */
  maybeSubscribeNewPartitions(partitionCount: number): void {
    if (partitionCount <= this.partitionCount || !this.view) return;
    this.partitionCount = partitionCount;
    void this.view.close().then(() => this.open());
  }

  /** Stores the aggregates now. */
  persist(): Promise<void> {
    return this.view?.flush() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    this.pageListeners.abort();
    await this.view?.close();
  }
}
