/**
 * Log divergence by leader epoch (KIP-101, KIP-279, KIP-320), both sides,
 * pure over a log's epoch history:
 * - the leader, at each fetch: does the follower's log, ending at
 *   `fetchOffset` with a batch of `lastFetchedEpoch`, agree with its own
 *   history? If not, `divergingEpoch {epoch, endOffset}`: the largest epoch
 *   of the leader's history <= lastFetchedEpoch and where it ends there.
 * - the follower, given that answer: where to truncate (the smaller of the
 *   leader's end of that epoch and its own, KIP-279), so it never keeps a
 *   batch the leader does not have and never drops one it does.
 * Invariant (progress): when the follower's log ends with a batch of an
 * epoch, the offset returned by `truncationOffset` is below its log end, so
 * the exchange ends in a finite number of rounds.
 */
import { NO_EPOCH, type DivergingEpoch } from './protocol.ts';

/** What both sides read of a log (PartitionLog has it). */
export interface EpochHistory {
  /** Latest epoch in the log; NO_EPOCH when no batch carries one. */
  readonly leaderEpoch: number;
  readonly logEndOffset: number;
  /** The log's OffsetsForLeaderEpoch: `{ epoch: -1, endOffset: -1 }` when it cannot answer. */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number };
  /** Epoch → first offset, oldest first. */
  leaderEpochEntries(): { epoch: number; startOffset: number }[];
}

/**
 * The leader's check of one fetch; null when the follower's log agrees.
 * @example const d = findDivergence(log, req.lastFetchedEpoch, req.fetchOffset); if (d) return { ...answer, divergingEpoch: d, records: EMPTY };
 */
export function findDivergence(leader: EpochHistory, lastFetchedEpoch: number, fetchOffset: number): DivergingEpoch | null {
  const endOfLog: DivergingEpoch = { epoch: leader.leaderEpoch, endOffset: leader.logEndOffset };
  if (lastFetchedEpoch === NO_EPOCH) return fetchOffset > leader.logEndOffset ? endOfLog : null;
  // The follower has an epoch the leader never wrote (it led that epoch; nothing of it reached this leader).
  if (lastFetchedEpoch > leader.leaderEpoch) return endOfLog;
  let end = leader.endOffsetForEpoch(lastFetchedEpoch);
  if (end.epoch === NO_EPOCH) {
    // Below the leader's first known epoch (retention removed it): Kafka >= 2.1 answers the first entry's start.
    const first = leader.leaderEpochEntries()[0];
    end = { epoch: lastFetchedEpoch, endOffset: first ? first.startOffset : leader.logEndOffset };
  }
  if (end.epoch < lastFetchedEpoch || end.endOffset < fetchOffset) return { epoch: end.epoch, endOffset: end.endOffset };
  return fetchOffset > leader.logEndOffset ? endOfLog : null;
}

/**
 * The follower's truncation point for the leader's `divergingEpoch` (KIP-279):
 * min(the leader's end of that epoch, the follower's own end of it). When the
 * follower does not know the epoch (it is below its first entry), it keeps
 * nothing from its first entry on. `highWatermark`: the fallback when the
 * leader could not name an end (endOffset -1, KIP-101's rule).
 */
export function truncationOffset(follower: EpochHistory, diverging: DivergingEpoch, highWatermark: number): number {
  let target = diverging.endOffset >= 0 ? diverging.endOffset : highWatermark;
  if (diverging.epoch !== NO_EPOCH) {
    const own = follower.endOffsetForEpoch(diverging.epoch);
    if (own.epoch !== NO_EPOCH) target = Math.min(target, own.endOffset);
    else {
      const first = follower.leaderEpochEntries()[0];
      if (first && diverging.epoch < first.epoch) target = Math.min(target, first.startOffset);
    }
  }
  return Math.min(target, follower.logEndOffset);
}
