/**
 * The partition log engine: durable, group-committed, Kafka-format segments.
 * See docs/storage.md.
 */
export { PartitionLog, resolveLogOptions, nativeCrc, DEFAULT_RETENTION_MS } from './partition-log.ts';
export type { LogOptions, LogOpenOptions, AppendResult, AppendEvent, ReadResult } from './partition-log.ts';
export type { RecoveryReport } from './log-loader.ts';
export { FileHandleCache, processFileHandleCache } from './file-handle-cache.ts';
export type { FileHandleCacheStats } from './file-handle-cache.ts';
export type { LogDirectory, SegmentFile } from './segment-file.ts';
export { FsLogDirectory } from './fs-segment-file.ts';
export { MemoryLogDirectory } from './memory-segment-file.ts';
