/**
 * Consumer lag per committed group partition (`highWatermark − committed`)
 * and the bound on how many of them one /metrics scrape exposes.
 *
 * Invariant: `largestLags` returns at most `max` entries, the largest lags,
 * in a deterministic order; every group with offsets is a potential label
 * set of `runnel_consumer_lag`, and throwaway groups must not grow a scrape
 * without bound (issue 11, finding 5: 1,500 groups, 1,503 series).
 */

export interface PartitionLag { group: string; topic: string; partition: number; lag: number }

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Largest lag first; ties by group, topic, partition. */
export function compareLag(a: PartitionLag, b: PartitionLag): number {
  return b.lag - a.lag || byName(a.group, b.group) || byName(a.topic, b.topic) || a.partition - b.partition;
}

/** The `max` largest lags (maxLagSeries), largest first. */
export function largestLags<L extends PartitionLag>(lags: readonly L[], max: number): L[] {
  return [...lags].sort(compareLag).slice(0, Math.max(0, max));
}
