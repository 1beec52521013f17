// Random and mutated bodies to every POST route: always a JSON answer, never a 5xx.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeRecordBatch } from '@runnel/client/codec';
import { appFixture } from '../testing/app-fixture.ts';

const CONTENT_TYPES = ['application/json', 'application/x-ndjson', 'text/plain', '', 'application/vnd.runnel.recordbatch', 'application/octet-stream', 'application/xml'];
const PATHS = ['/v1/topics', '/v1/topics/t/records', '/v1/topics/t/records?partition=0', '/v1/topics/t/records?partition=9', '/v1/groups/g/offsets', '/v1/topics/auto-%s/records'];

const validBatch = encodeRecordBatch({ records: [{ value: new TextEncoder().encode('{"a":1}'), timestampMs: 1 }, { value: null, key: new TextEncoder().encode('k'), timestampMs: 2 }] });
const validJson = JSON.stringify({ records: [{ key: 'k', value: { a: [1, 2] }, headers: { h: 'v' }, partition: 0 }] });

const bodyArb = fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  fc.json().map((s) => new TextEncoder().encode(s)),
  fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify({ records: [v, { value: v }] }))),
  fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify({ name: v, partitions: v, offsets: [v] }))),
  // Mutations of valid bodies: flip bytes, truncate.
  fc.tuple(fc.constantFrom(validBatch, new TextEncoder().encode(validJson)), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
    .map(([base, flips, cut]) => {
      const b = base.slice(0, Math.max(1, base.length - (cut % 8)));
      for (const [at, v] of flips) b[at % b.length] = v;
      return b;
    }),
);

test('fuzz: random bodies to every POST route never yield 5xx', async () => {
  const { app, json, errors } = appFixture({ limits: { maxHttpRecords: 50 } });
  await json('/v1/topics', { name: 't', partitions: 2 });
  let n = 0;
  await fc.assert(fc.asyncProperty(fc.constantFrom(...PATHS), fc.constantFrom(...CONTENT_TYPES), bodyArb, async (path, type, body) => {
    const res = await app.request(path.replace('%s', String(n++ % 5)), { method: 'POST', headers: type === '' ? {} : { 'content-type': type }, body });
    assert.ok(res.status < 500, `${path} ${type} → ${res.status}: ${await res.clone().text()}`);
    const answer = await res.json();
    if (res.status >= 400) assert.equal(typeof answer.error.code, 'string');
  }), { numRuns: 3000 });
  assert.deepEqual(errors, [], 'no unexpected errors were logged');
  // The log stays readable after all that.
  const read = await app.request('/v1/topics/t/partitions/0/records?offset=0&maxRecords=10000');
  assert.equal(read.status, 200);
});
