import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c, decodeRecordBatch, encodeRecordBatch, iterateBatches, RunnelError, validateBatch, validateRecords } from '@runnel/client/codec';
import { decodeLeaderEpochs, encodeLeaderEpochs, LEADER_EPOCH_FILE } from './leader-epoch-checkpoint.ts';
import { MemoryLogDirectory } from './memory-segment-file.ts';
import { PartitionLog, type AppendEvent, type LogOpenOptions } from './partition-log.ts';

/** A batch of `records` values of `valueBytes` bytes each. */
function batch(records = 1, opts: { valueBytes?: number; ts?: number; producerId?: number; producerEpoch?: number; baseSequence?: number } = {}): Uint8Array {
  const value = new Uint8Array(opts.valueBytes ?? 10).fill(7);
  return encodeRecordBatch({
    producerId: opts.producerId, producerEpoch: opts.producerEpoch, baseSequence: opts.baseSequence,
    records: Array.from({ length: records }, () => ({ value, timestampMs: opts.ts ?? 1000 })),
  });
}

async function openMemory(options: LogOpenOptions = {}, dir = new MemoryLogDirectory()) {
  return { dir, log: await PartitionLog.openDirectory(dir, options) };
}

function offsetsIn(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (const b of iterateBatches(bytes)) {
    assert.ok(b.ok, 'served bytes pass their CRC');
    out.push(b.value.header.baseOffset);
  }
  return out;
}

test('append assigns contiguous offsets, read returns the stored bytes verbatim, onAppend fires in order before the ack', async () => {
  const { log } = await openMemory();
  const events: AppendEvent[] = [];
  const off = log.onAppend((e) => events.push(e));
  const inputs = [batch(3), batch(1), batch(5)];
  const results = await Promise.all(inputs.map((b) => log.append(b)));
  assert.deepEqual(results.map((r) => [r.baseOffset, r.lastOffset, r.duplicate]), [[0, 2, false], [3, 3, false], [4, 8, false]]);
  assert.deepEqual([log.logEndOffset, log.highWatermark, log.durableEndOffset], [9, 9, 9]);
  assert.deepEqual(events.map((e) => e.baseOffset), [0, 3, 4]);
  assert.equal(events[0].batch, inputs[0], 'listeners get the same bytes, no copy');
  const read = await log.read(0, 1 << 20);
  assert.deepEqual(read.batches, new Uint8Array(Buffer.concat(inputs)));
  assert.deepEqual([read.firstOffset, read.nextOffset, read.highWatermark], [0, 9, 9]);
  const decoded = decodeRecordBatch(read.batches, inputs[0].length);
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value.records.map((r) => r.offset), [3]);
  off();
  await log.append(batch());
  assert.equal(events.length, 3, 'unsubscribed');
  await log.close();
});

test('group commit: many concurrent appends share few fdatasyncs', async () => {
  const { log, dir } = await openMemory();
  await Promise.all(Array.from({ length: 500 }, () => log.append(batch(2))));
  assert.equal(log.logEndOffset, 1000);
  assert.ok(dir.stats.datasyncs < 50, `${dir.stats.datasyncs} fdatasyncs for 500 appends`);
  assert.ok(dir.stats.appends < 50, `${dir.stats.appends} writes for 500 appends`);
  await log.close();
});

test('an acknowledged append survives a crash; an unacknowledged one may vanish but never half', async () => {
  const { log, dir } = await openMemory();
  const acked = await log.append(batch(2));
  const inflight = log.append(batch(2)).catch(() => undefined);
  const crashed = dir.crash({ keepUnsyncedFraction: 0.5 });
  await inflight;
  const reopened = await PartitionLog.openDirectory(crashed);
  assert.ok(reopened.logEndOffset >= acked.lastOffset + 1);
  const read = await reopened.read(0, 1 << 20);
  assert.deepEqual(offsetsIn(read.batches).slice(0, 1), [0]);
  await reopened.close();
  await log.close();
});

test('bad batches are refused with coded errors and leave the log untouched', async () => {
  const { log } = await openMemory({ limits: { maxBatchBytes: 4096, maxSegmentBytes: 1 << 20 } });
  const flipped = batch(2);
  flipped[flipped.length - 1] ^= 0xff;
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: RunnelError) => e.errorName);
  assert.equal(await code(log.append(flipped)), 'CORRUPT_MESSAGE');
  assert.equal(await code(log.append(batch(1, { valueBytes: 5000 }))), 'MESSAGE_TOO_LARGE');
  assert.equal(await code(log.append(new Uint8Array([...batch(), ...batch()]))), 'CORRUPT_MESSAGE');
  assert.equal(await code(log.append(new Uint8Array(30))), 'CORRUPT_MESSAGE');
  assert.equal(log.logEndOffset, 0);
  await log.close();
  assert.equal(await code(log.append(batch())), 'SHUTTING_DOWN');
});

test('idempotent producer: retries return the original offsets, gaps and fenced epochs are refused, state survives reopen', async () => {
  for (const reopen of ['clean', 'crash'] as const) {
    const { log, dir } = await openMemory();
    const p = (seq: number, n = 2, epoch = 0) => batch(n, { producerId: 42, producerEpoch: epoch, baseSequence: seq });
    const first = await log.append(p(0));
    await log.append(batch(1));
    const retry = await log.append(p(0));
    assert.deepEqual([retry.baseOffset, retry.lastOffset, retry.duplicate], [first.baseOffset, first.lastOffset, true]);
    await assert.rejects(log.append(p(5)), (e: RunnelError) => e.errorName === 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    await log.append(p(2));
    if (reopen === 'clean') await log.close();
    const next = await PartitionLog.openDirectory(reopen === 'clean' ? dir : dir.crash());
    const again = await next.append(p(2));
    assert.equal(again.duplicate, true, `${reopen}: duplicate detected after reopen`);
    assert.equal(again.baseOffset, 3);
    await next.append(p(0, 1, 1));
    await assert.rejects(next.append(p(4, 1, 0)), (e: RunnelError) => e.errorName === 'INVALID_PRODUCER_EPOCH');
    assert.equal(next.producerState(42)?.producerEpoch, 1);
    await next.close();
  }
});

test('read: bounded by maxBytes but at least one batch, starts at the batch containing the offset, across segments', async () => {
  const { log } = await openMemory({ limits: { maxBatchBytes: 2048, maxSegmentBytes: 64 * 1024, indexIntervalBytes: 512 } });
  const sizes: number[] = [];
  for (let i = 0; i < 300; i++) {
    const b = batch(4, { valueBytes: 50 });
    sizes.push(b.length);
    await log.append(b);
  }
  assert.ok(log.segmentInfo().length > 1, 'rolled by size');
  const one = await log.read(5, 1);
  assert.deepEqual([one.firstOffset, one.nextOffset, one.batches.length], [4, 8, sizes[1]]);
  let offset = 0;
  let batches = 0;
  while (offset < log.highWatermark) {
    const r = await log.read(offset, 3000);
    assert.ok(r.batches.length <= 3000);
    const got = offsetsIn(r.batches);
    assert.equal(got[0], offset, 'contiguous');
    batches += got.length;
    offset = r.nextOffset;
  }
  assert.equal(batches, 300);
  const capped = await log.read(0, 1 << 20, { maxOffset: 10 });
  assert.deepEqual(offsetsIn(capped.batches), [0, 4], 'nothing at or above maxOffset');
  assert.equal((await log.read(log.logEndOffset, 100)).batches.length, 0);
  await assert.rejects(log.read(log.logEndOffset + 1, 100), (e: RunnelError) => e.errorName === 'OFFSET_OUT_OF_RANGE');
  await log.close();
});

test('roll by age, retention by time and bytes advance logStartOffset durably', async () => {
  let now = 1_000_000;
  const dir = new MemoryLogDirectory('memory:', () => now);
  const opts: LogOpenOptions = { nowMs: () => now, limits: { maxBatchBytes: 2048, maxSegmentBytes: 64 * 1024, segmentMs: 60_000 }, retentionMs: 3_600_000 };
  const { log } = await openMemory(opts, dir);
  for (let i = 0; i < 3; i++) {
    await log.append(batch(1));
    now += 61_000;
  }
  assert.deepEqual(log.segmentInfo().map((s) => s.baseOffset), [0, 1, 2], 'one segment per minute');
  assert.equal(await log.enforceRetention(), 0);
  now += 3_600_001 - 183_000; // segment 0 (written at t0) expires, segment 1 (t0 + 61 s) not yet
  assert.equal(await log.enforceRetention(), 1, 'the oldest segment expired');
  assert.equal(log.logStartOffset, 1);
  await assert.rejects(log.read(0, 100), (e: RunnelError) => e.errorName === 'OFFSET_OUT_OF_RANGE');
  assert.equal(await log.enforceRetention({ retentionBytes: 0 }), 1, 'size retention keeps only the active segment');
  assert.equal(log.logStartOffset, 2);
  await log.close();
  const reopened = await PartitionLog.openDirectory(dir, opts);
  assert.deepEqual([reopened.logStartOffset, reopened.logEndOffset], [2, 3]);
  assert.ok(!(await dir.list()).some((n) => n.startsWith('00000000000000000000.')), 'files deleted');
  await reopened.close();
});

test('offsetForTimestamp finds the first batch whose maxTimestamp reaches the target', async () => {
  const { log } = await openMemory({ limits: { maxBatchBytes: 2048, maxSegmentBytes: 64 * 1024, indexIntervalBytes: 512 } });
  const timestamps = [100, 300, 200, 500, 400, 900, 600];
  for (let i = 0; i < 200; i++) await log.append(batch(2, { ts: timestamps[i % timestamps.length] + i * 10, valueBytes: 100 }));
  const all: { offset: number; ts: number }[] = [];
  for (let i = 0; i < 200; i++) all.push({ offset: i * 2, ts: timestamps[i % timestamps.length] + i * 10 });
  for (const target of [0, 150, 301, 1000, 1555, 2500, 2890, 2891, 99_999]) {
    const want = all.find((b) => b.ts >= target)?.offset ?? null;
    assert.equal(await log.offsetForTimestamp(target), want, `ts ${target}`);
  }
  await log.close();
});

test('a resend older than the 5 remembered batches is DUPLICATE_SEQUENCE_NUMBER (46: nothing appended, not a loss); a gap stays OUT_OF_ORDER; the same after a clean reopen and a crash', async () => {
  for (const reopen of ['clean', 'crash'] as const) {
    const { log, dir } = await openMemory();
    const p = (seq: number) => batch(2, { producerId: 42, producerEpoch: 0, baseSequence: seq });
    for (let seq = 0; seq < 16; seq += 2) await log.append(p(seq)); // 8 batches: sequences 0..15, the last 5 from 6
    const refusal = async (seq: number) => log.append(p(seq)).then(() => null, (e: unknown) => e as RunnelError);
    const written = await refusal(0);
    assert.ok(written instanceof RunnelError, `got ${written}`);
    assert.deepEqual([written.errorName, written.code, written.retryable], ['DUPLICATE_SEQUENCE_NUMBER', 46, false]);
    assert.match(written.message, /already written/);
    assert.equal(log.logEndOffset, 16, 'not appended');
    assert.deepEqual(await log.append(p(6)).then((r) => [r.baseOffset, r.duplicate]), [6, true], 'the oldest remembered: its offsets');
    assert.equal((await refusal(20))?.errorName, 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'a gap');
    assert.equal((await log.append(p(16))).baseOffset, 16);
    if (reopen === 'clean') await log.close();
    const next = await PartitionLog.openDirectory(reopen === 'clean' ? dir : dir.crash());
    for (const seq of [0, 2, 6]) {
      const again = await next.append(p(seq)).then(() => null, (e: unknown) => e as RunnelError);
      assert.equal(again?.errorName, 'DUPLICATE_SEQUENCE_NUMBER', `${reopen}: sequence ${seq} below the window rebuilt on open`);
    }
    assert.deepEqual(await next.append(p(8)).then((r) => [r.baseOffset, r.duplicate]), [8, true]);
    assert.equal(await next.append(p(30)).then(() => '', (e: RunnelError) => e.errorName), 'OUT_OF_ORDER_SEQUENCE_NUMBER');
    assert.equal(next.logEndOffset, 18, `${reopen}: nothing appended by the refusals`);
    await next.close();
  }
});

test('truncateTo removes the batch containing the offset and everything after, including producer state', async () => {
  const { log, dir } = await openMemory({ limits: { maxBatchBytes: 2048, maxSegmentBytes: 64 * 1024 } });
  for (let i = 0; i < 100; i++) await log.append(batch(10, { valueBytes: 50, producerId: 9, producerEpoch: 0, baseSequence: i * 10 }));
  await log.truncateTo(555);
  assert.deepEqual([log.logEndOffset, log.highWatermark], [550, 550]);
  const r = await log.append(batch(10, { valueBytes: 50, producerId: 9, producerEpoch: 0, baseSequence: 550 }));
  assert.equal(r.baseOffset, 550, 'sequence 550 follows again');
  await log.close();
  const reopened = await PartitionLog.openDirectory(dir);
  assert.equal(reopened.logEndOffset, 560);
  await reopened.close();
});

test('flushIntervalMs > 0 acknowledges after the write and fdatasyncs on flush', async () => {
  const { log, dir } = await openMemory({ flushIntervalMs: 60_000 });
  const before = dir.stats.datasyncs;
  await Promise.all([log.append(batch()), log.append(batch())]);
  assert.equal(dir.stats.datasyncs, before, 'no fdatasync before the ack');
  assert.equal(log.highWatermark, 2);
  assert.equal(log.durableEndOffset, 0);
  await log.flush();
  assert.equal(log.durableEndOffset, 2);
  await log.close();
});

test('maxPendingAppends refuses with LIMIT_EXCEEDED; an fdatasync failure fails the log with KAFKA_STORAGE_ERROR', async () => {
  const { log, dir } = await openMemory({ maxPendingAppends: 3 });
  const first = [log.append(batch()), log.append(batch()), log.append(batch())];
  await assert.rejects(log.append(batch()), (e: RunnelError) => e.errorName === 'LIMIT_EXCEEDED');
  await Promise.all(first);
  dir.faults.failNextDatasync = new Error('EIO');
  await assert.rejects(log.append(batch()), (e: RunnelError) => e.errorName === 'KAFKA_STORAGE_ERROR');
  await assert.rejects(log.append(batch()), (e: RunnelError) => e.errorName === 'KAFKA_STORAGE_ERROR');
  assert.equal(log.highWatermark, 3, 'nothing unsynced became visible');
  await log.close();
});

test('setHighWatermark holds visibility below the replicated offset', async () => {
  const { log } = await openMemory();
  const seen: number[] = [];
  log.onAppend((e) => seen.push(e.baseOffset));
  log.setHighWatermark(0);
  await log.append(batch());
  await log.append(batch());
  assert.deepEqual([log.durableEndOffset, log.highWatermark, seen.length], [2, 0, 0]);
  assert.equal((await log.read(0, 1000)).batches.length, 0);
  log.setHighWatermark(1);
  assert.deepEqual(seen, [0]);
  assert.equal(offsetsIn((await log.read(0, 1000, { maxOffset: 2 })).batches).length, 2, 'followers may read past the HW');
  await log.close();
});

test('append with the caller\'s validated header does not re-check the CRC; without it the log validates; the cheap checks stay on', async () => {
  let crcCalls = 0;
  const crc = (bytes: Uint8Array, start: number, end: number) => (crcCalls++, crc32c(bytes, start, end));
  const { log } = await openMemory({ crc });
  const b = batch(3);
  const checked = validateRecords(b, 0, { crc });
  assert.ok(checked.ok);
  crcCalls = 0;
  assert.equal((await log.append(b, { header: checked.value, leaderEpoch: 0 })).baseOffset, 0);
  assert.equal(crcCalls, 0, 'validated once, by the caller');
  await log.append(batch(1));
  assert.equal(crcCalls, 1, 'no header: the log checks the CRC itself');
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: RunnelError) => e.errorName);
  const other = validateBatch(batch(1, { valueBytes: 11 }));
  assert.ok(other.ok);
  assert.equal(await code(log.append(batch(3), { header: other.value })), 'CORRUPT_MESSAGE', 'a header of other bytes (CRC field differs)');
  const two = new Uint8Array([...batch(), ...batch()]);
  const first = validateBatch(two);
  assert.ok(first.ok);
  assert.equal(await code(log.append(two, { header: first.value })), 'CORRUPT_MESSAGE', 'length check always on: exactly one batch');
  const big = batch(1, { valueBytes: 5000 });
  const bigHeader = validateBatch(big);
  assert.ok(bigHeader.ok);
  const small = await openMemory({ limits: { maxBatchBytes: 4096, maxSegmentBytes: 1 << 20 } });
  assert.equal(await code(small.log.append(big, { header: bigHeader.value })), 'MESSAGE_TOO_LARGE', 'maxBatchBytes always on');
  assert.deepEqual([log.logEndOffset, small.log.logEndOffset], [4, 0]);
  await small.log.close();
  await log.close();
});

const epochPairs = (log: PartitionLog) => log.leaderEpochEntries().map((e) => [e.epoch, e.startOffset]);

test('leader epochs: appends with epochs 0,0,1,3, then truncateTo and reopen (clean and crash): the cache agrees', async () => {
  const { log, dir } = await openMemory();
  assert.equal(log.leaderEpoch, -1, 'no epoch yet');
  assert.deepEqual(log.endOffsetForEpoch(0), { epoch: -1, endOffset: -1 });
  for (const leaderEpoch of [0, 0, 1, 3]) await log.append(batch(2), { leaderEpoch });
  await log.append(batch(1)); // unstamped (-1): no entry
  assert.deepEqual(epochPairs(log), [[0, 0], [1, 4], [3, 6]]);
  assert.equal(log.leaderEpoch, 3);
  assert.deepEqual(log.endOffsetForEpoch(3), { epoch: 3, endOffset: 9 }, 'latest epoch: the log end');
  assert.deepEqual(log.endOffsetForEpoch(2), { epoch: 1, endOffset: 6 }, 'unknown epoch: the largest below it, ending where 3 starts');
  assert.deepEqual(log.endOffsetForEpoch(0), { epoch: 0, endOffset: 4 });
  const read = await log.read(0, 1 << 20);
  assert.deepEqual([...iterateBatches(read.batches)].map((b) => b.ok && b.value.header.partitionLeaderEpoch), [0, 0, 1, 3, -1], 'stamped in place');
  await log.truncateTo(5);
  assert.deepEqual([log.logEndOffset, log.leaderEpoch], [4, 0], 'the epoch 1 batch (4..5) contained offset 5');
  assert.deepEqual(epochPairs(log), [[0, 0]]);
  assert.deepEqual(decodeLeaderEpochs((await dir.readWhole(LEADER_EPOCH_FILE))!)?.entries, [{ epoch: 0, startOffset: 0 }], 'persisted');
  await log.append(batch(2), { leaderEpoch: 4 });
  assert.deepEqual(epochPairs(log), [[0, 0], [4, 4]]);
  await log.close();
  const clean = await PartitionLog.openDirectory(dir);
  assert.deepEqual([epochPairs(clean), clean.recoveryReport.leaderEpochs], [[[0, 0], [4, 4]], 'loaded']);
  await clean.append(batch(1), { leaderEpoch: 7 });
  const crashed = await PartitionLog.openDirectory(dir.crash());
  assert.deepEqual(epochPairs(crashed), [[0, 0], [4, 4], [7, 6]]);
  assert.deepEqual(crashed.endOffsetForEpoch(4), { epoch: 4, endOffset: 6 });
  await crashed.close();
  await clean.close();
});

test('leader epochs recover: a missing file is rebuilt, a lagging one completed from the scanned batches, one ahead of the log cut', async () => {
  const opts: LogOpenOptions = { limits: { maxBatchBytes: 2048, maxSegmentBytes: 4096 } };
  const { log, dir } = await openMemory(opts);
  for (let i = 0; i < 60; i++) await log.append(batch(2, { valueBytes: 100 }), { leaderEpoch: Math.floor(i / 20) * 2 });
  assert.ok(log.segmentInfo().length > 3, 'several segments');
  const want = [[0, 0], [2, 40], [4, 80]];
  assert.deepEqual(epochPairs(log), want);
  await log.close();
  await dir.remove(LEADER_EPOCH_FILE);
  const rebuilt = await PartitionLog.openDirectory(dir, opts);
  assert.deepEqual([epochPairs(rebuilt), rebuilt.recoveryReport.leaderEpochs], [want, 'rebuilt']);
  assert.ok(await dir.readWhole(LEADER_EPOCH_FILE), 'written at open');
  await rebuilt.append(batch(2, { valueBytes: 100 }), { leaderEpoch: 5 });
  // The file lags (a crash before the epoch-5 entry reached it): the crash recovery scan completes it.
  await dir.writeAtomic(LEADER_EPOCH_FILE, encodeLeaderEpochs([{ epoch: 0, startOffset: 0 }, { epoch: 2, startOffset: 40 }, { epoch: 4, startOffset: 80 }]));
  const completed = await PartitionLog.openDirectory(dir.crash(), opts);
  assert.deepEqual(epochPairs(completed), [...want, [5, 120]]);
  await completed.close();
  await rebuilt.close();
  // The file is ahead (the batch of epoch 9 never became durable): entries past the recovered end are dropped.
  const lazy = await PartitionLog.openDirectory(dir, { ...opts, flushIntervalMs: 60_000 });
  await lazy.append(batch(2, { valueBytes: 100 }), { leaderEpoch: 9 });
  assert.equal(lazy.leaderEpoch, 9);
  const crashed = dir.crash();
  const cut = await PartitionLog.openDirectory(crashed, opts);
  assert.deepEqual([cut.logEndOffset, epochPairs(cut)], [122, [...want, [5, 120]]]);
  await cut.close();
  await lazy.close();
  // Ahead and lagging at once: the lost epoch-9 entry goes first, then epoch 5 (seen in the scanned batches) comes back.
  await crashed.writeAtomic(LEADER_EPOCH_FILE, encodeLeaderEpochs([{ epoch: 0, startOffset: 0 }, { epoch: 2, startOffset: 40 }, { epoch: 4, startOffset: 80 }, { epoch: 9, startOffset: 122 }]));
  const both = await PartitionLog.openDirectory(crashed.crash(), opts);
  assert.deepEqual(epochPairs(both), [...want, [5, 120]]);
  await both.close();
});

test('leader epochs follow retention: the epoch covering the new log start starts there, also after reopen', async () => {
  let now = 1_000_000;
  const opts: LogOpenOptions = { nowMs: () => now, limits: { maxBatchBytes: 2048, maxSegmentBytes: 64 * 1024, segmentMs: 60_000 } };
  const { log, dir } = await openMemory(opts, new MemoryLogDirectory('memory:', () => now));
  for (const leaderEpoch of [1, 1, 2, 2]) {
    await log.append(batch(1), { leaderEpoch });
    now += 61_000;
  }
  assert.deepEqual(log.segmentInfo().map((s) => s.baseOffset), [0, 1, 2, 3]);
  assert.equal(await log.enforceRetention({ retentionBytes: 0 }), 3);
  assert.deepEqual([log.logStartOffset, epochPairs(log)], [3, [[2, 3]]]);
  await log.close();
  const reopened = await PartitionLog.openDirectory(dir, opts);
  assert.deepEqual(epochPairs(reopened), [[2, 3]]);
  assert.deepEqual(reopened.endOffsetForEpoch(1), { epoch: -1, endOffset: -1 }, 'an epoch wholly deleted by retention is unknown');
  await reopened.close();
});

/** Everything from `offset` to the end, read `maxBytes` at a time: "first-next hex" per answer's first batch, and the whole bytes. */
async function readThrough(log: PartitionLog, offset: number, maxBytes: number): Promise<string> {
  const parts: string[] = [];
  for (let at = offset; at < log.logEndOffset;) {
    const r = await log.read(at, maxBytes);
    assert.ok(r.nextOffset > at, `read at ${at} made progress`);
    parts.push(Buffer.from(r.batches).toString('hex'));
    at = r.nextOffset;
  }
  return parts.join('');
}

test('reads at the tail come from memory (the appended bytes themselves) and serve what the file serves, across truncations and segments', async () => {
  const dir = new MemoryLogDirectory();
  const options = { maxSegmentBytes: 4096, maxBatchBytes: 4096, tailCacheBytes: 8 * 1024 };
  const { log } = await openMemory(options, dir);
  const appended: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const b = batch(1 + (i % 4), { valueBytes: 100 });
    appended.push(b);
    await log.append(b);
  }
  const last = appended[appended.length - 1];
  const tail = await log.read(log.logEndOffset - 1, 1);
  assert.equal(tail.batches.buffer, last.buffer, 'the newest batch is answered from memory, no file read');
  await log.truncateTo(50);
  for (let i = 0; i < 10; i++) await log.append(batch(2, { valueBytes: 50 }));
  const probes = [0, 7, 49, 50, 51, log.logEndOffset - 3, log.logEndOffset - 1];
  const sizes = [1, 300, 1000, 5000, 20_000];
  const warm: string[] = [];
  for (const o of probes) for (const m of sizes) warm.push(`${o}/${m}: ${await readThrough(log, o, m)}`);
  assert.deepEqual((await log.read(log.logEndOffset, 1000)).batches.length, 0);
  await log.close();
  const cold = await PartitionLog.openDirectory(dir, { ...options, tailCacheBytes: 0 });
  const fromFile: string[] = [];
  for (const o of probes) for (const m of sizes) fromFile.push(`${o}/${m}: ${await readThrough(cold, o, m)}`);
  assert.deepEqual(warm, fromFile);
  await cold.close();
});
