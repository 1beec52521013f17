/**
 * Consumer groups over real sockets, issue 11 finding 5: a commit beyond the
 * high watermark is refused (416 / OFFSET_OUT_OF_RANGE); group names with
 * control characters are refused on every operation; describe over HTTP lists
 * members without their member ids; a burst of 300 joins costs O(N)
 * assignment frames; /metrics holds at most maxLagSeries lag series.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorTable, type BrokerFrame, type GroupAssignmentFrame } from '@runnel/client/codec';
import { TestClient, makeBatch, startTestServer, type TestServer } from './harness.ts';

type CommitAck = Extract<BrokerFrame, { type: 'offsetCommitAck' }>;

const HIGH_WATERMARK = 5;
let server: TestServer;
before(async () => {
  server = await startTestServer({ limits: { maxLagSeries: 20, groupRebalanceDelayMs: 20, groupRebalanceMaxDelayMs: 500 } });
  await server.broker.createTopic({ name: 'orders', partitions: 4, replicationFactor: 1 });
  const c = await TestClient.connect(server.wsUrl);
  for (let p = 0; p < 4; p++) assert.equal((await c.produce('orders', p, makeBatch(['a', 'b', 'c', 'd', 'e']))).errorCode, 0);
  c.close();
});
after(() => server.stop());

const http = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);
const post = (path: string, body: unknown) => http(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const join = (c: TestClient, group: string) =>
  c.request<GroupAssignmentFrame>({ type: 'groupJoin', requestId: 0, group, memberId: '', topics: ['orders'], sessionTimeoutMs: 30_000 });
const commit = (c: TestClient, group: string, generationId: number, memberId: string, partition: number, offset: number) =>
  c.request<CommitAck>({ type: 'offsetCommit', requestId: 0, group, generationId, memberId, offsets: [{ topic: 'orders', partition, offset, metadata: '' }] });

test('a commit beyond the highWatermark is refused, over WebSocket (member and standalone) and HTTP; offset == highWatermark is fine', async () => {
  const c = await TestClient.connect(server.wsUrl);
  try {
    assert.equal((await commit(c, 'range-solo', -1, '', 0, HIGH_WATERMARK + 1)).errorCode, ErrorTable.OFFSET_OUT_OF_RANGE.code);
    assert.equal((await commit(c, 'range-solo', -1, '', 0, HIGH_WATERMARK)).errorCode, 0);
    const m = await join(c, 'range-member');
    assert.equal(m.errorCode, 0);
    assert.equal((await commit(c, 'range-member', m.generationId, m.memberId, 1, 1_000_000)).errorCode, ErrorTable.OFFSET_OUT_OF_RANGE.code);
    assert.equal((await commit(c, 'range-member', m.generationId, m.memberId, 1, HIGH_WATERMARK)).errorCode, 0);

    const res = await post('/v1/groups/range-http/offsets', { offsets: [{ topic: 'orders', partition: 2, offset: HIGH_WATERMARK + 1 }] });
    assert.equal(res.status, 416);
    const body = (await res.json()) as { error: { code: string; details?: { highWatermark?: number } } };
    assert.equal(body.error.code, 'OFFSET_OUT_OF_RANGE');
    assert.equal(body.error.details?.highWatermark, HIGH_WATERMARK);
    assert.equal((await http('/v1/groups/range-http')).status, 404, 'the refused commit created no group');
    const fetched = await c.request<Extract<BrokerFrame, { type: 'offsetFetchResult' }>>({ type: 'offsetFetch', requestId: 0, group: 'range-solo', topics: ['orders'] });
    assert.deepEqual(fetched.offsets.map((o) => o.offset), [HIGH_WATERMARK]);
  } finally {
    c.close();
  }
});

test('group names with control characters are refused INVALID_REQUEST: join, commit, fetch (WebSocket) and describe, fetch, commit (HTTP)', async () => {
  const c = await TestClient.connect(server.wsUrl);
  try {
    for (const name of ['g\0x', 'line\nbreak', 'del\u007f']) {
      const joined = await join(c, name);
      assert.equal(joined.errorCode, ErrorTable.INVALID_REQUEST.code, `join ${JSON.stringify(name)}`);
      assert.equal((await commit(c, name, -1, '', 0, 1)).errorCode, ErrorTable.INVALID_REQUEST.code, `commit ${JSON.stringify(name)}`);
      // NB: the session answers a rejected offsetFetch with an `error` frame of requestId 0 (session.ts trackAnswer), not its own.
      const requestId = c.requestId();
      c.send({ type: 'offsetFetch', requestId, group: name, topics: ['orders'] });
      const fetched = await c.waitFor((f) => (f.type === 'offsetFetchResult' && f.requestId === requestId) || (f.type === 'error' && (f.requestId === requestId || f.requestId === 0)));
      assert.equal('errorCode' in fetched ? fetched.errorCode : -1, ErrorTable.INVALID_REQUEST.code, `fetch ${JSON.stringify(name)}`);
      const path = `/v1/groups/${encodeURIComponent(name)}`;
      assert.equal((await http(path)).status, 400, `describe ${JSON.stringify(name)}`);
      assert.equal((await http(`${path}/offsets`)).status, 400, `fetch ${JSON.stringify(name)}`);
      assert.equal((await post(`${path}/offsets`, { offsets: [{ topic: 'orders', partition: 0, offset: 1 }] })).status, 400, `commit ${JSON.stringify(name)}`);
    }
    const groups = (await (await http('/v1/groups')).json()) as { groups: { group: string }[] };
    assert.ok(groups.groups.every((g) => !/[\u0000-\u001f\u007f]/.test(g.group)));
  } finally {
    c.close();
  }
});

test('GET /v1/groups/:g lists members without their member ids, so nobody can commit or heartbeat as them', async () => {
  const [a, b] = await Promise.all([TestClient.connect(server.wsUrl), TestClient.connect(server.wsUrl)]);
  try {
    const ma = await join(a, 'secret');
    const mb = await join(b, 'secret');
    assert.equal(ma.errorCode, 0);
    assert.equal(mb.errorCode, 0);
    const res = await http('/v1/groups/secret');
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(!text.includes(ma.memberId) && !text.includes(mb.memberId), 'a member id is readable from describe');
    const described = JSON.parse(text) as { members: Record<string, unknown>[] };
    assert.equal(described.members.length, 2);
    for (const m of described.members) {
      assert.deepEqual(Object.keys(m).sort(), ['assignment', 'clientId', 'displayId', 'topics']);
      assert.equal(m.clientId, 'test');
    }
    for (const id of [ma.memberId, mb.memberId]) assert.ok(Buffer.from(id, 'base64url').length >= 16, `member id ${id} has fewer than 16 random bytes`);
  } finally {
    a.close();
    b.close();
  }
});

test('300 members joining one group in a burst get O(N) assignment frames, each ending in the final generation', async () => {
  const CONNECTIONS = 5, PER_CONNECTION = 60, N = CONNECTIONS * PER_CONNECTION;
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => TestClient.connect(server.wsUrl)));
  try {
    const answers = (await Promise.all(clients.map((c) => Promise.all(Array.from({ length: PER_CONNECTION }, () => join(c, 'burst')))))).flat();
    assert.equal(answers.length, N);
    assert.ok(answers.every((a) => a.errorCode === 0));
    const finalGeneration = Math.max(...answers.map((a) => a.generationId));
    const latest = new Map(answers.map((a) => [a.memberId, a.generationId]));
    const pushed = () => clients.flatMap((c) => c.frames.filter((f): f is GroupAssignmentFrame => f.type === 'groupAssignment' && f.group === 'burst'));
    const deadline = Date.now() + 30_000;
    for (;;) {
      for (const f of pushed()) latest.set(f.memberId, Math.max(latest.get(f.memberId) ?? -1, f.generationId));
      if ([...latest.values()].every((g) => g === finalGeneration)) break;
      assert.ok(Date.now() < deadline, 'timed out waiting for every member to reach the final generation');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 100)); // nothing more is coming
    const frames = N + pushed().length;
    assert.ok(frames <= 2 * N, `${frames} assignment frames for ${N} joins (eager pushes: ${N + (N * (N - 1)) / 2})`);
  } finally {
    for (const c of clients) c.close();
  }
});

test('/metrics holds at most maxLagSeries lag series, the largest; series of deleted offsets go away', async () => {
  await server.broker.createTopic({ name: 'lagged', partitions: 1, replicationFactor: 1 });
  const c = await TestClient.connect(server.wsUrl);
  assert.equal((await c.produce('lagged', 0, makeBatch(Array.from({ length: 100 }, (_, i) => `r${i}`)))).errorCode, 0);
  c.close();
  for (let g = 0; g < 60; g++) assert.equal((await post(`/v1/groups/throwaway-${g}/offsets`, { offsets: [{ topic: 'lagged', partition: 0, offset: g }] })).status, 200);
  const series = async () => (await (await http('/metrics')).text()).split('\n').filter((l) => l.startsWith('runnel_consumer_lag{'));
  const lagged = (await series()).filter((l) => l.includes('topic="lagged"'));
  assert.ok((await series()).length <= 20, `${(await series()).length} lag series with maxLagSeries 20`);
  assert.equal(lagged.length, 20, 'the 20 largest lags are all of topic lagged');
  assert.ok(lagged.every((l) => Number(l.split(' ').at(-1)) >= 100 - 19));
  await server.broker.deleteTopic('lagged');
  assert.deepEqual((await series()).filter((l) => l.includes('topic="lagged"')), []);
});
