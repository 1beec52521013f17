import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch, iterateBatches } from '@runnel/client/codec';
import { FileHandleCache } from './file-handle-cache.ts';
import { MemoryLogDirectory } from './memory-segment-file.ts';
import { PartitionLog, type LogOpenOptions } from './partition-log.ts';

const MAX_OPEN = 16;
const SEGMENTS = 50;

function batch(i: number): Uint8Array {
  return encodeRecordBatch({ records: Array.from({ length: 4 }, (_, r) => ({ value: new Uint8Array(2000).fill((i + r) & 0xff), timestampMs: 1000 + i })) });
}

/** Appends until the log has `segments` segments; returns the appended batches by base offset. */
async function fill(log: PartitionLog, segments: number): Promise<Map<number, Uint8Array>> {
  const stored = new Map<number, Uint8Array>();
  for (let i = 0; log.segmentInfo().length < segments; i += 8) {
    const batches = Array.from({ length: 8 }, (_, k) => batch(i + k));
    const results = await Promise.all(batches.map((b) => log.append(b)));
    results.forEach((r, k) => stored.set(r.baseOffset, batches[k]));
  }
  return stored;
}

/** Reads the whole log one batch at a time; checks every batch equals what was appended. */
async function readAll(log: PartitionLog, stored: Map<number, Uint8Array>, files: FileHandleCache): Promise<number> {
  let offset = log.logStartOffset;
  let count = 0;
  while (offset < log.highWatermark) {
    const r = await log.read(offset, 1);
    const [b] = [...iterateBatches(r.batches)];
    assert.ok(b.ok);
    assert.deepEqual(new Uint8Array(r.batches), stored.get(b.value.header.baseOffset), `batch at ${offset} read back intact`);
    assert.ok(files.openFiles <= MAX_OPEN, `${files.openFiles} open > ${MAX_OPEN}`);
    offset = r.nextOffset;
    count++;
  }
  return count;
}

test(`fs: a log of ${SEGMENTS} segments with maxOpenFiles ${MAX_OPEN} reads every segment, never more than ${MAX_OPEN} handles open (fresh and after a clean reopen)`, async () => {
  const path = await mkdtemp(join(tmpdir(), 'runnel-fhc-'));
  const files = new FileHandleCache(MAX_OPEN);
  const options: LogOpenOptions = { files, flushIntervalMs: 60_000, limits: { maxBatchBytes: 16 * 1024, maxSegmentBytes: 64 * 1024, maxOpenFiles: MAX_OPEN } };
  try {
    const log = await PartitionLog.open(path, options);
    const stored = await fill(log, SEGMENTS);
    assert.ok(files.stats().peakOpenFiles <= MAX_OPEN, `peak ${files.stats().peakOpenFiles} while appending`);
    assert.equal(await readAll(log, stored, files), stored.size);
    assert.ok(files.stats().evictions > 0, 'the LRU closed sealed segments');
    assert.equal(await log.offsetForTimestamp(1000 + stored.size - 1), [...stored.keys()].at(-1));
    await log.close();
    assert.equal(files.openFiles, 0, 'close releases every handle');

    const reopened = await PartitionLog.open(path, options);
    assert.equal(reopened.recoveryReport.plan, 'clean', 'sealed segments trusted: CRC-checked on read');
    assert.equal(await readAll(reopened, stored, files), stored.size);
    assert.ok(files.stats().peakOpenFiles <= MAX_OPEN, `peak ${files.stats().peakOpenFiles}`);
    await reopened.close();
  } finally {
    await rm(path, { recursive: true, force: true });
  }
});

test('pinned handles are never closed under an in-flight read; the excess closes when the reads finish', async () => {
  const files = new FileHandleCache(MAX_OPEN);
  const dir = new MemoryLogDirectory();
  const log = await PartitionLog.openDirectory(dir, { files, limits: { maxBatchBytes: 16 * 1024, maxSegmentBytes: 64 * 1024 } });
  const stored = await fill(log, 40);
  const bases = log.segmentInfo().map((s) => s.baseOffset);
  // Every segment read at once: more pins than maxOpenFiles. A closed MemorySegmentFile throws on read.
  const reads = await Promise.all(bases.map((b) => log.read(b, 1)));
  reads.forEach((r, i) => assert.deepEqual(r.batches, stored.get(bases[i])));
  assert.ok(files.stats().peakOpenFiles > MAX_OPEN, 'all pinned: reads went over the limit rather than wait');
  assert.ok(files.openFiles <= MAX_OPEN, `back to ${files.openFiles} <= ${MAX_OPEN} once the pins dropped`);
  assert.equal(files.stats().pinnedFiles, 1, 'only the active segment stays pinned');
  await log.close();
});

test('two logs share one cache: the bound is across partitions', async () => {
  const files = new FileHandleCache(MAX_OPEN);
  const opts: LogOpenOptions = { files, limits: { maxBatchBytes: 16 * 1024, maxSegmentBytes: 64 * 1024 } };
  const logs = [await PartitionLog.openDirectory(new MemoryLogDirectory(), opts), await PartitionLog.openDirectory(new MemoryLogDirectory(), opts)];
  const stored = await Promise.all(logs.map((l) => fill(l, 12)));
  for (let i = 0; i < logs.length; i++) assert.equal(await readAll(logs[i], stored[i], files), stored[i].size);
  assert.equal(files.stats().pinnedFiles, 2, 'one active segment per log');
  for (const l of logs) await l.close();
  assert.equal(files.openFiles, 0);
});
