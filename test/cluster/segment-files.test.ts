/**
 * Segment files on a real disk: stored batches read back in order across
 * segments; a truncated tail stops the reader at the torn batch; a flipped bit
 * under the CRC stops it at that batch; a flipped bit in partitionLeaderEpoch
 * (outside the CRC) passes it, as the header comment warns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchField, encodeRecordBatch, readBatchHeader } from '@runnel/client/codec';
import { flipTailBit, readStoredBatches, segmentFiles, tailSegment, truncateTail } from './segment-files.ts';

const encoder = new TextEncoder();
const batch = (baseOffset: number, n: number): Uint8Array => encodeRecordBatch({
  baseOffset, partitionLeaderEpoch: 3,
  records: Array.from({ length: n }, (_, i) => ({ value: encoder.encode(JSON.stringify(`v${baseOffset + i}`)), timestampMs: 1_700_000_000_000 + i })),
});
const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const segmentName = (base: number) => `${String(base).padStart(20, '0')}.log`;

/** A partition dir with segments [0..9] (5 batches of 2) and [10..15] (3 batches of 2). */
async function partitionDir(): Promise<{ dir: string; first: Uint8Array[]; second: Uint8Array[]; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'runnel-segments-'));
  const dir = join(root, 'topics', 'tid', '0');
  await mkdir(dir, { recursive: true });
  const first = [0, 2, 4, 6, 8].map((o) => batch(o, 2));
  const second = [10, 12, 14].map((o) => batch(o, 2));
  await writeFile(join(dir, segmentName(10)), concat(second));
  await writeFile(join(dir, segmentName(0)), concat(first));
  await writeFile(join(dir, `${String(0).padStart(20, '0')}.index`), new Uint8Array(8));
  return { dir, first, second, cleanup: () => rm(root, { recursive: true, force: true }) };
}

test('segments are listed oldest first and read back batch by batch, byte for byte', async () => {
  const { dir, first, second, cleanup } = await partitionDir();
  try {
    const files = await segmentFiles(dir);
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)), [segmentName(0), segmentName(10)]);
    const batches = await readStoredBatches(files);
    assert.deepEqual(batches.map((b) => [b.baseOffset, b.lastOffset]), [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11], [12, 13], [14, 15]]);
    assert.deepEqual(batches.map((b) => b.bytes), [...first, ...second]);
    assert.deepEqual(await segmentFiles(join(dir, 'missing')), []);
  } finally {
    await cleanup();
  }
});

test('a truncated tail: the reader stops at the torn batch', async () => {
  const { dir, cleanup } = await partitionDir();
  try {
    const files = await segmentFiles(dir);
    const tail = (await tailSegment(files))!;
    assert.equal(tail, files[1]);
    const { from, to } = await truncateTail(tail, 0, 4096); // pick 0: one byte
    assert.equal(to, from - 1);
    assert.equal((await stat(tail)).size, to);
    assert.deepEqual((await readStoredBatches(files)).map((b) => b.baseOffset), [0, 2, 4, 6, 8, 10, 12]);
    const more = await truncateTail(tail, 0.999, 4096); // nearly all of what is left (the window is the file)
    assert.ok(more.to < 5, `left ${more.to} bytes`);
    assert.deepEqual((await readStoredBatches(files)).map((b) => b.baseOffset), [0, 2, 4, 6, 8]);
  } finally {
    await cleanup();
  }
});

test('an empty last segment: the tail is the one before', async () => {
  const { dir, cleanup } = await partitionDir();
  try {
    await writeFile(join(dir, segmentName(16)), new Uint8Array(0));
    const files = await segmentFiles(dir);
    assert.equal(files.length, 3);
    assert.equal(await tailSegment(files), files[1]);
  } finally {
    await cleanup();
  }
});

test('a flipped bit under the CRC: the reader stops before that batch', async () => {
  const { dir, cleanup } = await partitionDir();
  try {
    const files = await segmentFiles(dir);
    const { position, bit, size } = await flipTailBit(files[1], 0, 4096); // pick 0: the last byte, bit 0
    assert.deepEqual({ position, bit }, { position: size - 1, bit: 0 });
    assert.deepEqual((await readStoredBatches(files)).map((b) => b.baseOffset), [0, 2, 4, 6, 8, 10, 12]);
  } finally {
    await cleanup();
  }
});

test('a flipped bit in partitionLeaderEpoch passes the CRC: the batch reads back with another epoch', async () => {
  const { dir, second, cleanup } = await partitionDir();
  try {
    const files = await segmentFiles(dir);
    const size = (await stat(files[1])).size;
    const lastStart = size - second[2].length;
    const target = lastStart + BatchField.partitionLeaderEpoch + 3; // the epoch's low byte
    const pick = (size - 1 - target + 0.5) / size;
    const flipped = await flipTailBit(files[1], pick, 1 << 20);
    assert.equal(flipped.position, target);
    const batches = await readStoredBatches(files);
    assert.equal(batches.length, 8, 'the CRC does not cover the epoch');
    const header = readBatchHeader(batches[7].bytes, 0);
    assert.ok(header.ok);
    assert.equal(header.value.partitionLeaderEpoch, 3 ^ (1 << flipped.bit));
  } finally {
    await cleanup();
  }
});
