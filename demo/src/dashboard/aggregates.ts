/**
 * The dashboard's aggregates over the activity stream, as a sans-IO core:
 * records go in with their partition and offset, numbers come out; time
 * comes in as `nowMs`. The driver (dashboard/consumer.ts) feeds it and
 * persists `snapshot()`.
 *
 * Invariant (exactly-once counting): `nextOffsets[p]` is the offset after the
 * last record of partition p that was counted. `apply()` ignores any record
 * below it, so a redelivered record (reload, reconnect, replay overlap) is
 * never counted twice, and a snapshot restores both the numbers and the
 * position they describe, which is what makes a reload resume without double
 * counting: the snapshot is one object written atomically.
 */
import { ACTIVITY_TYPES, type ActivityEvent, type ActivityType } from '../activity.ts';

/** Every structure here is bounded; these say by how much. */
export const aggregateLimits = {
  /** Distinct page paths counted; later paths are counted under OTHER_PAGES. A bot must not grow the snapshot without bound. */
  maxTrackedPages: 500,
  /** Users remembered for "active in the last minute"; the least recently seen are forgotten beyond it. */
  maxTrackedUsers: 20_000,
  /** Per-second buckets kept for the rate chart (1 h). Older seconds are dropped from the chart, never from the totals. */
  maxRateBuckets: 3_600,
  /** "Active users" window. */
  activeUserWindowMs: 60_000,
} as const;

export const OTHER_PAGES = '(other pages)';

/** Plain, JSON-able form of the aggregates; what the dashboard stores in IndexedDB. */
export interface ActivitySnapshot {
  version: 1;
  /** Topic id the offsets belong to ('' = unknown); a recreated topic invalidates the snapshot. */
  topicId: string;
  /** Counting covers records with timestamp ≥ this (replay start); 0 = the whole log. */
  fromTimestampMs: number;
  totalEvents: number;
  /** Records that failed the schema: counted here, never in the numbers above. */
  invalidRecords: number;
  byType: Record<ActivityType, number>;
  pageViews: [path: string, count: number][];
  userLastSeenMs: [userId: string, tsMs: number][];
  /** [epoch second, events in it], ascending. */
  perSecond: [second: number, count: number][];
  /** [partition, next offset to count]. Invariant: every record below it was counted exactly once. */
  nextOffsets: [partition: number, offset: number][];
}

function zeroByType(): Record<ActivityType, number> {
  const byType = {} as Record<ActivityType, number>;
  for (const type of ACTIVITY_TYPES) byType[type] = 0;
  return byType;
}

export class ActivityAggregates {
  topicId = '';
  fromTimestampMs = 0;
  totalEvents = 0;
  invalidRecords = 0;
  readonly byType = zeroByType();
  private readonly pageViews = new Map<string, number>();
  private readonly userLastSeenMs = new Map<string, number>();
  private readonly perSecond = new Map<number, number>();
  private readonly nextOffsets = new Map<number, number>();

  constructor(fromTimestampMs = 0, topicId = '') {
    this.fromTimestampMs = fromTimestampMs;
    this.topicId = topicId;
  }

  static fromSnapshot(snapshot: ActivitySnapshot): ActivityAggregates {
    const aggregates = new ActivityAggregates(snapshot.fromTimestampMs, snapshot.topicId);
    aggregates.totalEvents = snapshot.totalEvents;
    aggregates.invalidRecords = snapshot.invalidRecords;
    Object.assign(aggregates.byType, snapshot.byType);
    for (const [path, count] of snapshot.pageViews) aggregates.pageViews.set(path, count);
    for (const [userId, ts] of snapshot.userLastSeenMs) aggregates.userLastSeenMs.set(userId, ts);
    for (const [second, count] of snapshot.perSecond) aggregates.perSecond.set(second, count);
    for (const [partition, offset] of snapshot.nextOffsets) aggregates.nextOffsets.set(partition, offset);
    return aggregates;
  }

  /** Next offset to count on `partition` (undefined: nothing counted there yet). */
  nextOffset(partition: number): number | undefined {
    return this.nextOffsets.get(partition);
  }

  /** True when this record was already counted (it is below the partition's next offset). */
  isCounted(partition: number, offset: number): boolean {
    const next = this.nextOffsets.get(partition);
    return next !== undefined && offset < next;
  }

  /**
   * Count one record. `event` is undefined when the value failed the schema.
   * Returns false (and changes nothing) for a record that was already counted.
   */
  apply(partition: number, offset: number, event: ActivityEvent | undefined): boolean {
    if (this.isCounted(partition, offset)) return false;
    this.nextOffsets.set(partition, offset + 1);
    if (event === undefined) {
      this.invalidRecords++;
      return true;
    }
    this.totalEvents++;
    this.byType[event.type]++;
    if (event.type === 'page_view') this.countPageView(event.path);
    this.touchUser(event.userId, event.ts);
    const second = Math.floor(event.ts / 1000);
    this.perSecond.set(second, (this.perSecond.get(second) ?? 0) + 1);
    if (this.perSecond.size > aggregateLimits.maxRateBuckets) this.dropOldestSecond();
    return true;
  }

  private countPageView(path: string): void {
    const known = this.pageViews.get(path);
    if (known !== undefined) this.pageViews.set(path, known + 1);
    else if (this.pageViews.size < aggregateLimits.maxTrackedPages) this.pageViews.set(path, 1);
    else this.pageViews.set(OTHER_PAGES, (this.pageViews.get(OTHER_PAGES) ?? 0) + 1);
  }

  private touchUser(userId: string, tsMs: number): void {
    const seen = this.userLastSeenMs.get(userId);
    if (seen !== undefined && seen >= tsMs) return;
    // Re-insert so Map order is least-recently-seen first (eviction order).
    this.userLastSeenMs.delete(userId);
    this.userLastSeenMs.set(userId, tsMs);
    if (this.userLastSeenMs.size > aggregateLimits.maxTrackedUsers) {
      const oldest = this.userLastSeenMs.keys().next().value as string;
      this.userLastSeenMs.delete(oldest);
    }
  }

  private dropOldestSecond(): void {
    let oldest = Infinity;
    for (const second of this.perSecond.keys()) if (second < oldest) oldest = second;
    this.perSecond.delete(oldest);
  }

  /** Users with an event in the last minute before `nowMs`. */
  activeUsers(nowMs: number): number {
    const since = nowMs - aggregateLimits.activeUserWindowMs;
    let active = 0;
    for (const ts of this.userLastSeenMs.values()) if (ts >= since) active++;
    return active;
  }

  /** Forget users idle for longer than the active window (keeps snapshots small). */
  pruneIdleUsers(nowMs: number): void {
    const since = nowMs - aggregateLimits.activeUserWindowMs;
    for (const [userId, ts] of this.userLastSeenMs) if (ts < since) this.userLastSeenMs.delete(userId);
  }

  /** The `limit` most viewed pages, most viewed first. */
  topPages(limit: number): { path: string; views: number }[] {
    return [...this.pageViews]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, limit)
      .map(([path, views]) => ({ path, views }));
  }

  /** Events per second for every second in [fromSecond, toSecond], zero-filled: uPlot's [xs, ys]. */
  rateSeries(fromSecond: number, toSecond: number): [number[], number[]] {
    const xs: number[] = [];
    const ys: number[] = [];
    for (let second = fromSecond; second <= toSecond; second++) {
      xs.push(second);
      ys.push(this.perSecond.get(second) ?? 0);
    }
    return [xs, ys];
  }

  /** Earliest second with a bucket, or undefined when nothing was counted. */
  firstSecond(): number | undefined {
    let first: number | undefined;
    for (const second of this.perSecond.keys()) if (first === undefined || second < first) first = second;
    return first;
  }

  /** Partitions with their next offset, ascending by partition. */
  positions(): { partition: number; nextOffset: number }[] {
    return [...this.nextOffsets]
      .sort((a, b) => a[0] - b[0])
      .map(([partition, nextOffset]) => ({ partition, nextOffset }));
  }

  snapshot(): ActivitySnapshot {
    return {
      version: 1,
      topicId: this.topicId,
      fromTimestampMs: this.fromTimestampMs,
      totalEvents: this.totalEvents,
      invalidRecords: this.invalidRecords,
      byType: { ...this.byType },
      pageViews: [...this.pageViews],
      userLastSeenMs: [...this.userLastSeenMs],
      perSecond: [...this.perSecond].sort((a, b) => a[0] - b[0]),
      nextOffsets: [...this.nextOffsets],
    };
  }
}
