import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordBatch, partitionForKey } from '@runnel/client/codec';
import { appFixture, errorCode } from '../testing/app-fixture.ts';

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
