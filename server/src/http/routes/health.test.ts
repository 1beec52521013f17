import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appFixture } from '../testing/app-fixture.ts';

test('healthz, readyz before and after ready', async () => {
  let ready = false;
  const { app } = appFixture({ deps: { isReady: () => ready } });
  assert.deepEqual(await (await app.request('/healthz')).json(), { status: 'ok' });
  const notReady = await app.request('/readyz');
  assert.equal(notReady.status, 503);
  ready = true;
  assert.equal((await app.request('/readyz')).status, 200);
});

test('/metrics: Prometheus text with HTTP requests by route pattern, produce latency and lag', async () => {
  const { app, json } = appFixture();
  await json('/v1/topics', { name: 't', partitions: 1 });
  await json('/v1/topics/t/records', { records: [{ value: 1 }, { value: 2 }] });
  await app.request('/v1/topics/t/partitions/0/records?offset=0');
  await json('/v1/groups/g/offsets', { offsets: [{ topic: 't', partition: 0, offset: 0 }] });
  const res = await app.request('/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  assert.match(text, /runnel_http_requests_total\{route="\/v1\/topics\/:topic\/records",status="200"\} 1/);
  assert.match(text, /runnel_produce_latency_seconds_count\{transport="http"\} 1/);
  assert.match(text, /runnel_records_out_total\{topic="t"\} 2/);
  assert.match(text, /runnel_consumer_lag\{group="g",topic="t",partition="0"\} 2/);
  assert.match(text, /process_resident_memory_bytes/);
});

test('OpenAPI document lists every public route', async () => {
  const { app } = appFixture();
  const doc = await (await app.request('/v1/openapi.json')).json();
  assert.equal(doc.openapi, '3.0.0');
  for (const path of ['/v1/topics', '/v1/topics/{topic}', '/v1/topics/{topic}/records', '/v1/topics/{topic}/partitions/{p}/records',
    '/v1/topics/{topic}/partitions/{p}/stream', '/v1/groups', '/v1/groups/{group}', '/v1/groups/{group}/offsets', '/healthz', '/readyz', '/metrics']) {
    assert.ok(doc.paths[path], `missing ${path}`);
  }
  assert.ok(doc.paths['/v1/topics/{topic}/records'].post.requestBody.content['application/vnd.runnel.recordbatch']);
});

test('CORS: any origin by default, preflight answered; restricted when configured', async () => {
  const open = appFixture().app;
  const res = await open.request('/v1/topics', { headers: { origin: 'https://shop.example' } });
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
  const pre = await open.request('/v1/topics/t/records', { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  assert.equal(pre.status, 204);
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
  const closed = appFixture({ deps: { corsOrigins: ['https://a.example'] } }).app;
  assert.equal((await closed.request('/v1/topics', { headers: { origin: 'https://a.example' } })).headers.get('access-control-allow-origin'), 'https://a.example');
  assert.equal((await closed.request('/v1/topics', { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin'), null);
});
