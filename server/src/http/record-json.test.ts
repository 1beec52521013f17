import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { setBaseOffset } from '@runnel/client/codec';
import { validateLimits } from '../limits.ts';
import { bodyFormatOf, parseProduceBody, planBatches, recordsFromBatches, type ProduceRecord } from './record-json.ts';

const limits = validateLimits({});

const recordArb: fc.Arbitrary<ProduceRecord> = fc.record({
  key: fc.option(fc.string(), { nil: null }),
  value: fc.jsonValue().filter((v) => v !== undefined),
  headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string(), { maxKeys: 3 }),
}, { requiredKeys: ['value'] });

/** Stores planned batches back to back per partition, assigning offsets as a log would. */
function store(batches: { partition: number; batch: Uint8Array }[], partition: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const b of batches.filter((x) => x.partition === partition)) {
    const copy = b.batch.slice();
    setBaseOffset(copy, 0, offset);
    offset += new DataView(copy.buffer).getInt32(57); // recordCount is the last header field (byte 57)
    parts.push(copy);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test('property: JSON records → batches → JSON records round-trips key, value (JSON semantics) and headers in order', () => {
  fc.assert(fc.property(fc.array(recordArb, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 4 }), (records, partitions) => {
    const planned = planBatches(records, partitions, 0, 1_700_000_000_000, limits);
    assert.ok(planned.ok);
    for (let p = 0; p < partitions; p++) {
      const expected: ProduceRecord[] = planned.value.filter((b) => b.partition === p).flatMap((b) => b.indexes).map((i) => records[i]);
      const read = recordsFromBatches(store(planned.value, p), 0, 1000, Number.MAX_SAFE_INTEGER);
      assert.ok(read.ok);
      assert.deepEqual(read.value.records.map((r) => r.offset), expected.map((_, i) => i));
      const json = (v: unknown) => JSON.parse(JSON.stringify(v));
      assert.deepEqual(json(read.value.records.map((r) => [r.key, r.value, r.headers])),
        json(expected.map((r) => [r.key ?? null, r.value, r.headers ?? {}])));
    }
  }), { numRuns: 200 });
});

test('reads skip offsets below the request, stop at the high watermark and at maxRecords', () => {
  const records = Array.from({ length: 10 }, (_, i) => ({ value: i }));
  const planned = planBatches(records, 1, 0, 1, limits);
  assert.ok(planned.ok);
  const bytes = store(planned.value, 0);
  const read = recordsFromBatches(bytes, 3, 4, 6);
  assert.ok(read.ok);
  assert.deepEqual(read.value.records.map((r) => r.value), [3, 4, 5]);
  assert.equal(read.value.lastOffset, 5);
  const capped = recordsFromBatches(bytes, 0, 2, 100);
  assert.ok(capped.ok);
  assert.deepEqual(capped.value.records.map((r) => r.offset), [0, 1]);
});

test('batches are split to respect maxBatchBytes and maxRecordsPerBatch; one oversize record is refused', () => {
  const small = validateLimits({ maxBatchBytes: 1024, maxRecordsPerBatch: 3, maxFrameBytes: 4096, maxBackpressureBytes: 65536, maxReadBytes: 1024 });
  const planned = planBatches(Array.from({ length: 10 }, (_, i) => ({ value: 'x'.repeat(200) + i })), 1, 0, 1, small);
  assert.ok(planned.ok);
  assert.ok(planned.value.every((b) => b.batch.byteLength <= 1024 && b.indexes.length <= 3));
  assert.deepEqual(planned.value.flatMap((b) => b.indexes), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const tooBig = planBatches([{ value: 'y'.repeat(2000) }], 1, 0, 1, small);
  assert.deepEqual(tooBig.ok ? null : tooBig.code, 'MESSAGE_TOO_LARGE');
});

test('body formats and non-JSON stored values', () => {
  assert.equal(bodyFormatOf('application/json; charset=utf-8'), 'json');
  assert.equal(bodyFormatOf('application/cloudevents+json'), 'json');
  assert.equal(bodyFormatOf('application/x-ndjson'), 'ndjson');
  assert.equal(bodyFormatOf('text/plain;charset=UTF-8'), 'text');
  assert.equal(bodyFormatOf(undefined), 'text');
  assert.equal(bodyFormatOf('application/vnd.runnel.recordbatch'), 'batch');
  assert.equal(bodyFormatOf('multipart/form-data'), null);
  const ndjsonAsText = parseProduceBody('text', new TextEncoder().encode('{"value":1}\n{"value":2}'), limits);
  assert.ok(ndjsonAsText.ok);
  assert.equal(ndjsonAsText.value.length, 2);
});
