import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordBatch, iterateBatches, setBaseOffset } from '@runnel/client/codec';
import { CHECKPOINT_FILE } from './checkpoint.ts';
import { MemoryLogDirectory } from './memory-segment-file.ts';
import { PartitionLog } from './partition-log.ts';
import { decideRecovery, scanChunk, type TailProblem } from './recovery.ts';
import { segmentFileName } from './segment-file.ts';

const batchAt = (offset: number, records = 2) => {
  const b = encodeRecordBatch({ records: Array.from({ length: records }, (_, i) => ({ value: Uint8Array.of(i, 1, 2, 3), timestampMs: 5 })) });
  setBaseOffset(b, 0, offset);
  return b;
};
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const opts = { maxBatchBytes: 1 << 20, verifyCrc: true };

test('scanChunk: table of tails', () => {
  const a = batchAt(0);
  const b = batchAt(2);
  const flipped = batchAt(2);
  flipped[flipped.length - 2] ^= 1;
  const zeros = new Uint8Array(64);
  const cases: { name: string; bytes: Uint8Array; eof: boolean; batches: number; problem: TailProblem | null; at?: number; needsMore?: boolean }[] = [
    { name: 'clean', bytes: concat(a, b), eof: true, batches: 2, problem: null },
    { name: 'empty', bytes: new Uint8Array(0), eof: true, batches: 0, problem: null },
    { name: 'torn header', bytes: concat(a, b.subarray(0, 7)), eof: true, batches: 1, problem: 'torn-header', at: a.length },
    { name: 'torn body', bytes: concat(a, b.subarray(0, b.length - 1)), eof: true, batches: 1, problem: 'torn-body', at: a.length },
    { name: 'partial batch mid-file needs more', bytes: concat(a, b.subarray(0, 70)), eof: false, batches: 1, problem: null, needsMore: true },
    { name: 'CRC flip', bytes: concat(a, flipped, batchAt(4)), eof: true, batches: 1, problem: 'corrupt-crc', at: a.length },
    { name: 'zero-filled tail', bytes: concat(a, zeros), eof: true, batches: 1, problem: 'bad-structure', at: a.length },
    { name: 'offset gap', bytes: concat(a, batchAt(3)), eof: true, batches: 1, problem: 'offset-gap', at: a.length },
  ];
  for (const c of cases) {
    const r = scanChunk(c.bytes, 1000, 0, c.eof, opts);
    assert.equal(r.batches.length, c.batches, c.name);
    assert.equal(r.problem?.reason ?? null, c.problem, c.name);
    if (c.at !== undefined) assert.equal(r.problem?.position, 1000 + c.at, c.name);
    if (c.needsMore) assert.deepEqual([r.needsMore, r.consumedBytes], [true, a.length], c.name);
  }
});

test('decideRecovery: clean, from the recovery point, or everything', () => {
  assert.deepEqual(decideRecovery([0, 100, 200], { recoveryPoint: 300, isCleanShutdown: true }), { kind: 'clean' });
  assert.deepEqual(decideRecovery([0, 100, 200], { recoveryPoint: 200, isCleanShutdown: false }), { kind: 'validate', firstSegment: 2 });
  assert.deepEqual(decideRecovery([0, 100, 200], { recoveryPoint: 150, isCleanShutdown: false }), { kind: 'validate', firstSegment: 1 });
  assert.deepEqual(decideRecovery([0, 100, 200], null), { kind: 'validate', firstSegment: 0 });
  assert.deepEqual(decideRecovery([], null), { kind: 'validate', firstSegment: 0 });
});

/** A log of `n` 2-record batches over several segments; returns the directory after a crash (not closed). */
async function crashedLog(n: number, clean = false) {
  const dir = new MemoryLogDirectory();
  const log = await PartitionLog.openDirectory(dir, { limits: { maxBatchBytes: 2048, maxSegmentBytes: 64 * 1024, indexIntervalBytes: 512 } });
  for (let i = 0; i < n; i++) await log.append(encodeRecordBatch({ records: [{ value: new Uint8Array(200) }, { value: new Uint8Array(200) }] }));
  if (clean) await log.close();
  const names = (await dir.list()).filter((x) => x.endsWith('.log')).sort();
  return { dir: clean ? dir : dir.crash(), active: names[names.length - 1], sealed: names[0] };
}

async function reopen(dir: MemoryLogDirectory) {
  const log = await PartitionLog.openDirectory(dir, { limits: { maxBatchBytes: 2048, maxSegmentBytes: 64 * 1024, indexIntervalBytes: 512 } });
  let offset = log.logStartOffset;
  while (offset < log.highWatermark) {
    const r = await log.read(offset, 1 << 16);
    for (const b of iterateBatches(r.batches)) assert.ok(b.ok, 'every served batch passes its CRC');
    assert.equal(r.firstOffset, offset, 'contiguous');
    offset = r.nextOffset;
  }
  return log;
}

test('recovery cases on open', async () => {
  const garbage = (bytes: number[]) => Uint8Array.from(bytes);
  const cases: { name: string; prepare: () => Promise<MemoryLogDirectory>; leo: number; plan: string; problem: TailProblem | null }[] = [
    { name: 'clean shutdown', prepare: async () => (await crashedLog(300, true)).dir, leo: 600, plan: 'clean', problem: null },
    { name: 'crash, intact tail', prepare: async () => (await crashedLog(300)).dir, leo: 600, plan: 'validate', problem: null },
    { name: 'empty log', prepare: async () => (await crashedLog(0)).dir, leo: 0, plan: 'validate', problem: null },
    {
      name: 'torn header', leo: 600, plan: 'validate', problem: 'torn-header',
      prepare: async () => { const c = await crashedLog(300); const len = (await c.dir.readWhole(c.active))!.length; c.dir.corrupt(c.active, len, garbage([0, 0, 0, 0, 0, 0, 1])); return c.dir; },
    },
    {
      name: 'torn body', leo: 600, plan: 'validate', problem: 'torn-body',
      prepare: async () => { const c = await crashedLog(300); const len = (await c.dir.readWhole(c.active))!.length; const b = batchAt(600); c.dir.corrupt(c.active, len, b.subarray(0, b.length - 3)); return c.dir; },
    },
    {
      name: 'CRC flip mid-segment truncates there', leo: 582, plan: 'validate', problem: 'corrupt-crc',
      prepare: async () => {
        const c = await crashedLog(300);
        const bytes = (await c.dir.readWhole(c.active))!;
        const batches = [...iterateBatches(bytes)].map((b) => (b.ok ? b.value : null))!;
        const victim = batches.find((b) => b!.header.baseOffset === 582)!;
        c.dir.corrupt(c.active, victim.at + 100, Uint8Array.of(bytes[victim.at + 100] ^ 0xff));
        return c.dir;
      },
    },
    {
      name: 'missing index of a sealed segment is rebuilt', leo: 600, plan: 'clean', problem: null,
      prepare: async () => { const c = await crashedLog(300, true); await c.dir.remove(c.sealed.replace('.log', '.index')); return c.dir; },
    },
    {
      name: 'no checkpoint validates every segment', leo: 600, plan: 'validate', problem: null,
      prepare: async () => { const c = await crashedLog(300); await c.dir.remove(CHECKPOINT_FILE); return c.dir; },
    },
  ];
  for (const c of cases) {
    const log = await reopen(await c.prepare());
    assert.equal(log.logEndOffset, c.leo, c.name);
    assert.equal(log.recoveryReport.plan, c.plan, c.name);
    assert.equal(log.recoveryReport.problem?.reason ?? null, c.problem, c.name);
    if (c.name.startsWith('missing index')) assert.equal(log.recoveryReport.rebuiltIndexes, 1, c.name);
    if (c.name.startsWith('no checkpoint')) assert.ok(log.recoveryReport.validatedSegments > 1, c.name);
    if (c.name.startsWith('crash')) assert.equal(log.recoveryReport.validatedSegments, 1, `${c.name}: only the active segment`);
    const next = await log.append(encodeRecordBatch({ records: [{ value: Uint8Array.of(1) }] }));
    assert.equal(next.baseOffset, c.leo, `${c.name}: appends continue at the recovered end`);
    await log.close();
  }
});

test('a corrupt batch in a trusted sealed segment is never served', async () => {
  const c = await crashedLog(300, true);
  const bytes = (await c.dir.readWhole(c.sealed))!;
  c.dir.corrupt(c.sealed, 5000, Uint8Array.of(bytes[5000] ^ 0xff));
  const log = await PartitionLog.openDirectory(c.dir, { limits: { maxBatchBytes: 2048, maxSegmentBytes: 64 * 1024, indexIntervalBytes: 512 } });
  await assert.rejects(log.read(0, 1 << 20), (e: { errorName?: string }) => e.errorName === 'KAFKA_STORAGE_ERROR');
  assert.equal(segmentFileName(0, '.log'), c.sealed);
  await log.close();
});
