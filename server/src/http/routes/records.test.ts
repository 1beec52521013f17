import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordBatch, partitionForKey } from '@runnel/client/codec';
import { appFixture, errorCode } from '../testing/app-fixture.ts';
import { JsonRecordSchema } from './schemas.ts';

const enc = new TextEncoder();

async function setup(partitions = 3, limits = {}) {
  const f = appFixture({ limits });
  await f.json('/v1/topics', { name: 't', partitions });
  return f;
}

test('JSON produce: offsets in request order, keyed records follow murmur2, explicit partitions respected', async () => {
  const { json, app } = await setup();
  const p1 = partitionForKey(enc.encode('user-1'), 3);
  const other = ['user-2', 'user-3', 'user-4', 'user-5'].find((k) => partitionForKey(enc.encode(k), 3) !== p1)!;
  const p2 = partitionForKey(enc.encode(other), 3);
  const pe = [0, 1, 2].find((x) => x !== p1)!;
  const res = await json('/v1/topics/t/records', { records: [
    { key: 'user-1', value: { n: 1 } }, { key: other, value: 'two' }, { key: 'user-1', value: [3] }, { value: null, partition: pe, headers: { h: 'v' } },
  ] });
  assert.equal(res.status, 200);
  const { offsets } = await res.json();
  assert.deepEqual(offsets[0], { partition: p1, offset: 0 });
  assert.deepEqual(offsets[2], { partition: p1, offset: 1 });
  assert.equal(offsets[1].partition, p2);
  assert.equal(offsets[3].partition, pe);

  const read = await (await app.request(`/v1/topics/t/partitions/${p1}/records?offset=0`)).json();
  assert.deepEqual(read.records.map((r: { key: string; value: unknown; offset: number }) => [r.offset, r.key, r.value]), [[0, 'user-1', { n: 1 }], [1, 'user-1', [3]]]);
  assert.equal(read.nextOffset, 2);
  assert.equal(read.highWatermark, 2);
  assert.equal(typeof read.records[0].timestamp, 'number');
  const p2read = await (await app.request(`/v1/topics/t/partitions/${pe}/records`)).json();
  const last = p2read.records.at(-1);
  assert.deepEqual([last.value, last.headers], [null, { h: 'v' }]);
});

test('keyless records of one request share a partition; the next request moves on', async () => {
  const { json } = await setup();
  const a = (await (await json('/v1/topics/t/records', { records: [{ value: 1 }, { value: 2 }] })).json()).offsets;
  const b = (await (await json('/v1/topics/t/records', { records: [{ value: 3 }] })).json()).offsets;
  assert.equal(a[0].partition, a[1].partition);
  assert.deepEqual([a[0].offset, a[1].offset], [0, 1]);
  assert.notEqual(b[0].partition, a[0].partition);
});

test('NDJSON and text/plain (sendBeacon) bodies', async () => {
  const { app } = await setup(1);
  const nd = await app.request('/v1/topics/t/records', { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"value":"a"}\n\n{"value":{"b":1},"key":"k"}\n' });
  assert.deepEqual((await nd.json()).offsets, [{ partition: 0, offset: 0 }, { partition: 0, offset: 1 }]);
  const beacon = await app.request('/v1/topics/t/records', { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: JSON.stringify({ records: [{ value: 'beacon' }] }) });
  assert.deepEqual((await beacon.json()).offsets, [{ partition: 0, offset: 2 }]);
  const typeless = await app.request('/v1/topics/t/records', { method: 'POST', body: new Blob([JSON.stringify({ records: [{ value: 'blob' }] })]) });
  assert.equal(typeless.status, 200);
  const read = await (await app.request('/v1/topics/t/partitions/0/records?offset=0')).json();
  assert.deepEqual(read.records.map((r: { value: unknown }) => r.value), ['a', { b: 1 }, 'beacon', 'blob']);
});

test('binary RecordBatch body with ?partition= is appended as is', async () => {
  const { app } = await setup(2);
  const batch = encodeRecordBatch({ producerId: 7, producerEpoch: 0, baseSequence: 0, records: [
    { value: enc.encode('{"x":1}'), key: enc.encode('k'), timestampMs: 1_700_000_000_000 },
    { value: enc.encode('not json'), timestampMs: 1_700_000_000_001 },
  ] }) as Uint8Array<ArrayBuffer>;
  const res = await app.request('/v1/topics/t/records?partition=1', { method: 'POST', headers: { 'content-type': 'application/vnd.runnel.recordbatch' }, body: batch });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { offsets: [{ partition: 1, offset: 0 }], duplicate: false });
  const read = await (await app.request('/v1/topics/t/partitions/1/records?offset=earliest')).json();
  assert.deepEqual(read.records.map((r: { key: unknown; value: unknown; timestamp: number }) => [r.key, r.value, r.timestamp]), [['k', { x: 1 }, 1_700_000_000_000], [null, 'not json', 1_700_000_000_001]]);

  const noPartition = await app.request('/v1/topics/t/records', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: batch });
  assert.equal(await errorCode(noPartition), 'INVALID_REQUEST');
  const corrupt = batch.slice();
  corrupt[corrupt.length - 1] ^= 0xff;
  const bad = await app.request('/v1/topics/t/records?partition=0', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: corrupt });
  assert.equal(bad.status, 400);
  assert.equal(await errorCode(bad), 'CORRUPT_MESSAGE');
  const truncated = await app.request('/v1/topics/t/records?partition=0', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: batch.slice(0, 30) });
  assert.equal(truncated.status, 400);
});

test('produce validation and limits', async () => {
  const { app, json } = await setup(2, { maxHttpRecords: 3, maxHeadersPerRecord: 1, maxHttpBodyBytes: 2048 });
  const cases: [unknown, number, string][] = [
    [{ records: [] }, 400, 'INVALID_REQUEST'],
    [{ records: [{ key: 'k' }] }, 400, 'INVALID_REQUEST'],
    [{ records: [{ value: 1, key: 5 }] }, 400, 'INVALID_REQUEST'],
    [{ records: [{ value: 1, partition: -1 }] }, 400, 'INVALID_REQUEST'],
    [{ records: [{ value: 1, headers: { a: 1 } }] }, 400, 'INVALID_REQUEST'],
    [{ records: [{ value: 1, extra: true }] }, 400, 'INVALID_REQUEST'],
    [{ record: [{ value: 1 }] }, 400, 'INVALID_REQUEST'],
    [{ records: [{ value: 1 }, { value: 2 }, { value: 3 }, { value: 4 }] }, 413, 'MESSAGE_TOO_LARGE'],
    [{ records: [{ value: 1, headers: { a: 'x', b: 'y' } }] }, 413, 'MESSAGE_TOO_LARGE'],
    [{ records: [{ value: 1, partition: 2 }] }, 404, 'UNKNOWN_TOPIC_OR_PARTITION'],
    [{ records: [{ value: 'x'.repeat(3000) }] }, 413, 'MESSAGE_TOO_LARGE'],
  ];
  for (const [body, status, code] of cases) {
    const res = await json('/v1/topics/t/records', body);
    assert.equal(res.status, status, JSON.stringify(body).slice(0, 80));
    assert.equal(await errorCode(res), code, JSON.stringify(body).slice(0, 80));
  }
  const badNd = await app.request('/v1/topics/t/records', { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"value":1}\nnope\n' });
  assert.match((await badNd.json()).error.message, /line 2 is not valid JSON/);
  const badType = await app.request('/v1/topics/t/records', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<x/>' });
  assert.equal(await errorCode(badType), 'INVALID_REQUEST');
  const badUtf8 = await app.request('/v1/topics/t/records', { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array([0xff, 0xfe]) });
  assert.equal(badUtf8.status, 400);
  const nothingWritten = await (await app.request('/v1/topics/t')).json();
  assert.deepEqual(nothingWritten.partitions.map((p: { highWatermark: number }) => p.highWatermark), [0, 0]);
});

test('produce auto-creates unknown topics with the default partition count', async () => {
  const { json, app } = appFixture();
  const res = await json('/v1/topics/fresh/records', { records: [{ value: 1 }] });
  assert.equal(res.status, 200);
  assert.equal((await (await app.request('/v1/topics/fresh')).json()).partitions.length, 3);
});

test('fetch: offsets, maxRecords, earliest/latest, errors', async () => {
  const { app, json } = await setup(1);
  await json('/v1/topics/t/records', { records: Array.from({ length: 10 }, (_, i) => ({ value: i })) });
  const mid = await (await app.request('/v1/topics/t/partitions/0/records?offset=4&maxRecords=3')).json();
  assert.deepEqual(mid.records.map((r: { offset: number }) => r.offset), [4, 5, 6]);
  assert.equal(mid.nextOffset, 7);
  const latest = await (await app.request('/v1/topics/t/partitions/0/records?offset=latest')).json();
  assert.deepEqual([latest.records, latest.nextOffset, latest.highWatermark], [[], 10, 10]);
  const bad: [string, number, string][] = [
    ['/v1/topics/t/partitions/0/records?offset=-1', 400, 'INVALID_REQUEST'],
    ['/v1/topics/t/partitions/0/records?offset=abc', 400, 'INVALID_REQUEST'],
    ['/v1/topics/t/partitions/0/records?maxRecords=0', 400, 'INVALID_REQUEST'],
    ['/v1/topics/t/partitions/x/records', 400, 'INVALID_REQUEST'],
    ['/v1/topics/t/partitions/1/records', 404, 'UNKNOWN_TOPIC_OR_PARTITION'],
    ['/v1/topics/nope/partitions/0/records', 404, 'UNKNOWN_TOPIC_OR_PARTITION'],
    ['/v1/topics/t/partitions/0/records?offset=11', 416, 'OFFSET_OUT_OF_RANGE'],
  ];
  for (const [path, status, code] of bad) {
    const res = await app.request(path);
    assert.equal(res.status, status, path);
    assert.equal(await errorCode(res), code, path);
  }
});

test('long poll waits for new records, and times out with an empty answer', async () => {
  const { app, json, broker } = await setup(1, { maxLongPollMs: 5000 });
  const pending = app.request('/v1/topics/t/partitions/0/records?offset=0&maxWaitMs=5000');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(broker.pendingWaits, 1, 'the poll is parked');
  await json('/v1/topics/t/records', { records: [{ value: 'late' }] });
  const got = await (await pending).json();
  assert.deepEqual(got.records.map((r: { value: unknown }) => r.value), ['late']);
  const empty = await (await app.request('/v1/topics/t/partitions/0/records?offset=1&maxWaitMs=20')).json();
  assert.deepEqual([empty.records, empty.nextOffset], [[], 1]);
  assert.equal(broker.pendingWaits, 0);
});

test('long poll wait is capped by maxLongPollMs', async () => {
  const { app } = await setup(1, { maxLongPollMs: 0 });
  const res = await (await app.request('/v1/topics/t/partitions/0/records?maxWaitMs=60000')).json();
  assert.deepEqual(res.records, []);
});

// ---- issue 11: poison values, JSON depth and string limits, `__proto__` headers, one-line beacons ----

const deepArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const post = (app: ReturnType<typeof appFixture>['app'], type: string, body: string | Uint8Array<ArrayBuffer>, query = '') =>
  app.request(`/v1/topics/t/records${query}`, { method: 'POST', headers: { 'content-type': type }, body });

test('poison record (issue 11): a stored value nested 10,000 deep, invalid UTF-8 or not JSON comes back degraded; the records around it come back normally', async () => {
  const { app, errors } = await setup(1);
  const poison = deepArray(10_000);
  const invalidUtf8 = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
  const batch = encodeRecordBatch({ records: [
    { value: enc.encode('{"good":1}'), timestampMs: 1 },
    { value: enc.encode(poison), timestampMs: 2 },
    { value: invalidUtf8, timestampMs: 3 },
    { value: enc.encode('not json'), timestampMs: 4 },
    { value: enc.encode('"a JSON string"'), timestampMs: 5 },
    { value: enc.encode('{"good":2}'), timestampMs: 6 },
  ] }) as Uint8Array<ArrayBuffer>;
  assert.equal((await post(app, 'application/vnd.runnel.recordbatch', batch, '?partition=0')).status, 200);
  const res = await app.request('/v1/topics/t/partitions/0/records?offset=earliest');
  assert.equal(res.status, 200, await res.clone().text().then((t) => t.slice(0, 200)));
  const read = await res.json();
  assert.deepEqual(read.records.map((r: { offset: number; value: unknown; valueEncoding?: string }) => [r.offset, r.valueEncoding ?? 'json', r.value]), [
    [0, 'json', { good: 1 }],
    [1, 'text', poison],
    [2, 'base64', btoa(String.fromCharCode(...invalidUtf8))],
    [3, 'text', 'not json'],
    [4, 'json', 'a JSON string'],
    [5, 'json', { good: 2 }],
  ]);
  assert.equal(read.nextOffset, 6);
  for (const r of read.records) assert.ok(JsonRecordSchema.safeParse(r).success, `offset ${r.offset} matches the documented Record schema`);
  assert.deepEqual(errors, []);
});

test('HTTP produce (issue 11): JSON nested 5,000 deep is 400 INVALID_RECORD on JSON, NDJSON and beacon bodies, and nothing is written', async () => {
  const { app, errors } = await setup(1);
  const deep = deepArray(5000);
  const bodies: [string, string][] = [
    ['application/json', `{"records":[{"value":${deep}}]}`],
    ['application/x-ndjson', `{"value":1}\n{"value":${deep}}\n`],
    ['text/plain;charset=UTF-8', `{"records":[{"value":${deep}}]}`],
    ['text/plain;charset=UTF-8', `{"value":${deep}}`],
    ['text/plain;charset=UTF-8', `{"value":1}\n{"value":${deep}}`],
    ['application/json', deep],
  ];
  for (const [type, body] of bodies) {
    const res = await post(app, type, body);
    assert.equal(res.status, 400, `${type} ${body.slice(0, 40)}`);
    const error = (await res.json()).error;
    assert.equal(error.code, 'INVALID_RECORD', `${type} ${body.slice(0, 40)}`);
    assert.match(error.message, /maxJsonDepth/);
  }
  assert.deepEqual(errors, []);
  assert.equal((await (await app.request('/v1/topics/t')).json()).partitions[0].highWatermark, 0);
});

test('HTTP produce: values up to maxJsonDepth levels are accepted and read back as JSON, one more is refused; strings over maxJsonStringBytes are refused', async () => {
  const { app, json } = await setup(1, { maxJsonDepth: 4, maxJsonStringBytes: 1024 });
  const atLimit = [[[{ a: 'x' }]]];
  assert.equal((await json('/v1/topics/t/records', { records: [{ value: atLimit, headers: { h: 'v' } }] })).status, 200);
  assert.equal((await post(app, 'application/x-ndjson', JSON.stringify({ value: atLimit }))).status, 200);
  assert.equal((await post(app, 'text/plain', JSON.stringify({ value: atLimit }))).status, 200);
  const read = await (await app.request('/v1/topics/t/partitions/0/records')).json();
  assert.deepEqual(read.records.map((r: { value: unknown; valueEncoding?: string }) => [r.valueEncoding, r.value]), [[undefined, atLimit], [undefined, atLimit], [undefined, atLimit]]);

  const over = [atLimit];
  const long = 'y'.repeat(1025);
  const refused: [string, string, RegExp][] = [
    ['application/json', JSON.stringify({ records: [{ value: over }] }), /maxJsonDepth \(4\)/],
    ['application/x-ndjson', JSON.stringify({ value: over }), /line 1.*maxJsonDepth \(4\)/],
    ['text/plain', JSON.stringify({ value: over }), /maxJsonDepth \(4\)/],
    ['application/json', JSON.stringify({ records: [{ value: long }] }), /maxJsonStringBytes \(1024\)/],
    ['application/json', JSON.stringify({ records: [{ value: 1, key: long }] }), /maxJsonStringBytes/],
    ['application/json', JSON.stringify({ records: [{ value: 1, headers: { h: long } }] }), /maxJsonStringBytes/],
    ['application/json', JSON.stringify({ records: [{ value: { [long]: 1 } }] }), /maxJsonStringBytes/],
    ['application/x-ndjson', `{"value":1}\n${JSON.stringify({ value: long })}`, /line 2.*maxJsonStringBytes/],
    ['text/plain', JSON.stringify({ value: long }), /maxJsonStringBytes/],
  ];
  for (const [type, body, message] of refused) {
    const res = await post(app, type, body);
    assert.equal(res.status, 400, `${type} ${body.slice(0, 60)}`);
    const error = (await res.json()).error;
    assert.deepEqual([error.code, message.test(error.message)], ['INVALID_RECORD', true], `${type} ${body.slice(0, 60)}: ${error.message}`);
  }
  // Escaped quotes and backslashes do not end a string early or hide brackets.
  const tricky = { records: [{ value: ['\\"[[[[[[', '\\', '"]]]]', '{{{{{{'] }] };
  assert.equal((await json('/v1/topics/t/records', tricky)).status, 200);
});

test('a header named __proto__ (issue 11) is kept on produce and returned on read', async () => {
  const { app } = await setup(1);
  const body = '{"records":[{"value":1,"headers":{"__proto__":"x","constructor":"y","a":"b"}}]}';
  for (const [type, text] of [['application/json', body], ['application/x-ndjson', '{"value":1,"headers":{"__proto__":"x","constructor":"y","a":"b"}}']]) {
    assert.equal((await post(app, type, text)).status, 200, type);
  }
  const badValue = await post(app, 'application/json', '{"records":[{"value":1,"headers":{"__proto__":5}}]}');
  assert.equal(await errorCode(badValue), 'INVALID_REQUEST');
  const tooMany = appFixture({ limits: { maxHeadersPerRecord: 1 } });
  await tooMany.json('/v1/topics', { name: 't', partitions: 1 });
  assert.equal(await errorCode(await post(tooMany.app, 'application/json', '{"records":[{"value":1,"headers":{"__proto__":"x","a":"b"}}]}')), 'MESSAGE_TOO_LARGE');

  const text = await (await app.request('/v1/topics/t/partitions/0/records')).text();
  const read = JSON.parse(text);
  assert.equal(read.records.length, 2);
  for (const r of read.records) assert.deepEqual(Object.entries(r.headers), [['__proto__', 'x'], ['constructor', 'y'], ['a', 'b']]);
  assert.ok(text.includes('"headers":{"__proto__":"x","constructor":"y","a":"b"}'));
});

test('a one-line NDJSON beacon (issue 11) is accepted with or without a trailing newline; the {records:[...]} form stays unambiguous', async () => {
  const { app } = await setup(1);
  const accepted: [string, string, number][] = [
    ['text/plain;charset=UTF-8', '{"value":"one"}', 1],
    ['text/plain;charset=UTF-8', '{"value":"two","key":"k"}\n', 1],
    ['', '{"value":"three"}\r\n', 1],
    ['application/x-ndjson', '{"value":"four"}', 1],
    ['application/x-ndjson', '{"value":"five"}\n', 1],
    ['text/plain', '{"records":[{"value":"six"},{"value":"seven"}]}', 2],
    ['text/plain', JSON.stringify({ records: [{ value: 'eight' }] }, null, 2), 1],
    ['text/plain', '{"value":"nine"}\n{"value":"ten"}\n', 2],
  ];
  for (const [type, body, count] of accepted) {
    const res = await app.request('/v1/topics/t/records', { method: 'POST', headers: type === '' ? {} : { 'content-type': type }, body });
    assert.equal(res.status, 200, `${type} ${JSON.stringify(body)}: ${await res.clone().text()}`);
    assert.equal((await res.json()).offsets.length, count);
  }
  const read = await (await app.request('/v1/topics/t/partitions/0/records')).json();
  assert.deepEqual(read.records.map((r: { value: unknown }) => r.value), ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten']);
  assert.equal(read.records[1].key, 'k');
  // A records envelope with a stray field is an error, not a record; so is a record with a `records` field.
  for (const body of ['{"records":[{"value":1}],"value":2}', '{"value":1,"records":[]}', '[{"value":1}]', '{"key":"k"}']) {
    assert.equal(await errorCode(await post(app, 'text/plain', body)), 'INVALID_REQUEST', body);
  }
  // application/json keeps the {records:[...]} form only.
  assert.equal(await errorCode(await post(app, 'application/json', '{"value":1}')), 'INVALID_REQUEST');
});

test('at the largest maxJsonDepth (1000) a value that deep is produced and read back as JSON: JSON.stringify stays within the stack', async () => {
  const { app, errors } = await setup(1, { maxJsonDepth: 1000 });
  const deep = deepArray(1000);
  assert.equal((await post(app, 'application/json', `{"records":[{"value":${deep}}]}`)).status, 200);
  const text = await (await app.request('/v1/topics/t/partitions/0/records')).text();
  assert.ok(text.includes(`"value":${deep}`));
  assert.ok(!text.includes('valueEncoding'));
  assert.deepEqual(errors, []);
});
