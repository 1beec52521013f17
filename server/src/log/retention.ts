/**
 * Segment roll and retention decisions (pure). Kafka semantics:
 * - roll when the next batch would push the active segment past
 *   maxSegmentBytes, when the segment is older than segmentMs, or when the
 *   next offset no longer fits the uint32 relative offset of the index;
 *   an empty segment never rolls.
 * - retention deletes whole segments from the oldest, never the active one:
 *   by time when the segment's last write is older than retentionMs, by size
 *   while the log would still hold at least retentionBytes without it.
 *   -1 disables either rule.
 * NB: time uses the segment's last append wall-clock time (file mtime after a
 * restart), not client timestamps: a browser with a wrong clock must not pin
 * or expire data.
 */
import { MAX_RELATIVE_VALUE } from './offset-index.ts';

export interface ActiveSegmentInfo {
  baseOffset: number;
  sizeBytes: number;
  /** Wall-clock time the segment got its first batch in this process (or its mtime after restart). */
  createdMs: number;
}

export function shouldRoll(active: ActiveSegmentInfo, batchBytes: number, batchLastOffset: number, limits: { maxSegmentBytes: number; segmentMs: number }, nowMs: number): boolean {
  if (active.sizeBytes === 0) return false;
  if (active.sizeBytes + batchBytes > limits.maxSegmentBytes) return true;
  if (nowMs - active.createdMs >= limits.segmentMs) return true;
  return batchLastOffset - active.baseOffset > MAX_RELATIVE_VALUE;
}

export interface RetainedSegmentInfo {
  sizeBytes: number;
  lastModifiedMs: number;
}

/** How many of the oldest segments to delete (`segments` oldest first; the last one is active). */
export function segmentsToDelete(segments: readonly RetainedSegmentInfo[], retention: { retentionBytes: number; retentionMs: number }, nowMs: number): number {
  const deletable = segments.length - 1;
  let byTime = 0;
  if (retention.retentionMs >= 0) {
    while (byTime < deletable && nowMs - segments[byTime].lastModifiedMs > retention.retentionMs) byTime++;
  }
  let bySize = 0;
  if (retention.retentionBytes >= 0) {
    let excess = -retention.retentionBytes;
    for (const s of segments) excess += s.sizeBytes;
    while (bySize < deletable && excess - segments[bySize].sizeBytes >= 0) {
      excess -= segments[bySize].sizeBytes;
      bySize++;
    }
  }
  return Math.max(byTime, bySize);
}
