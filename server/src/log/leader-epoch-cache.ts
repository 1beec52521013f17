/**
 * Leader epoch → start offset of one partition (Kafka's LeaderEpochFileCache,
 * KIP-101 and KIP-279): for each leader epoch that wrote to the log, the
 * first offset written in it. A follower that became leader-less asks the new
 * leader for the end offset of its latest epoch (OffsetsForLeaderEpoch) and
 * truncates to it instead of to its high watermark, so it neither keeps
 * divergent batches nor loses acknowledged ones. Pure: persistence is
 * leader-epoch-checkpoint.ts, the driver is partition-log.ts.
 *
 * Invariant: entries strictly increase in both epoch and start offset; every
 * epoch is >= 0. The rule that adds entries is the same when appending and
 * when rebuilding from stored batches (`maybeAssign`), so a rebuilt cache
 * equals the one kept live.
 */
import { assert } from '@runnel/client/codec';

/** Kafka's UNDEFINED_EPOCH: "no epoch" (empty cache, unknown epoch, SDK batches not stamped by a leader). */
export const UNDEFINED_EPOCH = -1;
/** Kafka's UNDEFINED_EPOCH_OFFSET: the end offset of an epoch this log cannot answer for. */
export const UNDEFINED_EPOCH_OFFSET = -1;
/** Largest epoch: partitionLeaderEpoch is an int32 in the batch header. */
export const MAX_LEADER_EPOCH = 0x7fff_ffff;

export interface EpochEntry {
  epoch: number;
  /** First offset written in `epoch`. */
  startOffset: number;
}

/** OffsetsForLeaderEpoch answer: `epoch` is the largest known epoch <= the one asked, `endOffset` where it ends. */
export interface EpochEndOffset {
  epoch: number;
  endOffset: number;
}

const UNDEFINED: EpochEndOffset = Object.freeze({ epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET });

export class LeaderEpochCache {
  /** Oldest first. */
  #entries: EpochEntry[];

  /** `entries` must be strictly increasing in epoch and start offset (as `decodeLeaderEpochs` returns them). */
  constructor(entries: readonly EpochEntry[] = []) {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const prev = entries[i - 1];
      assert(isEpoch(e.epoch) && isOffset(e.startOffset), `epoch entry ${e.epoch}@${e.startOffset}: epoch must be an int32 >= 0, start offset a safe integer >= 0`);
      assert(!prev || (e.epoch > prev.epoch && e.startOffset > prev.startOffset), `epoch entries must increase: ${e.epoch}@${e.startOffset} after ${prev?.epoch}@${prev?.startOffset}`);
    }
    this.#entries = entries.map((e) => ({ epoch: e.epoch, startOffset: e.startOffset }));
  }

  /** Oldest first; copies (mutating them cannot break the invariant). */
  get entries(): EpochEntry[] {
    return this.#entries.map((e) => ({ ...e }));
  }

  /** Latest epoch that wrote to the log; UNDEFINED_EPOCH (-1) when none did. Hot path (read per append). */
  get latestEpoch(): number {
    const n = this.#entries.length;
    return n === 0 ? UNDEFINED_EPOCH : this.#entries[n - 1].epoch;
  }

  /**
   * Records that `epoch` started at `startOffset` when it is a real epoch (>= 0)
   * above the latest one; otherwise does nothing (a batch of the current or an
   * older epoch, or one no leader stamped). Entries starting at or after
   * `startOffset` are dropped first (Kafka's maybeTruncateNonMonotonicEntries:
   * the stored batches are the truth; live appends never hit it, the cache is
   * truncated with the log). Returns whether the cache changed (then persist it).
   */
  maybeAssign(epoch: number, startOffset: number): boolean {
    if (!(epoch > this.latestEpoch)) return false;
    assert(isEpoch(epoch) && isOffset(startOffset), `epoch ${epoch}@${startOffset}: epoch must be an int32, start offset a safe integer >= 0`);
    this.truncateFromEnd(startOffset);
    this.#entries.push({ epoch, startOffset });
    return true;
  }

  /**
   * End offset of `epoch` (Kafka's OffsetsForLeaderEpoch / LeaderEpochFileCache.endOffsetFor):
   * - the latest epoch: `{ epoch, endOffset: logEndOffset }`;
   * - an older epoch: the largest known epoch <= it, ending at the start offset of the next higher one;
   * - UNDEFINED_EPOCH, an empty cache, an epoch below the first entry or above the latest:
   *   `{ epoch: -1, endOffset: -1 }`. NB: below the first entry Kafka >= 2.1 answers the first
   *   entry's start offset; like KIP-101 we answer "undefined", so the asking follower falls
   *   back to its high watermark rather than trusting an epoch whose batches this log no longer holds.
   */
  endOffsetFor(epoch: number, logEndOffset: number): EpochEndOffset {
    const entries = this.#entries;
    const n = entries.length;
    if (epoch === UNDEFINED_EPOCH || n === 0 || epoch < entries[0].epoch || epoch > entries[n - 1].epoch) return UNDEFINED;
    if (epoch === entries[n - 1].epoch) return { epoch, endOffset: logEndOffset };
    // Binary search: the last entry with epoch <= `epoch` (not the last entry: `epoch` is below the latest).
    let lo = 0;
    let hi = n - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (entries[mid].epoch <= epoch) lo = mid;
      else hi = mid - 1;
    }
    return { epoch: entries[lo].epoch, endOffset: entries[lo + 1].startOffset };
  }

  /** Log truncation to `endOffset` (the new log end): drops entries starting at or after it. Returns whether the cache changed. */
  truncateFromEnd(endOffset: number): boolean {
    const n = this.#entries.length;
    let keep = n;
    while (keep > 0 && this.#entries[keep - 1].startOffset >= endOffset) keep--;
    if (keep === n) return false;
    this.#entries.length = keep;
    return true;
  }

  /**
   * Retention moved the log start to `startOffset`: entries wholly below it
   * go, and the epoch that covers it now starts there (Kafka keeps it: a
   * follower may still ask for it). Returns whether the cache changed.
   */
  truncateFromStart(startOffset: number): boolean {
    let covering = -1;
    while (covering + 1 < this.#entries.length && this.#entries[covering + 1].startOffset <= startOffset) covering++;
    if (covering < 0 || (covering === 0 && this.#entries[0].startOffset === startOffset)) return false;
    this.#entries = this.#entries.slice(covering);
    this.#entries[0] = { epoch: this.#entries[0].epoch, startOffset };
    return true;
  }
}

function isEpoch(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MAX_LEADER_EPOCH;
}

function isOffset(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}
