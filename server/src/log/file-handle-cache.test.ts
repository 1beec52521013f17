import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch, iterateBatches, RunnelError } from '@runnel/client/codec';
import { FileHandleCache } from './file-handle-cache.ts';
import { MemoryLogDirectory } from './memory-segment-file.ts';
import { PartitionLog, type LogOpenOptions } from './partition-log.ts';
import type { LogDirectory, SegmentFile } from './segment-file.ts';

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
  assert.equal(files.stats().pinnedFiles, 0, 'nothing stays pinned once the log is idle');
  await log.close();
});

test('two logs share one cache: the bound is across partitions', async () => {
  const files = new FileHandleCache(MAX_OPEN);
  const opts: LogOpenOptions = { files, limits: { maxBatchBytes: 16 * 1024, maxSegmentBytes: 64 * 1024 } };
  const logs = [await PartitionLog.openDirectory(new MemoryLogDirectory(), opts), await PartitionLog.openDirectory(new MemoryLogDirectory(), opts)];
  const stored = await Promise.all(logs.map((l) => fill(l, 12)));
  for (let i = 0; i < logs.length; i++) assert.equal(await readAll(logs[i], stored[i], files), stored[i].size);
  assert.equal(files.stats().pinnedFiles, 0, 'idle logs pin nothing');
  for (const l of logs) await l.close();
  assert.equal(files.openFiles, 0);
});

// ---- issue 11, finding 3: more partitions than descriptors ----

/** The process's descriptors as the tests see them: `limit` open segment files at most, or none while `isExhausted`. */
class Descriptors {
  open = 0;
  peak = 0;
  isExhausted = false;
  constructor(readonly limit: number) {}
}

/** A memory directory whose opens count against shared `Descriptors` and fail with EMFILE past them (as open(2)). */
class FdLimitedDirectory implements LogDirectory {
  readonly inner = new MemoryLogDirectory();
  constructor(readonly fds: Descriptors, readonly path = 'fd-limited:') {}

  async openFile(name: string, options: { create: boolean }): Promise<SegmentFile> {
    if (this.fds.isExhausted || this.fds.open >= this.fds.limit) throw Object.assign(new Error(`EMFILE: too many open files, open '${name}'`), { code: 'EMFILE' });
    this.fds.open++;
    this.fds.peak = Math.max(this.fds.peak, this.fds.open);
    let file: SegmentFile;
    try {
      file = await this.inner.openFile(name, options);
    } catch (err) {
      this.fds.open--;
      throw err;
    }
    let isClosed = false;
    const fds = this.fds;
    return {
      name, get size() { return file.size; },
      append: (chunks) => file.append(chunks), read: (position, length) => file.read(position, length),
      datasync: () => file.datasync(), truncate: (size) => file.truncate(size),
      async close() {
        if (!isClosed) fds.open--;
        isClosed = true;
        await file.close();
      },
    };
  }

  list(): Promise<string[]> { return this.inner.list(); }
  readWhole(name: string): Promise<Uint8Array | null> { return this.inner.readWhole(name); }
  writeAtomic(name: string, bytes: Uint8Array): Promise<void> { return this.inner.writeAtomic(name, bytes); }
  remove(name: string): Promise<void> { return this.inner.remove(name); }
  modifiedTimeMs(name: string): Promise<number | null> { return this.inner.modifiedTimeMs(name); }
}

const small = (i: number, extra: Partial<Parameters<typeof encodeRecordBatch>[0]> = {}) => encodeRecordBatch({ records: [{ value: new Uint8Array([i & 0xff]), timestampMs: 1000 }], ...extra });

/** NB: no tail cache: these tests prove what reads do to file descriptors, so every read goes to the file. */
async function openLogs(n: number, files: FileHandleCache, fds: Descriptors): Promise<PartitionLog[]> {
  const logs: PartitionLog[] = [];
  for (let i = 0; i < n; i++) logs.push(await PartitionLog.openDirectory(new FdLimitedDirectory(fds, `p${i}`), { files, tailCacheBytes: 0, limits: { maxOpenFiles: files.maxOpenFiles } }));
  return logs;
}

test('idle partitions give their handles back: 40 partitions on 24 descriptors (maxOpenFiles 16) are created, appended to and read twice', async () => {
  const fds = new Descriptors(24);
  const files = new FileHandleCache(16);
  const logs = await openLogs(40, files, fds);
  for (let round = 0; round < 2; round++) {
    for (const [i, log] of logs.entries()) assert.equal((await log.append(small(i))).baseOffset, round, `partition ${i}, round ${round}`);
    assert.equal(files.stats().pinnedFiles, 0, 'no idle partition pins its active segment');
    assert.ok(files.openFiles <= 16, `${files.openFiles} open`);
  }
  for (const [i, log] of logs.entries()) assert.equal(offsetsOf((await log.read(0, 1 << 20)).batches).join(), '0,1', `partition ${i} reads back`);
  assert.ok(fds.peak <= 16, `peak ${fds.peak} descriptors`);
  assert.ok(files.stats().evictions > 40, 'handles cycled through the LRU');
  for (const log of logs) await log.close();
  assert.equal(fds.open, 0);
});

test('maxOpenFiles above what the process can hold: an EMFILE sheds the idle handles and the open is tried again', async () => {
  const fds = new Descriptors(24);
  const files = new FileHandleCache(64);
  const logs = await openLogs(40, files, fds);
  for (const [i, log] of logs.entries()) assert.equal((await log.append(small(i))).baseOffset, 0);
  for (const log of logs) assert.equal((await log.read(0, 1 << 20)).nextOffset, 1);
  assert.ok(files.stats().shedFiles > 0, 'idle handles were closed to make room');
  assert.equal(files.stats().openRefusals, 0, 'and every open then succeeded');
  for (const log of logs) await log.close();
});

test('no descriptor free: an append to an idle partition is refused LIMIT_EXCEEDED (retryable, nothing assigned, reported) and the log serves again once descriptors are free', async () => {
  const fds = new Descriptors(1000);
  const files = new FileHandleCache(16);
  const refusals: { errno: string; path: string }[] = [];
  files.observe({ openRefused: (r) => refusals.push(r) });
  const logs = await openLogs(20, files, fds);
  for (const [i, log] of logs.entries()) await log.append(small(i));
  const idle = logs[0]; // least recently used: its handle was evicted
  fds.isExhausted = true;
  const refused = await idle.append(small(1)).then(() => null, (e: unknown) => e);
  assert.ok(refused instanceof RunnelError && refused.errorName === 'LIMIT_EXCEEDED' && refused.retryable, `got ${refused}`);
  assert.match(refused.message, /out of file descriptors \(EMFILE\)/);
  assert.equal(idle.logEndOffset, 1, 'no offset was assigned');
  assert.deepEqual(refusals.map((r) => r.errno), ['EMFILE']);
  assert.equal(files.stats().openRefusals, 1);
  const readRefused = await idle.read(0, 100).then(() => null, (e: unknown) => e);
  assert.ok(readRefused instanceof RunnelError && readRefused.errorName === 'LIMIT_EXCEEDED', 'a read that must reopen is refused the same way');
  fds.isExhausted = false;
  assert.equal((await idle.append(small(2))).baseOffset, 1, 'the log was not failed: the next append works');
  assert.equal(offsetsOf((await idle.read(0, 1 << 20)).batches).join(), '0,1');
  for (const log of logs) await log.close();
});

test('appends to an idle partition whose handle must be reopened keep their arrival order (idempotent sequences accepted in order)', async () => {
  const fds = new Descriptors(1000);
  const files = new FileHandleCache(16);
  const logs = await openLogs(20, files, fds);
  for (const [i, log] of logs.entries()) await log.append(small(i));
  const log = logs[0];
  const opensBefore = files.stats().opens;
  const results = await Promise.all(Array.from({ length: 10 }, (_, k) => log.append(small(k, { producerId: 7, producerEpoch: 0, baseSequence: k }))));
  assert.deepEqual(results.map((r) => r.baseOffset), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(files.stats().opens - opensBefore, 1, 'reopened once for the whole burst');
  assert.equal(files.stats().pinnedFiles, 0);
  for (const l of logs) await l.close();
});

test('appends arriving while an idle partition reopens its handle are never overtaken by later ones (idempotent sequences in arrival order)', async () => {
  const files = new FileHandleCache(16);
  const logs = await openLogs(20, files, new Descriptors(1000));
  for (const [i, log] of logs.entries()) await log.append(small(i));
  const log = logs[0]; // its handle was evicted: the first append below reopens it
  // Append k is issued after k microtask hops: arrival order is k; some arrive while the reopen runs, some after.
  const issued: number[] = [];
  const results = await Promise.all(Array.from({ length: 200 }, async (_, k) => {
    for (let hop = 0; hop < k; hop++) await null;
    issued.push(k);
    return log.append(small(k, { producerId: 9, producerEpoch: 0, baseSequence: k }));
  }));
  assert.deepEqual(issued, [...issued].sort((a, b) => a - b), 'issued in k order');
  assert.deepEqual(results.map((r) => r.baseOffset), results.map((_, k) => 1 + k), 'assigned in arrival order, no OUT_OF_ORDER');
  for (const l of logs) await l.close();
});

test('a partition being written keeps its handle: a burst of appends opens nothing and pins one handle until it is durable', async () => {
  const files = new FileHandleCache(16);
  const log = await PartitionLog.openDirectory(new MemoryLogDirectory(), { files });
  await log.append(small(0));
  const opensBefore = files.stats().opens;
  const burst = Array.from({ length: 200 }, (_, i) => log.append(small(i)));
  assert.equal(files.stats().pinnedFiles, 1, 'the writer holds the write segment while it has appends');
  await Promise.all(burst);
  assert.equal(files.stats().opens, opensBefore, 'no reopen on the hot path');
  assert.equal(files.stats().pinnedFiles, 0, 'idle again: nothing pinned');
  await log.close();
});

test('a roll that finds no free descriptor waits for one (retried with backoff) instead of failing the log', async () => {
  const fds = new Descriptors(1000);
  const files = new FileHandleCache(16);
  const maxSegmentBytes = 64 * 1024;
  const log = await PartitionLog.openDirectory(new FdLimitedDirectory(fds), { files, limits: { maxBatchBytes: 16 * 1024, maxSegmentBytes } });
  while (log.segmentInfo().at(-1)!.sizeBytes + batch(0).length <= maxSegmentBytes) await log.append(batch(0));
  fds.isExhausted = true;
  const rolling = log.append(batch(1)); // must create the next segment's file
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(files.stats().openRefusals > 0, 'the roll met EMFILE');
  fds.isExhausted = false;
  const r = await rolling;
  assert.deepEqual(log.segmentInfo().map((s) => s.baseOffset), [0, r.baseOffset], 'the batch went to the new segment');
  assert.equal((await log.append(batch(2))).baseOffset, r.lastOffset + 1, 'the log still works');
  await log.close();
});

function offsetsOf(bytes: Uint8Array): number[] {
  return [...iterateBatches(bytes)].map((b) => (b.ok ? b.value.header.baseOffset : -1));
}
