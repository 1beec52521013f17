/**
 * The storage seam of the log engine: a partition directory (`LogDirectory`)
 * holding append-only files (`SegmentFile`). Two implementations share one
 * contract test suite (segment-file.contract.ts): `fs-segment-file.ts` (real
 * files, real fdatasync) and `memory-segment-file.ts` (in memory, with fault
 * injection and crash simulation that keeps only synced bytes).
 *
 * Invariant: bytes passed to `append` are durable only once a later
 * `datasync()` has resolved; `writeAtomic` is durable (old or new content,
 * never a mix) when it resolves.
 */

/** One append-only file of a partition (a segment, or an index being rebuilt). */
export interface SegmentFile {
  readonly name: string;
  /** Bytes written so far (durable or not). */
  readonly size: number;
  /** Writes `chunks` at the end of the file in one vectored write. Not durable until `datasync`. NB: callers serialize appends. */
  append(chunks: readonly Uint8Array[]): Promise<void>;
  /** Up to `length` bytes from `position` (fewer at end of file). */
  read(position: number, length: number): Promise<Uint8Array>;
  /** fdatasync: every byte appended before this call is durable when it resolves. */
  datasync(): Promise<void>;
  /** Cuts the file to `size` bytes and makes the cut durable. */
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
}

/** A partition directory. Names are plain file names (no slashes). */
export interface LogDirectory {
  readonly path: string;
  /** File names in the directory (any order). */
  list(): Promise<string[]>;
  /** Opens a file for append + read; `create` makes it (empty) when missing and syncs the directory entry. */
  openFile(name: string, options: { create: boolean }): Promise<SegmentFile>;
  /** Whole content of a small file, or null when it does not exist. */
  readWhole(name: string): Promise<Uint8Array | null>;
  /** Replaces `name` atomically and durably (tmp + fsync + rename + fsync dir). */
  writeAtomic(name: string, bytes: Uint8Array): Promise<void>;
  /** Deletes a file if present (durable once it resolves). */
  remove(name: string): Promise<void>;
  /** Last modification time, or null when missing. */
  modifiedTimeMs(name: string): Promise<number | null>;
}

/** Digits of the zero-padded offset in a file name, as Kafka: enough for any int64 offset. */
export const FILE_NAME_OFFSET_DIGITS = 20;
const FILE_NAME_OFFSET = new RegExp(`^\\d{${FILE_NAME_OFFSET_DIGITS}}$`);

/** Segment and index file names: zero-padded base offset, as Kafka. */
export function segmentFileName(baseOffset: number, suffix: '.log' | '.index' | '.timeindex' | '.snapshot'): string {
  return `${String(baseOffset).padStart(FILE_NAME_OFFSET_DIGITS, '0')}${suffix}`;
}

/** Base offset encoded in a file name like `00000000000000000042.log`, or null for other names. */
export function parseSegmentFileName(name: string, suffix: '.log' | '.index' | '.timeindex' | '.snapshot'): number | null {
  if (!name.endsWith(suffix)) return null;
  const digits = name.slice(0, -suffix.length);
  if (!FILE_NAME_OFFSET.test(digits)) return null;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : null;
}
