/**
 * Opening a partition directory: the I/O driver of recovery.ts.
 *
 * 1. List segments, snapshots, the checkpoint; drop leftovers (`*.tmp`,
 *    segments wholly below the checkpoint's logStartOffset).
 * 2. `decideRecovery`: after a clean shutdown trust everything and re-check
 *    only the tail after the last index entry; after a crash validate (CRC,
 *    contiguity) from the segment holding the recovery point; without a
 *    checkpoint validate all. Indexes of validated segments are rebuilt;
 *    missing or insane index files trigger a rebuild too.
 * 3. At the first torn or corrupt batch: truncate the file there (durably)
 *    and delete every later segment. Nothing after it is ever served.
 * 4. Producer state: newest snapshot at or below the log end, then replay
 *    batch headers after it.
 * 5. Leader epochs: the `leader-epoch-checkpoint` file cut to
 *    [logStartOffset, logEndOffset), then completed with the epochs the
 *    partitionLeaderEpoch fields of the batches scanned above start (the file
 *    may lag or lead the log past the recovery point, never before it).
 *    Without a readable file (a log written before the file existed) it is
 *    rebuilt by one header-only pass over every segment: a one-time cost.
 */
import type { BatchHeader } from '@runnel/client/codec';
import { decodeCheckpoint, CHECKPOINT_FILE, type PartitionCheckpoint } from './checkpoint.ts';
import { LeaderEpochCache } from './leader-epoch-cache.ts';
import { readLeaderEpochs } from './leader-epoch-checkpoint.ts';
import { ProducerStateTable } from './producer-state.ts';
import { decideRecovery, type RecoveryPlan, type TailProblem } from './recovery.ts';
import { Segment, type SegmentConfig } from './segment.ts';
import { parseSegmentFileName, segmentFileName, type LogDirectory } from './segment-file.ts';
import { SnapshotStore } from './snapshot-store.ts';

export interface LoaderConfig {
  segment: SegmentConfig;
  maxProducersPerPartition: number;
  nowMs: number;
}

/** What recovery did; logged by the broker, asserted by tests. */
export interface RecoveryReport {
  plan: RecoveryPlan['kind'];
  validatedSegments: number;
  validatedBytes: number;
  rebuiltIndexes: number;
  truncatedBytes: number;
  deletedSegments: number;
  problem: { reason: TailProblem; segment: string; position: number; message: string } | null;
  /** Leader epochs: read from their file (and completed by the scans), or rebuilt from every batch header (file missing or unreadable). */
  leaderEpochs: 'loaded' | 'rebuilt';
}

export interface LoadedLog {
  segments: Segment[];
  logStartOffset: number;
  producers: ProducerStateTable;
  checkpoint: PartitionCheckpoint | null;
  report: RecoveryReport;
  leaderEpochs: LeaderEpochCache;
  /** The recovered epochs differ from the file (or there was none): write it before serving. */
  isLeaderEpochFileStale: boolean;
}

/** What the recovery of every segment shares. */
interface LoadContext {
  dir: LogDirectory;
  config: LoaderConfig;
  checkpoint: PartitionCheckpoint | null;
  report: RecoveryReport;
  /** Epochs started in the scanned batches, in offset order; null when the cache is rebuilt from every batch instead. */
  scannedEpochs: LeaderEpochCache | null;
}

export async function loadLog(dir: LogDirectory, config: LoaderConfig): Promise<LoadedLog> {
  const names = await dir.list();
  for (const name of names) if (name.endsWith('.tmp')) await dir.remove(name);
  const checkpoint = decodeCheckpoint(await dir.readWhole(CHECKPOINT_FILE));
  let bases = names.map((n) => parseSegmentFileName(n, '.log')).filter((b): b is number => b !== null).sort((a, b) => a - b);
  const persistedEpochs = await readLeaderEpochs(dir);
  const report: RecoveryReport = {
    plan: 'validate', validatedSegments: 0, validatedBytes: 0, rebuiltIndexes: 0, truncatedBytes: 0, deletedSegments: 0, problem: null,
    leaderEpochs: persistedEpochs ? 'loaded' : 'rebuilt',
  };
  const logStartOffset = Math.max(checkpoint?.logStartOffset ?? 0, bases[0] ?? 0);
  // Retention advanced logStartOffset but crashed before deleting these files.
  while (bases.length > 1 && bases[1] <= logStartOffset) {
    await new Segment(bases[0], config.segment, 0, 0).delete();
    bases = bases.slice(1);
    report.deletedSegments++;
  }
  if (bases.length === 0) bases = [logStartOffset];
  const plan = decideRecovery(bases, checkpoint);
  report.plan = plan.kind;
  const segments: Segment[] = [];
  const ctx: LoadContext = { dir, config, checkpoint, report, scannedEpochs: persistedEpochs ? new LeaderEpochCache() : null };
  try {
    await recoverSegments(ctx, bases, segments, plan);
    await segments[segments.length - 1].becomeActive();
    const producers = await reloadProducerState(dir, segments, config.maxProducersPerPartition);
    const leaderEpochs = persistedEpochs ?? await rebuildLeaderEpochs(segments);
    const isStale = recoverLeaderEpochs(leaderEpochs, ctx.scannedEpochs, logStartOffset, segments[segments.length - 1].nextOffset);
    return { segments, logStartOffset, producers, checkpoint, report, leaderEpochs, isLeaderEpochFileStale: !persistedEpochs || isStale };
  } catch (err) {
    for (const s of segments) await s.close();
    throw err;
  }
}

/** Opens and recovers `bases` in order into `segments`; at a cut, deletes every later segment. */
async function recoverSegments(ctx: LoadContext, bases: number[], segments: Segment[], plan: RecoveryPlan): Promise<void> {
  const { config, report } = ctx;
  for (let i = 0; i < bases.length; i++) {
    const segment = await openSegment(ctx.dir, bases[i], config);
    segments.push(segment);
    const isLast = i === bases.length - 1;
    // The last segment (created when the directory is empty) becomes the active one; the others open lazily.
    if (isLast) await segment.becomeActive();
    const isCut = await recoverSegment(ctx, segment, isLast ? null : bases[i + 1], plan, i);
    if (isCut) {
      for (const later of bases.slice(i + 1)) {
        await new Segment(later, config.segment, 0, 0).delete();
        report.deletedSegments++;
      }
      break;
    }
  }
}

async function openSegment(dir: LogDirectory, baseOffset: number, config: LoaderConfig): Promise<Segment> {
  const name = segmentFileName(baseOffset, '.log');
  const mtime = (await dir.modifiedTimeMs(name)) ?? config.nowMs;
  return new Segment(baseOffset, config.segment, Math.min(mtime, config.nowMs), mtime);
}

/** Brings one segment to a trusted state. Returns true when the log was cut inside it (later segments must go). */
async function recoverSegment(ctx: LoadContext, segment: Segment, nextBase: number | null, plan: RecoveryPlan, index: number): Promise<boolean> {
  const fileBytes = await segment.withFile(async (file) => file.size);
  const mustValidate = plan.kind === 'validate' && index >= plan.firstSegment;
  if (!mustValidate && (await segment.loadIndexes(ctx.dir, fileBytes))) {
    if (nextBase !== null) {
      const lastIndexed = segment.offsetIndex.lookup(Infinity).offset;
      if (lastIndexed < nextBase || segment.offsetIndex.entryCount === 0) {
        segment.sizeBytes = fileBytes;
        segment.nextOffset = nextBase;
        segment.isVerified = false;
        return false;
      }
    } else if (await checkCleanTail(ctx, segment, fileBytes)) {
      return false;
    }
  }
  if (!mustValidate) ctx.report.rebuiltIndexes++;
  return validateSegment(ctx, segment, fileBytes);
}

/** Clean shutdown: the bytes after the last index entry must end exactly at the checkpointed log end. */
async function checkCleanTail(ctx: LoadContext, segment: Segment, fileBytes: number): Promise<boolean> {
  const from = segment.offsetIndex.lookup(Infinity);
  const savedMax = { ts: segment.maxTimestamp, offset: segment.offsetOfMaxTimestamp };
  const offsetIndex = segment.offsetIndex;
  const timeIndex = segment.timeIndex;
  segment.resetIndexes();
  segment.offsetIndex = offsetIndex;
  segment.timeIndex = timeIndex;
  segment.maxTimestamp = savedMax.ts;
  segment.offsetOfMaxTimestamp = savedMax.offset;
  segment.sizeBytes = from.position;
  segment.nextOffset = from.offset;
  const result = await segment.scan(from.position, from.offset, fileBytes, true, (b) => {
    recordHeader(ctx, segment, b.position, b.header);
    return true;
  });
  const isClean = result.problem === null && result.endPosition === fileBytes && result.nextOffset === ctx.checkpoint?.recoveryPoint;
  segment.isVerified = false;
  return isClean;
}

/** One scanned valid batch: indexes, and the leader epoch it was written in (the same rule as `PartitionLog.append`). */
function recordHeader(ctx: LoadContext, segment: Segment, position: number, h: BatchHeader): void {
  segment.recordBatch(position, h.totalBytes, h.baseOffset, h.baseOffset + h.lastOffsetDelta, h.maxTimestamp);
  ctx.scannedEpochs?.maybeAssign(h.partitionLeaderEpoch, h.baseOffset);
}

/** Full CRC validation from position 0, rebuilding indexes; truncates a torn or corrupt tail. */
async function validateSegment(ctx: LoadContext, segment: Segment, fileBytes: number): Promise<boolean> {
  const { report } = ctx;
  segment.resetIndexes();
  // A failed clean-tail check may have scanned part of this segment already: observe it again, in offset order.
  ctx.scannedEpochs?.truncateFromEnd(segment.baseOffset);
  segment.isVerified = true;
  const result = await segment.scan(0, segment.baseOffset, fileBytes, true, (b) => {
    recordHeader(ctx, segment, b.position, b.header);
    return true;
  });
  report.validatedSegments++;
  report.validatedBytes += result.endPosition;
  if (result.problem === null && result.endPosition === fileBytes) return false;
  const problem = result.problem ?? { reason: 'torn-body' as const, position: result.endPosition, message: 'file ends inside a batch' };
  report.problem = { ...problem, segment: segment.logFileName };
  report.truncatedBytes += fileBytes - result.endPosition;
  await segment.withFile((file) => file.truncate(result.endPosition));
  return true;
}

/**
 * Producer state for the log as it is now: the newest snapshot at or below
 * the log end (snapshots past it were taken before a truncation and are
 * deleted), then the batch headers after it.
 */
export async function reloadProducerState(dir: LogDirectory, segments: Segment[], maxProducers: number): Promise<ProducerStateTable> {
  const logEndOffset = segments[segments.length - 1].nextOffset;
  let table: ProducerStateTable | null = null;
  let from = segments[0].baseOffset;
  for (const offset of (await SnapshotStore.list(dir)).reverse()) {
    const name = segmentFileName(offset, '.snapshot');
    if (offset > logEndOffset) {
      await dir.remove(name);
      continue;
    }
    if (table) continue;
    const bytes = await dir.readWhole(name);
    table = bytes ? ProducerStateTable.decodeSnapshot(bytes, maxProducers) : null;
    if (table) from = offset;
  }
  table ??= new ProducerStateTable(maxProducers);
  await replayProducers(table, segments, from);
  return table;
}

/** Replays batch headers with baseOffset >= `from` into `table` (headers only, no CRC). */
export async function replayProducers(table: ProducerStateTable, segments: Segment[], from: number): Promise<void> {
  for (const segment of segments) {
    if (segment.nextOffset <= from || segment.sizeBytes === 0) continue;
    const start = segment.offsetIndex.lookup(Math.max(from, segment.baseOffset));
    await segment.scan(start.position, start.offset, segment.sizeBytes, false, (b) => {
      if (b.header.baseOffset >= from) table.record(b.header, b.header.baseOffset);
      return true;
    });
  }
}

/**
 * Makes `epochs` agree with the recovered log [logStartOffset, logEndOffset):
 * entries outside it go (the file led a log cut by recovery or truncation),
 * then the epochs the scanned batches start are added (the file lagged).
 * Returns whether anything changed (the file must be rewritten).
 */
function recoverLeaderEpochs(epochs: LeaderEpochCache, scanned: LeaderEpochCache | null, logStartOffset: number, logEndOffset: number): boolean {
  let isChanged = epochs.truncateFromStart(logStartOffset);
  if (epochs.truncateFromEnd(logEndOffset)) isChanged = true;
  for (const e of scanned?.entries ?? []) if (e.startOffset < logEndOffset && epochs.maybeAssign(e.epoch, e.startOffset)) isChanged = true;
  return isChanged;
}

/** The leader epochs of every stored batch, oldest first (headers only, no CRC): the missing-file fallback. */
export async function rebuildLeaderEpochs(segments: Segment[]): Promise<LeaderEpochCache> {
  const epochs = new LeaderEpochCache();
  for (const segment of segments) {
    if (segment.sizeBytes === 0) continue;
    await segment.scan(0, segment.baseOffset, segment.sizeBytes, false, (b) => {
      epochs.maybeAssign(b.header.partitionLeaderEpoch, b.header.baseOffset);
      return true;
    });
  }
  return epochs;
}
