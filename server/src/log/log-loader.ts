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
 */
import type { BatchHeader } from '@runnel/client/codec';
import { decodeCheckpoint, CHECKPOINT_FILE, type PartitionCheckpoint } from './checkpoint.ts';
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
}

export interface LoadedLog {
  segments: Segment[];
  logStartOffset: number;
  producers: ProducerStateTable;
  checkpoint: PartitionCheckpoint | null;
  report: RecoveryReport;
}

export async function loadLog(dir: LogDirectory, config: LoaderConfig): Promise<LoadedLog> {
  const names = await dir.list();
  for (const name of names) if (name.endsWith('.tmp')) await dir.remove(name);
  const checkpoint = decodeCheckpoint(await dir.readWhole(CHECKPOINT_FILE));
  let bases = names.map((n) => parseSegmentFileName(n, '.log')).filter((b): b is number => b !== null).sort((a, b) => a - b);
  const report: RecoveryReport = { plan: 'validate', validatedSegments: 0, validatedBytes: 0, rebuiltIndexes: 0, truncatedBytes: 0, deletedSegments: 0, problem: null };
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
  try {
    await recoverSegments(dir, bases, segments, plan, checkpoint, config, report);
    await segments[segments.length - 1].becomeActive();
    const producers = await reloadProducerState(dir, segments, config.maxProducersPerPartition);
    return { segments, logStartOffset, producers, checkpoint, report };
  } catch (err) {
    for (const s of segments) await s.close();
    throw err;
  }
}

/** Opens and recovers `bases` in order into `segments`; at a cut, deletes every later segment. */
async function recoverSegments(
  dir: LogDirectory, bases: number[], segments: Segment[], plan: RecoveryPlan,
  checkpoint: PartitionCheckpoint | null, config: LoaderConfig, report: RecoveryReport,
): Promise<void> {
  for (let i = 0; i < bases.length; i++) {
    const segment = await openSegment(dir, bases[i], config);
    segments.push(segment);
    const isLast = i === bases.length - 1;
    // The last segment (created when the directory is empty) becomes the active one; the others open lazily.
    if (isLast) await segment.becomeActive();
    const isCut = await recoverSegment(dir, segment, isLast ? null : bases[i + 1], plan, i, checkpoint, report);
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
async function recoverSegment(
  dir: LogDirectory, segment: Segment, nextBase: number | null, plan: RecoveryPlan, index: number,
  checkpoint: PartitionCheckpoint | null, report: RecoveryReport,
): Promise<boolean> {
  const fileBytes = await segment.withFile(async (file) => file.size);
  const mustValidate = plan.kind === 'validate' && index >= plan.firstSegment;
  if (!mustValidate && (await segment.loadIndexes(dir, fileBytes))) {
    if (nextBase !== null) {
      const lastIndexed = segment.offsetIndex.lookup(Infinity).offset;
      if (lastIndexed < nextBase || segment.offsetIndex.entryCount === 0) {
        segment.sizeBytes = fileBytes;
        segment.nextOffset = nextBase;
        segment.isVerified = false;
        return false;
      }
    } else if (await checkCleanTail(segment, fileBytes, checkpoint)) {
      return false;
    }
  }
  if (!mustValidate) report.rebuiltIndexes++;
  return validateSegment(segment, fileBytes, report);
}

/** Clean shutdown: the bytes after the last index entry must end exactly at the checkpointed log end. */
async function checkCleanTail(segment: Segment, fileBytes: number, checkpoint: PartitionCheckpoint | null): Promise<boolean> {
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
    recordHeader(segment, b.position, b.header);
    return true;
  });
  const isClean = result.problem === null && result.endPosition === fileBytes && result.nextOffset === checkpoint?.recoveryPoint;
  segment.isVerified = false;
  return isClean;
}

function recordHeader(segment: Segment, position: number, h: BatchHeader): void {
  segment.recordBatch(position, h.totalBytes, h.baseOffset, h.baseOffset + h.lastOffsetDelta, h.maxTimestamp);
}

/** Full CRC validation from position 0, rebuilding indexes; truncates a torn or corrupt tail. */
async function validateSegment(segment: Segment, fileBytes: number, report: RecoveryReport): Promise<boolean> {
  segment.resetIndexes();
  segment.isVerified = true;
  const result = await segment.scan(0, segment.baseOffset, fileBytes, true, (b) => {
    recordHeader(segment, b.position, b.header);
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
