/**
 * RecordBatch v2: round trips, property tests, cross-checks against kafkajs's
 * independent encoder/decoder, and rejection of bad batches with typed errors.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  BATCH_HEADER_BYTES, BatchField, decodeRecordBatch, encodeRecordBatch, forEachRecord, iterateBatches, readBaseOffset,
  readBatchHeader, setBaseOffset, setPartitionLeaderEpoch, validateBatch, validateRecords, verifyBatchCrc, type RecordInput,
} from './record-batch.ts';

const require = createRequire(import.meta.url);
const Long = require('kafkajs/src/utils/long');
const KafkaEncoder = require('kafkajs/src/protocol/encoder');
const KafkaDecoder = require('kafkajs/src/protocol/decoder');
const { RecordBatch: kafkaRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0');
const kafkaRecord = require('kafkajs/src/protocol/recordBatch/record/v0');
const kafkaDecodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder');

const te = new TextEncoder();
const bytes = (s: string) => te.encode(s);

const headerArb = fc.record({ key: fc.string({ maxLength: 12, unit: 'binary' }), value: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }) });
const recordArb = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null }),
  headers: fc.array(headerArb, { maxLength: 4 }),
  timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
});
const batchArb = fc.record({
  baseOffset: fc.integer({ min: 0, max: 2 ** 52 }),
  producerId: fc.integer({ min: -1, max: 2 ** 50 }),
  producerEpoch: fc.integer({ min: -1, max: 32767 }),
  baseSequence: fc.integer({ min: -1, max: 2 ** 31 - 1 }),
  partitionLeaderEpoch: fc.integer({ min: -1, max: 2 ** 31 - 1 }),
  records: fc.array(recordArb, { minLength: 1, maxLength: 20 }),
});

function expectError(result: { ok: boolean }, code: string): void {
  assert.equal(result.ok, false);
  assert.equal((result as unknown as { code: string }).code, code);
}

test('round trip keeps every field (property)', () => {
  fc.assert(fc.property(batchArb, (input) => {
    const encoded = encodeRecordBatch(input);
    const decoded = decodeRecordBatch(encoded, 0, { crc: (b, s, e) => nativeCrc32c(Buffer.from(b.buffer, b.byteOffset + s, e - s)) });
    assert.ok(decoded.ok, !decoded.ok ? decoded.message : '');
    const { header, records } = decoded.value;
    assert.equal(header.totalBytes, encoded.length);
    assert.equal(header.baseOffset, input.baseOffset);
    assert.equal(header.producerId, input.producerId);
    assert.equal(header.producerEpoch, input.producerEpoch);
    assert.equal(header.baseSequence, input.baseSequence);
    assert.equal(header.partitionLeaderEpoch, input.partitionLeaderEpoch);
    assert.equal(header.recordCount, input.records.length);
    assert.equal(header.lastOffsetDelta, input.records.length - 1);
    assert.equal(header.baseTimestamp, input.records[0].timestampMs);
    assert.equal(header.maxTimestamp, Math.max(...input.records.map((r) => r.timestampMs)));
    records.forEach((r, i) => {
      const want = input.records[i];
      assert.equal(r.offset, input.baseOffset + i);
      assert.equal(r.timestampMs, want.timestampMs);
      assert.deepEqual(r.key === null ? null : [...r.key], want.key === null ? null : [...want.key]);
      assert.deepEqual(r.value === null ? null : [...r.value], want.value === null ? null : [...want.value]);
      assert.deepEqual(r.headers.map((h) => [h.key, h.value && [...h.value]]), want.headers.map((h) => [new TextDecoder('utf-8', { ignoreBOM: true }).decode(te.encode(h.key)) /* lone surrogates become U+FFFD; a leading U+FEFF is part of the key */, h.value && [...h.value]]));
    });
  }), { numRuns: 400 });
});

test('decoded values are views into the batch (no copies)', () => {
  const encoded = encodeRecordBatch({ records: [{ key: bytes('k'), value: bytes('value'), timestampMs: 1 }] });
  const decoded = decodeRecordBatch(encoded);
  assert.ok(decoded.ok);
  assert.equal(decoded.value.records[0].value!.buffer, encoded.buffer);
});

test('offsetDelta gaps (compacted batch) and explicit timestamps decode', () => {
  const encoded = encodeRecordBatch({ baseOffset: 100, baseTimestamp: 1000, records: [{ value: bytes('a'), offsetDelta: 0 }, { value: bytes('b'), offsetDelta: 5, timestampMs: 900 }] });
  const decoded = decodeRecordBatch(encoded);
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.value.records.map((r) => [r.offset, r.timestampMs]), [[100, 1000], [105, 900]]);
  assert.equal(decoded.value.header.lastOffsetDelta, 5);
  assert.equal(decoded.value.header.recordCount, 2);
});

test('forEachRecord visits every record with a reused view', () => {
  const encoded = encodeRecordBatch({ baseOffset: 7, records: [{ value: bytes('xy'), timestampMs: 5 }, { key: bytes('k'), value: null, timestampMs: 6 }] });
  const header = validateBatch(encoded);
  assert.ok(header.ok);
  const seen: unknown[] = [];
  const walked = forEachRecord(encoded, 0, header.value, (r) => seen.push([r.index, r.offset, r.timestampMs, r.keyLength, r.valueLength]));
  assert.deepEqual(walked, { ok: true, value: 2 });
  assert.deepEqual(seen, [[0, 7, 5, -1, 2], [1, 8, 6, 1, -1]]);
});

async function encodeWithKafkajs(input: { baseOffset: number; records: { key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer>; timestampMs: number }[] }): Promise<Uint8Array> {
  const first = input.records[0].timestampMs;
  const records = input.records.map((r, i) => kafkaRecord({ offsetDelta: i, timestampDelta: r.timestampMs - first, key: r.key, value: r.value, headers: r.headers }));
  const encoder: { buffer: Buffer } = await kafkaRecordBatch({
    firstOffset: Long.fromValue(input.baseOffset), firstTimestamp: first,
    maxTimestamp: Math.max(...input.records.map((r) => r.timestampMs)),
    lastOffsetDelta: input.records.length - 1, producerId: Long.fromValue(-1), producerEpoch: 0, firstSequence: 0, records,
  });
  return new Uint8Array(encoder.buffer);
}

const kafkajsRecordArb = fc.record({
  key: fc.option(fc.uint8Array({ minLength: 1, maxLength: 30 }).map((b) => Buffer.from(b)), { nil: null }),
  value: fc.uint8Array({ minLength: 1, maxLength: 100 }).map((b) => Buffer.from(b)),
  headers: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9-]{0,7}$/).filter((k) => !(k in Object.prototype)), fc.uint8Array({ minLength: 1, maxLength: 10 }).map((b) => Buffer.from(b)), { maxKeys: 3 }).map((d) => ({ ...d })),
  timestampMs: fc.integer({ min: 1, max: 2 ** 42 }),
});

test('kafkajs encodes, Runnel decodes (CRC and every field agree)', async () => {
  await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 40 }), fc.array(kafkajsRecordArb, { minLength: 1, maxLength: 10 }), async (baseOffset, input) => {
    const encoded = await encodeWithKafkajs({ baseOffset, records: input });
    const decoded = decodeRecordBatch(encoded);
    assert.ok(decoded.ok, !decoded.ok ? decoded.message : '');
    assert.equal(decoded.value.records.length, input.length);
    decoded.value.records.forEach((r, i) => {
      assert.equal(r.offset, baseOffset + i);
      assert.equal(r.timestampMs, input[i].timestampMs);
      assert.deepEqual(r.key && Buffer.from(r.key), input[i].key);
      assert.deepEqual(r.value && Buffer.from(r.value), input[i].value);
      assert.deepEqual(Object.fromEntries(r.headers.map((h) => [h.key, Buffer.from(h.value!)])), input[i].headers);
    });
  }), { numRuns: 200 });
});

test('Runnel encodes, kafkajs decodes (every field agrees)', async () => {
  await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 40 }), fc.array(kafkajsRecordArb, { minLength: 1, maxLength: 10 }), async (baseOffset, input) => {
    const encoded = encodeRecordBatch({
      baseOffset, records: input.map((r) => ({ key: r.key, value: r.value, timestampMs: r.timestampMs, headers: Object.entries(r.headers).map(([key, value]) => ({ key, value })) })),
    });
    const decoded = await kafkaDecodeBatch(new KafkaDecoder(Buffer.from(encoded)));
    assert.equal(decoded.records.length, input.length);
    assert.equal(decoded.firstOffset, String(baseOffset));
    decoded.records.forEach((r: { offset: string; timestamp: string; key: Buffer | null; value: Buffer; headers: Record<string, Buffer> }, i: number) => {
      assert.equal(r.offset, String(baseOffset + i));
      assert.equal(r.timestamp, String(input[i].timestampMs));
      assert.deepEqual(r.key, input[i].key);
      assert.deepEqual(r.value, input[i].value);
      assert.deepEqual(r.headers, input[i].headers);
    });
    // kafkajs does not check CRCs: compare ours with kafkajs's crc32C module instead.
    const kafkaCrc = require('kafkajs/src/protocol/recordBatch/crc32C')(Buffer.from(encoded.subarray(21)));
    assert.equal(readBatchHeader(encoded).ok && (readBatchHeader(encoded) as { value: { crc: number } }).value.crc, kafkaCrc >>> 0);
  }), { numRuns: 200 });
});

test('baseOffset and partitionLeaderEpoch are rewritten in place without breaking the CRC', () => {
  const encoded = encodeRecordBatch({ records: [{ value: bytes('a'), timestampMs: 1 }, { value: bytes('b'), timestampMs: 2 }] });
  setBaseOffset(encoded, 0, 2 ** 40 + 3);
  setPartitionLeaderEpoch(encoded, 0, 9);
  assert.equal(readBaseOffset(encoded, 0), 2 ** 40 + 3);
  const decoded = decodeRecordBatch(encoded);
  assert.ok(decoded.ok);
  assert.equal(decoded.value.header.partitionLeaderEpoch, 9);
  assert.deepEqual(decoded.value.records.map((r) => r.offset), [2 ** 40 + 3, 2 ** 40 + 4]);
});

test('iterateBatches walks concatenated batches and stops at the first bad one', () => {
  const a = encodeRecordBatch({ baseOffset: 0, records: [{ value: bytes('a'), timestampMs: 1 }] });
  const b = encodeRecordBatch({ baseOffset: 1, records: [{ value: bytes('bb'), timestampMs: 2 }, { value: bytes('c'), timestampMs: 2 }] });
  const all = new Uint8Array(a.length * 2 + b.length);
  all.set(a, 0);
  all.set(b, a.length);
  all.set(a, a.length + b.length);
  all[a.length + b.length + 40] ^= 1; // corrupt the third batch's body
  const seen = [...iterateBatches(all)];
  assert.equal(seen.length, 3);
  assert.deepEqual(seen.slice(0, 2).map((x) => x.ok && x.value.at), [0, a.length]);
  expectError(seen[2], 'CORRUPT_MESSAGE');
  assert.equal([...iterateBatches(all.subarray(0, a.length + 5))].at(-1)!.ok, false); // torn tail
});

const sample = () => encodeRecordBatch({ records: [{ key: bytes('key'), value: bytes('value'), timestampMs: 10, headers: [{ key: 'h', value: bytes('v') }] }, { value: bytes('2'), timestampMs: 11 }] });

test('wrong CRC → CORRUPT_MESSAGE from validateBatch, not from readBatchHeader', () => {
  const b = sample();
  b[b.length - 1] ^= 0x40;
  assert.equal(readBatchHeader(b).ok, true);
  const header = readBatchHeader(b);
  assert.ok(header.ok);
  assert.equal(verifyBatchCrc(b, 0, header.value), false);
  expectError(validateBatch(b), 'CORRUPT_MESSAGE');
  expectError(decodeRecordBatch(b), 'CORRUPT_MESSAGE');
});

test('truncated lengths, bad magic, impossible counts and compression are typed errors', () => {
  const b = sample();
  for (let cut = 0; cut < b.length; cut++) expectError(readBatchHeader(b.subarray(0, cut)), 'CORRUPT_MESSAGE');
  const withField = (at: number, write: (x: Uint8Array) => void) => {
    const copy = b.slice();
    write(copy.subarray(at));
    return copy;
  };
  const int32 = (v: number) => (x: Uint8Array) => new DataView(x.buffer, x.byteOffset).setInt32(0, v);
  expectError(readBatchHeader(withField(BatchField.magic, (x) => { x[0] = 1; })), 'CORRUPT_MESSAGE');
  expectError(readBatchHeader(withField(BatchField.recordCount, int32(-1))), 'CORRUPT_MESSAGE');
  expectError(readBatchHeader(withField(BatchField.recordCount, int32(3))), 'CORRUPT_MESSAGE'); // > lastOffsetDelta + 1
  const tooMany = withField(BatchField.lastOffsetDelta, int32(5000));
  int32(1000)(tooMany.subarray(BatchField.recordCount)); // consistent with lastOffsetDelta, cannot fit the bytes
  expectError(readBatchHeader(tooMany), 'CORRUPT_MESSAGE');
  expectError(readBatchHeader(withField(BatchField.lastOffsetDelta, int32(-1))), 'CORRUPT_MESSAGE');
  expectError(readBatchHeader(withField(BatchField.batchLength, int32(10))), 'CORRUPT_MESSAGE');
  expectError(readBatchHeader(withField(BatchField.batchLength, int32(-5))), 'CORRUPT_MESSAGE');
  expectError(readBatchHeader(withField(BatchField.attributes, (x) => { x[1] = 2; })), 'UNSUPPORTED_COMPRESSION_TYPE');
  expectError(readBatchHeader(withField(BatchField.baseOffset, (x) => { x[0] = 0x80; })), 'CORRUPT_MESSAGE');
  expectError(readBatchHeader(b, 0, { maxBatchBytes: b.length - 1 }), 'MESSAGE_TOO_LARGE');
  assert.equal(readBatchHeader(b, 0, { maxBatchBytes: b.length }).ok, true);
  expectError(readBatchHeader(b, b.length + 1), 'CORRUPT_MESSAGE');
});

test('impossible record structure behind a valid CRC is rejected by decode and validateRecords', () => {
  const b = sample();
  // Make the first record claim a huge length, then re-checksum so only the structure is wrong.
  b[BATCH_HEADER_BYTES] = 0x7e; // varint 63: runs past the batch
  const fixCrc = (x: Uint8Array) => new DataView(x.buffer).setUint32(BatchField.crc, nativeCrc32c(Buffer.from(x.subarray(21))) >>> 0);
  fixCrc(b);
  assert.equal(validateBatch(b).ok, true);
  expectError(decodeRecordBatch(b), 'CORRUPT_MESSAGE');
  expectError(validateRecords(b), 'CORRUPT_MESSAGE');
  const c = sample();
  c[BATCH_HEADER_BYTES + 3] = 0x01; // first record: length, attributes, timestampDelta, then offsetDelta := −1
  fixCrc(c);
  expectError(decodeRecordBatch(c), 'CORRUPT_MESSAGE');
  const d = sample();
  d.set([0xff, 0xff, 0xff, 0xff, 0xff], BATCH_HEADER_BYTES + 2); // over-long varint as timestampDelta
  fixCrc(d);
  expectError(decodeRecordBatch(d), 'CORRUPT_MESSAGE');
});

test('header count above maxHeadersPerRecord → MESSAGE_TOO_LARGE', () => {
  expectError(decodeRecordBatch(sample(), 0, { maxHeadersPerRecord: 0 }), 'MESSAGE_TOO_LARGE');
  assert.equal(decodeRecordBatch(sample(), 0, { maxHeadersPerRecord: 1 }).ok, true);
});

test('encoder misuse is an assertion (programmer error)', () => {
  assert.throws(() => encodeRecordBatch({ records: [] }), /at least one record/);
  assert.throws(() => encodeRecordBatch({ attributes: 1, records: [{ value: null }] }), /compression/);
  const records: RecordInput[] = [{ value: null, offsetDelta: 3 }, { value: null, offsetDelta: 3 }];
  assert.throws(() => encodeRecordBatch({ records }), /offsetDelta/);
});
