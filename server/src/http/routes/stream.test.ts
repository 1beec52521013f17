import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordBatch } from '@runnel/client/codec';
import { requestContext } from '../../request/request-context.ts';
import { appFixture, errorCode } from '../testing/app-fixture.ts';

/** Reads SSE text until `until` matches everything read so far. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, until: (text: string) => boolean, state = { text: '' }): Promise<string> {
  const decoder = new TextDecoder();
  while (!until(state.text)) {
    const { done, value } = await reader.read();
    if (done) break;
    state.text += decoder.decode(value);
  }
  return state.text;
}

function events(text: string): { id: number; data: { offset: number; value: unknown } }[] {
  return text.split('\n\n').filter((e) => e.startsWith('id: ')).map((e) => {
    const [idLine, dataLine] = e.split('\n');
    return { id: Number(idLine.slice(4)), data: JSON.parse(dataLine.slice(6)) };
  });
}

async function setup(limits = {}) {
  const f = appFixture({ limits });
  await f.json('/v1/topics', { name: 't', partitions: 1 });
  await f.json('/v1/topics/t/records', { records: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
  return f;
}

test('SSE: catch-up from earliest, then live records, ids are offsets; cancel releases the stream', async () => {
  const { app, json, broker, metrics } = await setup();
  const res = await app.request('/v1/topics/t/partitions/0/stream?offset=earliest');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  const state = { text: '' };
  await readUntil(reader, (t) => t.includes('id: 2\n'), state);
  assert.match(state.text, /^retry: \d+\n/);
  setTimeout(() => void json('/v1/topics/t/records', { records: [{ value: { live: true } }] }), 20);
  await readUntil(reader, (t) => t.includes('id: 3\n'), state);
  assert.deepEqual(events(state.text).map((e) => [e.id, e.data.offset, e.data.value]), [[0, 0, 'a'], [1, 1, 'b'], [2, 2, 'c'], [3, 3, { live: true }]]);
  assert.match(await metrics.registry.metrics(), /runnel_subscriptions 1/);
  await reader.cancel();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(broker.pendingWaits, 0);
  assert.match(await metrics.registry.metrics(), /runnel_subscriptions 0/);
});

test('SSE: Last-Event-ID resumes at id + 1 and wins over ?offset; default start is latest', async () => {
  const { app, json } = await setup();
  const res = await app.request('/v1/topics/t/partitions/0/stream?offset=0', { headers: { 'last-event-id': '1' } });
  const reader = res.body!.getReader();
  const text = await readUntil(reader, (t) => t.includes('id: 2\n'));
  assert.deepEqual(events(text).map((e) => e.id), [2]);
  await reader.cancel();

  const live = await app.request('/v1/topics/t/partitions/0/stream');
  const liveReader = live.body!.getReader();
  setTimeout(() => void json('/v1/topics/t/records', { records: [{ value: 'new' }] }), 20);
  const liveText = await readUntil(liveReader, (t) => t.includes('id: 3\n'));
  assert.deepEqual(events(liveText).map((e) => e.data.value), ['new']);
  await liveReader.cancel();
});

test('SSE: keep-alive comments while idle', async () => {
  const { app } = await setup({ sseKeepAliveMs: 100 });
  const res = await app.request('/v1/topics/t/partitions/0/stream?offset=latest');
  const reader = res.body!.getReader();
  const text = await readUntil(reader, (t) => t.includes(': keep-alive\n\n'));
  assert.match(text, /: keep-alive\n\n/);
  await reader.cancel();
});

test('SSE: bad input and the maxSseStreams limit', async () => {
  const { app } = await setup({ maxSseStreams: 1 });
  assert.equal(await errorCode(await app.request('/v1/topics/t/partitions/0/stream', { headers: { 'last-event-id': 'x' } })), 'INVALID_REQUEST');
  assert.equal(await errorCode(await app.request('/v1/topics/t/partitions/0/stream?offset=soon')), 'INVALID_REQUEST');
  assert.equal((await app.request('/v1/topics/t/partitions/5/stream')).status, 404);
  const first = await app.request('/v1/topics/t/partitions/0/stream');
  const second = await app.request('/v1/topics/t/partitions/0/stream');
  assert.equal(second.status, 429);
  assert.equal(await errorCode(second), 'LIMIT_EXCEEDED');
  await first.body!.cancel();
  const third = await app.request('/v1/topics/t/partitions/0/stream');
  assert.equal(third.status, 200);
  await third.body!.cancel();
});

test('SSE: a deleted topic ends the stream with an error event', async () => {
  const { app, broker } = await setup({ sseKeepAliveMs: 100 });
  const res = await app.request('/v1/topics/t/partitions/0/stream?offset=latest');
  const reader = res.body!.getReader();
  await readUntil(reader, (t) => t.includes('retry:'));
  await broker.deleteTopic(requestContext('http', '127.0.0.1'), 't');
  const text = await readUntil(reader, (t) => t.includes('event: error'));
  assert.match(text, /event: error\ndata: \{"code":"UNKNOWN_TOPIC_OR_PARTITION"/);
  assert.equal((await reader.read()).done, true);
});

test('SSE: a poison record (issue 11, nested 10,000 deep) is sent degraded and the stream goes on to the records after it', async () => {
  const { app, errors } = await setup();
  const enc = new TextEncoder();
  const poison = '['.repeat(10_000) + ']'.repeat(10_000);
  const batch = encodeRecordBatch({ records: [{ value: enc.encode(poison), timestampMs: 1 }, { value: enc.encode('"after"'), timestampMs: 2 }] }) as Uint8Array<ArrayBuffer>;
  const produced = await app.request('/v1/topics/t/records?partition=0', { method: 'POST', headers: { 'content-type': 'application/vnd.runnel.recordbatch' }, body: batch });
  assert.equal(produced.status, 200);
  const res = await app.request('/v1/topics/t/partitions/0/stream?offset=earliest');
  const reader = res.body!.getReader();
  const text = await readUntil(reader, (t) => t.includes('id: 4\n') || t.includes('event: error'));
  await reader.cancel();
  assert.doesNotMatch(text, /event: error/);
  const got = events(text) as { id: number; data: { value: unknown; valueEncoding?: string } }[];
  assert.deepEqual(got.map((e) => [e.id, e.data.valueEncoding ?? 'json', e.data.value]), [[0, 'json', 'a'], [1, 'json', 'b'], [2, 'json', 'c'], [3, 'text', poison], [4, 'json', 'after']]);
  assert.deepEqual(errors, []);
});
