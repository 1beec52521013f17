/**
 * Fuzz: ≥100,000 random and mutated inputs (bit flips, truncations,
 * splices of valid frames/batches, inserted bytes) through decodeFrame,
 * decodeRecordBatch (with and without CRC check) and iterateBatches. The
 * decoders must never throw; an accepted frame must re-encode to the same
 * bytes (the encoding is canonical). Seeded: the seed is printed, and
 * RUNNEL_FUZZ_SEED replays a run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { anyFrame } from './frame-arbitraries.ts';
import { decodeFrame, encodeFrame } from './frame-codec.ts';
import { decodeRecordBatch, encodeRecordBatch, iterateBatches } from './record-batch.ts';

const seed = Number(process.env.RUNNEL_FUZZ_SEED ?? Date.now() % 2 ** 31);
console.log(`# codec fuzz seed ${seed} (replay: RUNNEL_FUZZ_SEED=${seed})`);

/** xorshift32: deterministic, fast. */
function rng(s: number): () => number {
  let x = s | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}
const random = rng(seed);
const int = (n: number) => Math.floor(random() * n);

function randomBytes(max: number): Uint8Array {
  const b = new Uint8Array(int(max));
  for (let i = 0; i < b.length; i++) b[i] = int(256);
  return b;
}

function mutate(valid: Uint8Array[], keepKind: boolean): Uint8Array {
  const a = valid[int(valid.length)];
  switch (int(5)) {
    case 0: { // bit flips
      const b = a.slice();
      for (let n = 1 + int(4); n > 0 && b.length > 0; n--) b[keepKind ? 1 + int(b.length - 1) || 0 : int(b.length)] ^= 1 << int(8);
      return b;
    }
    case 1: return a.subarray(0, int(a.length + 1)); // truncation
    case 2: { // splice: prefix of one + suffix of another
      const b = valid[int(valid.length)];
      const cutA = int(a.length + 1);
      const cutB = int(b.length + 1);
      const out = new Uint8Array(cutA + b.length - cutB);
      out.set(a.subarray(0, cutA));
      out.set(b.subarray(cutB), cutA);
      return out;
    }
    case 3: { // insert or overwrite a run of 0xff / 0x80 (varint and length bombs)
      const b = a.slice();
      const at = int(b.length);
      b.fill(int(2) ? 0xff : 0x80, at, at + 1 + int(6));
      return b;
    }
    default: { // append garbage
      const extra = randomBytes(8);
      const out = new Uint8Array(a.length + extra.length);
      out.set(a);
      out.set(extra, a.length);
      return out;
    }
  }
}

test('decodeFrame never throws; accepted frames re-encode to the same bytes', () => {
  const valid = fc.sample(anyFrame, { numRuns: 600, seed }).map(encodeFrame);
  let accepted = 0;
  for (let i = 0; i < 150_000; i++) {
    const input = i % 4 === 0 ? randomBytes(64) : mutate(valid, i % 8 === 1);
    const decoded = decodeFrame(input, { maxArrayLength: 1000 });
    if (!decoded.ok) {
      assert.ok(decoded.code === 'INVALID_FRAME' || decoded.code === 'MESSAGE_TOO_LARGE', decoded.code);
      continue;
    }
    accepted++;
    assert.deepEqual(encodeFrame(decoded.value), input, `seed ${seed} input ${i}`);
  }
  assert.ok(accepted > 0, "the fuzzer must reach successful decodes too");
  console.log(`# decodeFrame: 150000 inputs, ${accepted} accepted`);
});

const recordArb = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 12 }), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
  headers: fc.array(fc.record({ key: fc.string({ maxLength: 6 }), value: fc.option(fc.uint8Array({ maxLength: 6 }), { nil: null }) }), { maxLength: 3 }),
  timestampMs: fc.integer({ min: 0, max: 2 ** 44 }),
});

test('decodeRecordBatch and iterateBatches never throw on mutated batches', () => {
  const valid = fc.sample(fc.array(recordArb, { minLength: 1, maxLength: 6 }), { numRuns: 300, seed }).map((records, i) => encodeRecordBatch({ baseOffset: i * 7, records }));
  let decodedUnchecked = 0;
  for (let i = 0; i < 100_000; i++) {
    const input = i % 5 === 0 ? randomBytes(160) : mutate(valid, false);
    const checked = decodeRecordBatch(input);
    if (checked.ok) assert.equal(checked.value.records.length, checked.value.header.recordCount);
    // Without the CRC gate the mutations reach the record parser.
    const unchecked = decodeRecordBatch(input, 0, { verifyCrc: false, maxHeadersPerRecord: 8 });
    if (unchecked.ok) {
      decodedUnchecked++;
      assert.equal(unchecked.value.records.length, unchecked.value.header.recordCount);
    }
    for (const batch of iterateBatches(input, { maxBatchBytes: 4096 })) if (!batch.ok) break;
  }
  assert.ok(decodedUnchecked > 0, "the fuzzer must reach successful decodes too");
  console.log(`# decodeRecordBatch: 100000 inputs, ${decodedUnchecked} decoded without the CRC gate`);
});
