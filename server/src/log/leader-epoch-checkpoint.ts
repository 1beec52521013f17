/**
 * The leader epoch file of a partition directory (`leader-epoch-checkpoint`,
 * Kafka's LeaderEpochCheckpointFile format): a version line `0`, a count
 * line, then one `<epoch> <startOffset>` line per entry, oldest first.
 * Replaced whole through `LogDirectory.writeAtomic` (old or new content,
 * never a mix). Encode/decode are pure; `readLeaderEpochs`/`writeLeaderEpochs`
 * are the thin I/O layer over the `LogDirectory` seam.
 *
 * Invariant (kept by partition-log.ts): every write goes through the same
 * chain as the partition checkpoint, so an entry is on disk before a
 * checkpoint moves the recovery point past its start offset; recovery
 * re-derives entries past the recovery point from the batches it scans.
 */
import { LeaderEpochCache, MAX_LEADER_EPOCH, type EpochEntry } from './leader-epoch-cache.ts';
import type { LogDirectory } from './segment-file.ts';

export const LEADER_EPOCH_FILE = 'leader-epoch-checkpoint';
const FORMAT_VERSION = 0;

export function encodeLeaderEpochs(entries: readonly EpochEntry[]): Uint8Array {
  const lines = [String(FORMAT_VERSION), String(entries.length), ...entries.map((e) => `${e.epoch} ${e.startOffset}`)];
  return new TextEncoder().encode(`${lines.join('\n')}\n`);
}

/** The cache the file describes; null for a torn, foreign or non-monotonic file (the caller rebuilds from the log). */
export function decodeLeaderEpochs(bytes: Uint8Array): LeaderEpochCache | null {
  const lines = new TextDecoder().decode(bytes).split('\n');
  if (lines[lines.length - 1] !== '') return null;
  lines.pop();
  if (lines[0] !== String(FORMAT_VERSION) || !/^\d+$/.test(lines[1] ?? '') || Number(lines[1]) !== lines.length - 2) return null;
  const entries: EpochEntry[] = [];
  for (const line of lines.slice(2)) {
    const m = /^(\d+) (\d+)$/.exec(line);
    if (!m) return null;
    const e = { epoch: Number(m[1]), startOffset: Number(m[2]) };
    const prev = entries[entries.length - 1];
    if (!Number.isSafeInteger(e.startOffset) || e.epoch > MAX_LEADER_EPOCH || (prev && (e.epoch <= prev.epoch || e.startOffset <= prev.startOffset))) return null;
    entries.push(e);
  }
  return new LeaderEpochCache(entries);
}

/** The persisted cache, or null when the file is missing or unreadable. */
export async function readLeaderEpochs(dir: LogDirectory): Promise<LeaderEpochCache | null> {
  const bytes = await dir.readWhole(LEADER_EPOCH_FILE);
  return bytes ? decodeLeaderEpochs(bytes) : null;
}

/** Replaces the file atomically and durably with `cache`'s entries as of this call. */
export function writeLeaderEpochs(dir: LogDirectory, cache: LeaderEpochCache): Promise<void> {
  return dir.writeAtomic(LEADER_EPOCH_FILE, encodeLeaderEpochs(cache.entries));
}
