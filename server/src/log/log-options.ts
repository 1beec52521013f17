/**
 * Options of one partition log: the limit fields come from the broker's
 * validated `limits` (server/src/limits.ts), the rest are per-log settings
 * (retention, flush interval, clock, CRC, the shared file-handle cache).
 * `resolveLogOptions` fills defaults and rejects impossible combinations.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { assert, type Crc32cFn } from '@runnel/client/codec';
import { defaultLimits, type Limits } from '../limits.ts';
import { processFileHandleCache, type FileHandleCache } from './file-handle-cache.ts';
import { processInlineIo, type InlineIo } from './inline-io.ts';
import { MAX_RELATIVE_VALUE } from './offset-index.ts';

export interface LogOptions {
  maxBatchBytes: number;
  maxSegmentBytes: number;
  segmentMs: number;
  indexIntervalBytes: number;
  /** Delete old segments beyond this many bytes; -1 = no size limit. */
  retentionBytes: number;
  /** Delete segments whose last write is older; -1 = keep forever. */
  retentionMs: number;
  /** 0 = durable (ack after fdatasync). > 0 = ack after write, fdatasync every flushIntervalMs. */
  flushIntervalMs: number;
  /** Unacknowledged appends; more are refused with LIMIT_EXCEEDED. */
  maxPendingAppends: number;
  maxProducersPerPartition: number;
  nowMs: () => number;
  /** CRC-32C used to verify batches; default @node-rs/crc32 (native, SIMD). */
  crc: Crc32cFn;
  /** Bytes of the newest batches kept in memory for reads at the tail (tail-cache.ts); 0 = every read goes to the file. */
  tailCacheBytes: number;
  /** Segment file handles, shared by every log of a broker (maxOpenFiles); default: the process-wide cache for `limits.maxOpenFiles`. */
  files: FileHandleCache;
  /** When segment writes and fdatasyncs run on the event loop (inline-io.ts); default: the process-wide governors for `limits.inlineIoMaxMs`. */
  inlineIo: InlineIo;
  /**
   * A replica of a replicated partition (server/src/replication/): the high
   * watermark moves only by `setHighWatermark` (never past the local durable
   * end), and at open it is the one the checkpoint recorded, not the recovered
   * end, so a restarted replica never serves records the cluster had not
   * committed. Default false (single node: the durable end is the high watermark).
   */
  isReplicated: boolean;
}

/** Kafka's defaults: 7 days, no size limit, durable. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;

export const nativeCrc: Crc32cFn = (bytes, start, end) => nativeCrc32c(bytes.subarray(start, end));

/** `open` options: any LogOptions field, or `limits` (the broker's validated limits) to take the limit fields from. */
export type LogOpenOptions = Partial<LogOptions> & { limits?: Partial<Limits> };

export function resolveLogOptions(options: LogOpenOptions = {}): LogOptions {
  const { limits: given, ...rest } = options;
  const limits = { ...defaultLimits, ...given };
  const o: LogOptions = {
    maxBatchBytes: limits.maxBatchBytes, maxSegmentBytes: limits.maxSegmentBytes, segmentMs: limits.segmentMs,
    indexIntervalBytes: limits.indexIntervalBytes, retentionBytes: -1, retentionMs: DEFAULT_RETENTION_MS, flushIntervalMs: 0,
    maxPendingAppends: limits.maxPendingAppends, tailCacheBytes: limits.logTailCacheBytes, maxProducersPerPartition: limits.maxProducersPerPartition,
    nowMs: Date.now, crc: nativeCrc, isReplicated: false, files: rest.files ?? processFileHandleCache(limits.maxOpenFiles),
    inlineIo: rest.inlineIo ?? processInlineIo(limits.inlineIoMaxMs), ...stripUndefined(rest),
  };
  assert(o.maxSegmentBytes >= o.maxBatchBytes && o.maxSegmentBytes <= MAX_RELATIVE_VALUE, `maxSegmentBytes (${o.maxSegmentBytes}) must be >= maxBatchBytes (${o.maxBatchBytes}) and < 4 GiB (uint32 index positions)`);
  assert(o.flushIntervalMs >= 0 && o.indexIntervalBytes > 0 && o.maxPendingAppends > 0, 'flushIntervalMs >= 0, indexIntervalBytes > 0 and maxPendingAppends > 0 are required');
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
