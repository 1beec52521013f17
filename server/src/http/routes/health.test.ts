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

test('CORS: loopback origins by default, preflight answered; a foreign origin gets no grant; restricted when configured', async () => {
  const open = appFixture().app;
  const res = await open.request('/v1/topics', { headers: { origin: 'http://localhost:5173' } });
  assert.equal(res.headers.get('access-control-allow-origin'), 'http://localhost:5173');
  const pre = await open.request('/v1/topics/t/records', { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  assert.equal(pre.status, 204);
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
  const foreign = await open.request('/v1/topics/x', { method: 'OPTIONS', headers: { origin: 'https://shop.example', 'access-control-request-method': 'DELETE' } });
  assert.equal(foreign.headers.get('access-control-allow-origin'), null, 'finding 4: no * grant to a DELETE preflight from any origin');
  assert.equal((await appFixture({ deps: { corsOrigins: ['*'] } }).app.request('/v1/topics', { headers: { origin: 'https://shop.example' } })).headers.get('access-control-allow-origin'), '*');
  const closed = appFixture({ deps: { corsOrigins: ['https://a.example'] } }).app;
  assert.equal((await closed.request('/v1/topics', { headers: { origin: 'https://a.example' } })).headers.get('access-control-allow-origin'), 'https://a.example');
  assert.equal((await closed.request('/v1/topics', { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin'), null);
});

test('a state-changing request from a disallowed origin is refused whatever its content type (finding 4)', async () => {
  const { app } = appFixture({ deps: { corsOrigins: ['https://a.example'] } });
  const post = (origin: string) => app.request('/v1/topics/t/records', { method: 'POST', headers: { origin, 'content-type': 'text/plain' }, body: '{"records":[{"value":1}]}' });
  const refused = await post('https://evil.example');
  assert.equal(refused.status, 403);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'ORIGIN_NOT_ALLOWED');
  assert.equal((await app.request('/v1/topics/t', { method: 'DELETE', headers: { origin: 'https://evil.example' } })).status, 403);
  assert.equal((await post('https://a.example')).status, 200, 'the configured origin may write');
  assert.equal((await app.request('/v1/topics/t/records', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"records":[{"value":2}]}' })).status, 200, 'no Origin: not a browser page');
});
