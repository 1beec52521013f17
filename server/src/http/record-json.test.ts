import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeRecordBatch, setBaseOffset } from '@runnel/client/codec';
import { validateLimits } from '../limits.ts';
import { bodyFormatOf, parseProduceBody, planBatches, recordsFromBatches, scanJson, type ProduceRecord } from './record-json.ts';

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
      const read = recordsFromBatches(store(planned.value, p), 0, 1000, Number.MAX_SAFE_INTEGER, limits);
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
  const read = recordsFromBatches(bytes, 3, 4, 6, limits);
  assert.ok(read.ok);
  assert.deepEqual(read.value.records.map((r) => r.value), [3, 4, 5]);
  assert.equal(read.value.lastOffset, 5);
  const capped = recordsFromBatches(bytes, 0, 2, 100, limits);
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

/** Reference depth by recursion (fast-check's values are shallow). */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (typeof v === 'object' && v !== null) return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

function longestString(v: unknown): number {
  const enc = new TextEncoder();
  if (typeof v === 'string') return enc.encode(JSON.stringify(v)).length - 2;
  if (Array.isArray(v)) return Math.max(0, ...v.map(longestString));
  if (typeof v === 'object' && v !== null) return Math.max(0, ...Object.entries(v).flatMap(([k, x]) => [longestString(k), longestString(x)]));
  return 0;
}

test('property: scanJson finds the exact depth and longest string (as written) of any JSON text, without recursion', () => {
  const enc = new TextEncoder();
  fc.assert(fc.property(fc.jsonValue(), fc.nat({ max: 8 }), (value, slack) => {
    const bytes = enc.encode(JSON.stringify(value));
    const depth = depthOf(value);
    const longest = longestString(value);
    assert.deepEqual(scanJson(bytes, depth + slack, longest + slack), { ok: true, depth });
    if (depth > 0) assert.deepEqual(scanJson(bytes, depth - 1, longest), { ok: false, exceeded: 'maxJsonDepth' });
    if (longest > 0) assert.deepEqual(scanJson(bytes, depth, longest - 1), { ok: false, exceeded: 'maxJsonStringBytes' });
  }), { numRuns: 500 });
  const deep = enc.encode('['.repeat(1_000_000) + ']'.repeat(1_000_000));
  assert.deepEqual(scanJson(deep, 64, 1024), { ok: false, exceeded: 'maxJsonDepth' });
  assert.deepEqual(scanJson(deep, 2_000_000, 1024), { ok: true, depth: 1_000_000 });
  // Escapes: \\ then " ends the string, \" does not; brackets inside strings do not count.
  assert.deepEqual(scanJson(enc.encode(String.raw`["\\", "\"[[[", "[{"]`), 1, 10), { ok: true, depth: 1 });
  assert.deepEqual(scanJson(enc.encode('"unterminated [[['), 0, 100), { ok: true, depth: 0 });
  assert.deepEqual(scanJson(enc.encode('"unterminated [[['), 0, 5), { ok: false, exceeded: 'maxJsonStringBytes' });
});

test('degraded values: not JSON and too deep as text, invalid UTF-8 as base64 (lossless), null stays null', () => {
  const enc = new TextEncoder();
  const small = validateLimits({ maxJsonDepth: 2, maxJsonStringBytes: 64 });
  const binary = new Uint8Array([0x00, 0xc3, 0x28, 0xff, 0x80, 0x7b]);
  const stored = encodeRecordBatch({ records: [
    { value: enc.encode('[[1]]'), timestampMs: 1 },
    { value: enc.encode('[[[1]]]'), timestampMs: 1 },
    { value: enc.encode(JSON.stringify('z'.repeat(65))), timestampMs: 1 },
    { value: enc.encode('plain {'), timestampMs: 1 },
    { value: binary, timestampMs: 1 },
    { value: new Uint8Array(0), timestampMs: 1 },
    { value: null, timestampMs: 1 },
  ] });
  const read = recordsFromBatches(stored, 0, 100, 100, small);
  assert.ok(read.ok);
  assert.deepEqual(read.value.records.map((r) => [r.valueEncoding, r.value]), [
    [undefined, [[1]]],
    ['text', '[[[1]]]'],
    ['text', JSON.stringify('z'.repeat(65))],
    ['text', 'plain {'],
    ['base64', 'AMMo/4B7'],
    ['text', ''],
    [undefined, null],
  ]);
  assert.deepEqual(Uint8Array.from(atob(read.value.records[4].value as string), (c) => c.charCodeAt(0)), binary);
  assert.ok(!('valueEncoding' in read.value.records[0]), 'JSON values carry no valueEncoding field');
});

test('produce bodies: depth is counted from the value (envelope excluded), headers keep __proto__, one-record beacons', () => {
  const small = validateLimits({ maxJsonDepth: 2 });
  const enc = new TextEncoder();
  const ok = (format: 'json' | 'ndjson' | 'text', body: string) => {
    const r = parseProduceBody(format, enc.encode(body), small);
    assert.ok(r.ok, `${format} ${body}: ${r.ok ? '' : r.message}`);
    return r.value;
  };
  const code = (format: 'json' | 'ndjson' | 'text', body: string) => {
    const r = parseProduceBody(format, enc.encode(body), small);
    return r.ok ? 'ok' : r.code;
  };
  ok('json', '{"records":[{"value":[[1]],"headers":{"h":"v"}}]}');
  assert.equal(code('json', '{"records":[{"value":[[[1]]]}]}'), 'INVALID_RECORD');
  ok('ndjson', '{"value":{"a":[1]}}');
  assert.equal(code('ndjson', '{"value":{"a":[[1]]}}'), 'INVALID_RECORD');
  ok('text', '{"value":[[1]]}');
  assert.equal(code('text', '{"value":[[[1]]]}'), 'INVALID_RECORD');
  ok('text', '{"records":[{"value":[[1]]}]}');
  const [withProto] = ok('json', '{"records":[{"value":1,"headers":{"__proto__":"x"}}]}');
  assert.deepEqual(Object.entries(withProto.headers!), [['__proto__', 'x']]);
  const planned = planBatches([withProto], 1, 0, 1, small);
  assert.ok(planned.ok);
  const read = recordsFromBatches(planned.value[0].batch, 0, 10, 10, small);
  assert.ok(read.ok);
  assert.deepEqual(Object.entries(read.value.records[0].headers), [['__proto__', 'x']]);
  assert.equal(JSON.stringify(read.value.records[0].headers), '{"__proto__":"x"}');
});
