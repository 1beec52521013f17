import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appFixture, errorCode } from '../testing/app-fixture.ts';

test('create, list, describe, delete a topic', async () => {
  const { app, json } = appFixture();
  const created = await json('/v1/topics', { name: 'clicks', partitions: 2, replicationFactor: 1, retentionMs: 1000 });
  assert.equal(created.status, 201);
  const info = await created.json();
  assert.equal(info.name, 'clicks');
  assert.equal(info.partitions, 2);
  assert.equal(info.retentionMs, 1000);
  assert.equal(typeof info.topicId, 'string');

  const list = await (await app.request('/v1/topics')).json();
  assert.deepEqual(list.topics.map((t: { name: string }) => t.name), ['clicks']);

  const described = await (await app.request('/v1/topics/clicks')).json();
  assert.equal(described.topic.name, 'clicks');
  assert.deepEqual(described.partitions[1], { partition: 1, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0], logStartOffset: 0, highWatermark: 0, logEndOffset: 0 });

  const deleted = await app.request('/v1/topics/clicks', { method: 'DELETE' });
  assert.equal(deleted.status, 200);
  assert.deepEqual(await deleted.json(), { deleted: 'clicks' });
  const gone = await app.request('/v1/topics/clicks');
  assert.equal(gone.status, 404);
  assert.equal(await errorCode(gone), 'UNKNOWN_TOPIC_OR_PARTITION');
});

test('partitions default to the broker default; replicationFactor to 1', async () => {
  const { json } = appFixture();
  const info = await (await json('/v1/topics', { name: 'd' })).json();
  assert.equal(info.partitions, 3);
  assert.equal(info.replicationFactor, 1);
});

test('topic errors map to the ErrorTable status and code', async () => {
  const { json } = appFixture();
  await json('/v1/topics', { name: 'a', partitions: 1 });
  const cases: [unknown, number, string][] = [
    [{ name: 'a', partitions: 1 }, 409, 'TOPIC_ALREADY_EXISTS'],
    [{ name: 'bad name!', partitions: 1 }, 400, 'INVALID_TOPIC_EXCEPTION'],
    [{ name: 'b', partitions: 1, replicationFactor: 3 }, 400, 'INVALID_REPLICATION_FACTOR'],
    [{ name: 'b', partitions: 0 }, 400, 'INVALID_REQUEST'],
    [{ name: 'b', partitions: 1.5 }, 400, 'INVALID_REQUEST'],
    [{ name: 'b', partitions: '2' }, 400, 'INVALID_REQUEST'],
    [{ partitions: 2 }, 400, 'INVALID_REQUEST'],
    [{ name: 'b', partitons: 2 }, 400, 'INVALID_REQUEST'],
    [[], 400, 'INVALID_REQUEST'],
  ];
  for (const [body, status, code] of cases) {
    const res = await json('/v1/topics', body);
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(await errorCode(res), code, JSON.stringify(body));
  }
});

test('invalid input: zod message in the error, malformed JSON is INVALID_REQUEST', async () => {
  const { app, json } = appFixture();
  const res = await json('/v1/topics', { name: 'b', partitions: -1 });
  assert.match((await res.json()).error.message, /partitions/);
  const bad = await app.request('/v1/topics', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": ' });
  assert.equal(bad.status, 400);
  assert.equal(await errorCode(bad), 'INVALID_REQUEST');
  const noType = await app.request('/v1/topics', { method: 'POST', body: '{"name":"x"}' });
  assert.equal(noType.status, 415);
  assert.equal(await errorCode(noType), 'INVALID_REQUEST');
});

test('unknown routes are JSON 404s', async () => {
  const { app } = appFixture();
  const res = await app.request('/v1/nope');
  assert.equal(res.status, 404);
  assert.equal(await errorCode(res), 'INVALID_REQUEST');
});
