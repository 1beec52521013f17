/**
 * The partition checkpoint file (`partition.checkpoint`): log start offset,
 * recovery point, the clean-shutdown flag and the high watermark, in one small JSON document
 * replaced atomically (tmp + fsync + rename + dir fsync). Pure encode/decode.
 *
 * Invariant: written with isCleanShutdown=false before the first append of
 * a process, and with true only by `close()` after everything is synced.
 */
import type { RecoveryCheckpoint } from './recovery.ts';

export const CHECKPOINT_FILE = 'partition.checkpoint';

export interface PartitionCheckpoint extends RecoveryCheckpoint {
  version: 1;
  /** Offsets below it were deleted by retention (or never existed). */
  logStartOffset: number;
  /**
   * The high watermark when the file was written (optional: files written
   * before it have none). Only a replicated log reads it back at open; it may
   * lag the real one (written at open, roll, retention, truncation, close and
   * `checkpointHighWatermark`), which is safe: a lower one only hides records.
   */
  highWatermark?: number;
}

export function encodeCheckpoint(c: PartitionCheckpoint): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(c)}\n`);
}

/** Null for a missing, torn or foreign file: recovery then validates every segment. */
export function decodeCheckpoint(bytes: Uint8Array | null): PartitionCheckpoint | null {
  if (!bytes) return null;
  try {
    const c = JSON.parse(new TextDecoder().decode(bytes)) as Partial<PartitionCheckpoint>;
    const isOffset = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
    if (c.version !== 1 || !isOffset(c.logStartOffset) || !isOffset(c.recoveryPoint) || typeof c.isCleanShutdown !== 'boolean') return null;
    const checkpoint: PartitionCheckpoint = { version: 1, logStartOffset: c.logStartOffset, recoveryPoint: c.recoveryPoint, isCleanShutdown: c.isCleanShutdown };
    if (isOffset(c.highWatermark)) checkpoint.highWatermark = c.highWatermark;
    return checkpoint;
  } catch {
    return null;
  }
}
