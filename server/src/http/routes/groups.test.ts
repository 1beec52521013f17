import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appFixture, errorCode } from '../testing/app-fixture.ts';

test('commit, fetch, describe (with lag), list group offsets', async () => {
  const { app, json } = appFixture();
  await json('/v1/topics', { name: 't', partitions: 2 });
  await json('/v1/topics', { name: 'u', partitions: 1 });
  await json('/v1/topics/t/records', { records: [{ value: 1, partition: 0 }, { value: 2, partition: 0 }, { value: 3, partition: 0 }] });
  const commit = await json('/v1/groups/g1/offsets', { offsets: [{ topic: 't', partition: 0, offset: 1, metadata: 'm' }, { topic: 'u', partition: 0, offset: 0 }] });
  assert.equal(commit.status, 200);
  assert.deepEqual(await commit.json(), { committed: 2 });

  const all = await (await app.request('/v1/groups/g1/offsets')).json();
  assert.equal(all.offsets.length, 2);
  const onlyT = await (await app.request('/v1/groups/g1/offsets?topic=t')).json();
  assert.deepEqual(onlyT.offsets, [{ topic: 't', partition: 0, offset: 1, metadata: 'm' }]);

  const described = await (await app.request('/v1/groups/g1')).json();
  assert.equal(described.group, 'g1');
  assert.ok(Array.isArray(described.members));
  assert.equal(typeof described.generationId, 'number');
  const t0 = described.offsets.find((o: { topic: string }) => o.topic === 't');
  assert.deepEqual([t0.highWatermark, t0.lag], [3, 2]);

  const list = await (await app.request('/v1/groups')).json();
  assert.deepEqual(list.groups.map((g: { group: string }) => g.group), ['g1']);
});

test('a standalone commit lowering a committed offset is 409 OFFSET_COMMIT_BACKWARDS unless rewind: true', async () => {
  const { app, json } = appFixture();
  await json('/v1/topics', { name: 't', partitions: 1 });
  await json('/v1/topics/t/records', { records: [{ value: 1 }, { value: 2 }, { value: 3 }] });
  assert.equal((await json('/v1/groups/g/offsets', { offsets: [{ topic: 't', partition: 0, offset: 3 }] })).status, 200);
  const back = await json('/v1/groups/g/offsets', { offsets: [{ topic: 't', partition: 0, offset: 1 }] });
  assert.equal(back.status, 409);
  assert.equal(await errorCode(back), 'OFFSET_COMMIT_BACKWARDS');
  assert.equal((await json('/v1/groups/g/offsets', { offsets: [{ topic: 't', partition: 0, offset: 1 }], rewind: true })).status, 200);
  assert.deepEqual((await (await app.request('/v1/groups/g/offsets')).json()).offsets, [{ topic: 't', partition: 0, offset: 1, metadata: '' }]);
});

test('group errors', async () => {
  const { app, json } = appFixture();
  await json('/v1/topics', { name: 't', partitions: 1 });
  assert.equal((await app.request('/v1/groups/none')).status, 404);
  const cases: [unknown, number, string][] = [
    [{ offsets: [] }, 400, 'INVALID_REQUEST'],
    [{ offsets: [{ topic: 't', partition: 0, offset: -1 }] }, 400, 'INVALID_REQUEST'],
    [{ offsets: [{ topic: 't', partition: 0 }] }, 400, 'INVALID_REQUEST'],
    [{ offsets: [{ topic: 't', partition: 4, offset: 1 }] }, 404, 'UNKNOWN_TOPIC_OR_PARTITION'],
    [{ offsets: [{ topic: 't', partition: 0, offset: 1 }], generationId: 3, memberId: 'm' }, 409, 'UNKNOWN_MEMBER_ID'],
  ];
  for (const [body, status, code] of cases) {
    const res = await json('/v1/groups/g/offsets', body);
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(await errorCode(res), code);
  }
});

test('OpenAPI: a described member has a displayId and no memberId (member ids are secrets); an out-of-range commit is 416', async () => {
  const { app } = appFixture();
  const doc = await (await app.request('/v1/openapi.json')).json();
  const member = doc.components.schemas.GroupMember;
  assert.ok(member, 'GroupMember schema');
  assert.deepEqual(Object.keys(member.properties).sort(), ['assignment', 'clientId', 'displayId', 'topics']);
  assert.equal(doc.components.schemas.GroupDescription.properties.members.items.$ref, '#/components/schemas/GroupMember');
  assert.ok(doc.paths['/v1/groups/{group}/offsets'].post.responses['416']);
  assert.ok(doc.paths['/v1/groups/{group}/offsets'].post.responses['409'], 'OFFSET_COMMIT_BACKWARDS');
  assert.ok(doc.paths['/v1/groups/{group}'].get.responses['400'], 'an illegal group name is 400');
});
