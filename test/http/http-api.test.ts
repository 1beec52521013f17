// The HTTP API over real sockets: the real broker (startServer), uWS bridge and Hono app together.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordBatch } from '@runnel/client/codec';
import { startTestServer, type TestServer } from '../broker/harness.ts';

let server: TestServer;
let base: string;

before(async () => {
  server = await startTestServer({ limits: { maxHttpBodyBytes: 64 * 1024, sseKeepAliveMs: 200 }, defaultPartitions: 2 });
  base = server.url;
});
after(async () => {
  await server?.stop();
});

const post = (path: string, body: string | Uint8Array<ArrayBuffer> | object, type = 'application/json') =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body) });

test('topic lifecycle, produce and long-poll fetch over HTTP', async () => {
  const created = await post('/v1/topics', { name: 'http-a', partitions: 2, replicationFactor: 1 });
  assert.equal(created.status, 201);
  const produced = await (await post('/v1/topics/http-a/records', { records: [{ value: { n: 1 }, partition: 1 }, { value: 'two', partition: 1, headers: { h: 'x' } }] })).json();
  assert.deepEqual(produced.offsets, [{ partition: 1, offset: 0 }, { partition: 1, offset: 1 }]);
  const read = await (await fetch(`${base}/v1/topics/http-a/partitions/1/records?offset=0`)).json();
  assert.deepEqual(read.records.map((r: { offset: number; value: unknown; headers: object }) => [r.offset, r.value, r.headers]), [[0, { n: 1 }, {}], [1, 'two', { h: 'x' }]]);
  assert.deepEqual([read.nextOffset, read.highWatermark], [2, 2]);

  const poll = fetch(`${base}/v1/topics/http-a/partitions/1/records?offset=2&maxWaitMs=10000`).then((r) => r.json());
  await new Promise((r) => setTimeout(r, 50));
  await post('/v1/topics/http-a/records', { records: [{ value: 'late', partition: 1 }] });
  assert.deepEqual((await poll).records.map((r: { value: unknown }) => r.value), ['late']);

  const described = await (await fetch(`${base}/v1/topics/http-a`)).json();
  assert.deepEqual(described.partitions.map((p: { highWatermark: number }) => p.highWatermark), [0, 3]);
  assert.equal((await fetch(`${base}/v1/topics/http-a`, { method: 'DELETE' })).status, 200);
  assert.equal((await fetch(`${base}/v1/topics/http-a`)).status, 404);
});

test('NDJSON, text/plain beacon and binary RecordBatch bodies; body limit', async () => {
  await post('/v1/topics', { name: 'http-b', partitions: 1 });
  assert.equal((await post('/v1/topics/http-b/records', '{"value":1}\n{"value":2}\n', 'application/x-ndjson')).status, 200);
  assert.equal((await post('/v1/topics/http-b/records', JSON.stringify({ records: [{ value: 3 }] }), 'text/plain;charset=UTF-8')).status, 200);
  const batch = encodeRecordBatch({ records: [{ value: new TextEncoder().encode('4'), timestampMs: Date.now() }] }) as Uint8Array<ArrayBuffer>;
  const bin = await post('/v1/topics/http-b/records?partition=0', batch, 'application/vnd.runnel.recordbatch');
  assert.equal(bin.status, 200);
  assert.deepEqual(await bin.json(), { offsets: [{ partition: 0, offset: 3 }], duplicate: false });
  const read = await (await fetch(`${base}/v1/topics/http-b/partitions/0/records?offset=earliest`)).json();
  assert.deepEqual(read.records.map((r: { value: unknown }) => r.value), [1, 2, 3, 4]);

  const big = await post('/v1/topics/http-b/records', { records: [{ value: 'x'.repeat(70 * 1024) }] }).catch((e: Error) => e);
  assert.ok(!(big instanceof Error), String(big));
  assert.equal(big.status, 413);
  assert.equal((await big.json()).error.code, 'MESSAGE_TOO_LARGE');
  assert.equal((await fetch(`${base}/healthz`)).status, 200, 'still serving');
});

/** Reads an SSE response until `until(text)`; returns the text. */
async function readSse(res: Response, until: (text: string) => boolean): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!until(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

const ids = (text: string) => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));

test('SSE over a real socket: stream, disconnect, resume with Last-Event-ID without gap or duplicate', async () => {
  await post('/v1/topics', { name: 'http-sse', partitions: 1 });
  await post('/v1/topics/http-sse/records', { records: Array.from({ length: 5 }, (_, i) => ({ value: i })) });
  const first = await fetch(`${base}/v1/topics/http-sse/partitions/0/stream?offset=earliest`, { headers: { accept: 'text/event-stream' } });
  assert.equal(first.status, 200);
  assert.match(first.headers.get('content-type') ?? '', /^text\/event-stream/);
  const seen = ids(await readSse(first, (t) => ids(t).includes(2)));
  const lastId = Math.max(...seen);
  await post('/v1/topics/http-sse/records', { records: [{ value: 5 }, { value: 6 }] });
  const resumed = await fetch(`${base}/v1/topics/http-sse/partitions/0/stream`, { headers: { 'last-event-id': String(lastId) } });
  const after = ids(await readSse(resumed, (t) => ids(t).includes(6)));
  assert.deepEqual([...seen, ...after], [0, 1, 2, 3, 4, 5, 6].slice(0, seen.length + after.length));
  assert.equal(after[0], lastId + 1);
  assert.equal(after.at(-1), 6);
  // Aborted streams are released: the subscription gauge returns to 0.
  await new Promise((r) => setTimeout(r, 300));
  assert.match(await (await fetch(`${base}/metrics`)).text(), /^runnel_subscriptions 0$/m);
});

test('groups over HTTP and /metrics after traffic', async () => {
  await post('/v1/topics', { name: 'http-g', partitions: 1 });
  await post('/v1/topics/http-g/records', { records: [{ value: 1 }, { value: 2 }, { value: 3 }] });
  assert.equal((await post('/v1/groups/http-group/offsets', { offsets: [{ topic: 'http-g', partition: 0, offset: 1 }] })).status, 200);
  const offsets = await (await fetch(`${base}/v1/groups/http-group/offsets?topic=http-g`)).json();
  assert.deepEqual(offsets.offsets.map((o: { offset: number }) => o.offset), [1]);
  const group = await (await fetch(`${base}/v1/groups/http-group`)).json();
  assert.equal(group.offsets[0].lag, 2);
  assert.ok((await (await fetch(`${base}/v1/groups`)).json()).groups.some((g: { group: string }) => g.group === 'http-group'));
  await fetch(`${base}/v1/topics/http-g/partitions/0/records?offset=0`);

  const text = await (await fetch(`${base}/metrics`)).text();
  for (const name of ['runnel_records_in_total{topic="http-g"} 3', 'runnel_records_out_total{topic="http-g"} 3', 'runnel_produce_latency_seconds_count{transport="http"}',
    'runnel_consumer_lag{group="http-group",topic="http-g",partition="0"} 2', 'runnel_http_requests_total{route="/v1/topics/:topic/records",status="200"}',
    'runnel_fsync_latency_seconds', 'runnel_connections', 'runnel_backpressure_drops_total', 'runnel_bytes_in_total{topic="http-g"}']) {
    assert.ok(text.includes(name), `missing ${name}`);
  }
});

test('readyz, openapi and CORS preflight over the bridge', async () => {
  assert.deepEqual(await (await fetch(`${base}/readyz`)).json(), { status: 'ready' });
  assert.ok((await (await fetch(`${base}/v1/openapi.json`)).json()).paths['/v1/topics/{topic}/partitions/{p}/stream']);
  const pre = await fetch(`${base}/v1/topics`, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:5173', 'a loopback origin is allowed by default');
  const foreign = await fetch(`${base}/v1/topics`, { method: 'OPTIONS', headers: { origin: 'https://other.example', 'access-control-request-method': 'DELETE' } });
  assert.equal(foreign.headers.get('access-control-allow-origin'), null, 'issue 11 finding 4: no grant to a foreign origin by default');
});
