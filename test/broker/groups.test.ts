/**
 * Consumer groups over real sockets: 3 members split 6 partitions; a leave
 * and a session timeout rebalance the survivors (each generation exclusive
 * and complete); a commit from a stale generation or a member that lost the
 * partition is rejected; committed offsets survive a broker restart.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorTable, type BrokerFrame, type GroupAssignmentFrame } from '@runnel/client/codec';
import { TestClient, makeBatch, startTestServer, type TestServer } from './harness.ts';

let server: TestServer;
let dataDir: string;
before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'runnel-groups-'));
  server = await startTestServer({ dataDir, limits: { minGroupSessionTimeoutMs: 100, groupTickMs: 20 } });
  await server.broker.createTopic({ name: 'orders', partitions: 6, replicationFactor: 1 });
  // Commits may not pass a partition's highWatermark: give every partition 50 records.
  const producer = await TestClient.connect(server.wsUrl);
  for (let p = 0; p < 6; p++) assert.equal((await producer.produce('orders', p, makeBatch(Array.from({ length: 50 }, (_, i) => `r${i}`)))).errorCode, 0);
  producer.close();
});
after(async () => {
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

type Assignment = GroupAssignmentFrame;

async function joinGroup(c: TestClient, sessionTimeoutMs = 30_000): Promise<Assignment> {
  const a = await c.request<Assignment>({ type: 'groupJoin', requestId: 0, group: 'g1', memberId: '', topics: ['orders'], sessionTimeoutMs });
  assert.equal(a.errorCode, 0);
  return a;
}

/** Latest assignment pushed to (or answered to) a member. */
async function latestAssignment(c: TestClient, generationId: number): Promise<Assignment> {
  return (await c.waitFor((f) => f.type === 'groupAssignment' && f.generationId === generationId)) as Assignment;
}

function owned(a: Assignment): number[] {
  return a.assignments.flatMap((x) => x.partitions).sort((x, y) => x - y);
}

function assertExclusiveAndComplete(assignments: Assignment[], partitions: number): void {
  const all = assignments.flatMap(owned).sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: partitions }, (_, i) => i), 'each partition exactly once');
  assert.equal(new Set(assignments.map((a) => a.generationId)).size, 1, 'one generation');
}

test('3 members: join, leave, timeout rebalance; stale commits rejected', async () => {
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => TestClient.connect(server.wsUrl)));
  const a1 = await joinGroup(a);
  const b1 = await joinGroup(b);
  const c1 = await joinGroup(c, 300);
  const gen = c1.generationId;
  // c keeps its 300 ms session alive until the test wants it to time out.
  const cBeat = setInterval(() => c.send({ type: 'groupHeartbeat', group: 'g1', memberId: c1.memberId, generationId: gen }), 50);
  assert.equal(gen, a1.generationId + 2);
  const aNow = await latestAssignment(a, gen);
  const bNow = await latestAssignment(b, gen);
  assertExclusiveAndComplete([aNow, bNow, c1], 6);
  assert.deepEqual([owned(aNow).length, owned(bNow).length, owned(c1).length], [2, 2, 2]);

  // A commit for a partition a owns in this generation is accepted...
  const ok = await a.request<Extract<BrokerFrame, { type: 'offsetCommitAck' }>>({ type: 'offsetCommit', requestId: 0, group: 'g1', generationId: gen, memberId: aNow.memberId, offsets: [{ topic: 'orders', partition: owned(aNow)[0], offset: 42, metadata: 'm' }] });
  assert.equal(ok.errorCode, 0);
  // ...one with a1's stale generation is not.
  const stale = await a.request<Extract<BrokerFrame, { type: 'offsetCommitAck' }>>({ type: 'offsetCommit', requestId: 0, group: 'g1', generationId: a1.generationId, memberId: a1.memberId, offsets: [{ topic: 'orders', partition: owned(aNow)[0], offset: 43, metadata: '' }] });
  assert.equal(stale.errorCode, ErrorTable.ILLEGAL_GENERATION.code);
  // ...nor one for a partition owned by b.
  const notMine = await a.request<Extract<BrokerFrame, { type: 'offsetCommitAck' }>>({ type: 'offsetCommit', requestId: 0, group: 'g1', generationId: gen, memberId: aNow.memberId, offsets: [{ topic: 'orders', partition: owned(bNow)[0], offset: 1, metadata: '' }] });
  assert.equal(notMine.errorCode, ErrorTable.ILLEGAL_GENERATION.code);

  // b leaves: a and c split 6.
  b.send({ type: 'groupLeave', group: 'g1', memberId: bNow.memberId });
  const aAfterLeave = await latestAssignment(a, gen + 1);
  const cAfterLeave = await latestAssignment(c, gen + 1);
  assertExclusiveAndComplete([aAfterLeave, cAfterLeave], 6);

  // c stops heartbeating (300 ms session): a alone owns everything; a keeps heartbeating.
  clearInterval(cBeat);
  const beat = setInterval(() => a.send({ type: 'groupHeartbeat', group: 'g1', memberId: aNow.memberId, generationId: gen + 1 }), 50);
  const aAlone = await latestAssignment(a, gen + 2);
  clearInterval(beat);
  assert.deepEqual(owned(aAlone), [0, 1, 2, 3, 4, 5]);
  const removed = await c.waitFor((f) => f.type === 'groupAssignment' && f.errorCode === ErrorTable.UNKNOWN_MEMBER_ID.code);
  assert.ok(removed);
  const lateC = await c.request<Extract<BrokerFrame, { type: 'offsetCommitAck' }>>({ type: 'offsetCommit', requestId: 0, group: 'g1', generationId: gen + 1, memberId: c1.memberId, offsets: [{ topic: 'orders', partition: 5, offset: 9, metadata: '' }] });
  assert.equal(lateC.errorCode, ErrorTable.UNKNOWN_MEMBER_ID.code, 'a timed-out member cannot commit');

  // Disconnecting a leaves the group empty: standalone commits are now allowed.
  a.close();
  await a.waitClosed();
  await new Promise((r) => setTimeout(r, 50));
  const standalone = await b.request<Extract<BrokerFrame, { type: 'offsetCommitAck' }>>({ type: 'offsetCommit', requestId: 0, group: 'g1', generationId: -1, memberId: '', offsets: [{ topic: 'orders', partition: 5, offset: 7, metadata: '' }] });
  assert.equal(standalone.errorCode, 0);
  const fetched = await b.request<Extract<BrokerFrame, { type: 'offsetFetchResult' }>>({ type: 'offsetFetch', requestId: 0, group: 'g1', topics: ['orders'] });
  const byPartition = new Map(fetched.offsets.map((o) => [o.partition, o.offset]));
  assert.equal(byPartition.get(owned(aNow)[0]), 42);
  assert.equal(byPartition.get(5), 7);
  b.close();
  c.close();
});

test('committed offsets survive a restart', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const ack = await c.request<Extract<BrokerFrame, { type: 'offsetCommitAck' }>>({ type: 'offsetCommit', requestId: 0, group: 'durable', generationId: -1, memberId: '', offsets: [{ topic: 'orders', partition: 2, offset: 50, metadata: 'x' }] });
  assert.equal(ack.errorCode, 0);
  c.close();
  await server.close();
  server = await startTestServer({ dataDir });
  assert.deepEqual(await server.broker.groups.fetchOffsets('durable'), [{ topic: 'orders', partition: 2, offset: 50, metadata: 'x' }]);
  const described = await server.broker.groups.describeGroup('durable');
  assert.equal(described.state, 'Empty');
  assert.equal(described.offsets[0].lag, 0);
});

test('clients cannot produce to, create or delete __consumer_offsets (its records are replayed as commits)', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const ack = await c.produce('__consumer_offsets', 0, makeBatch(['{"v":1,"o":[["orders",0,49,""]]}']));
  assert.equal(ack.errorCode, ErrorTable.TOPIC_AUTHORIZATION_FAILED.code);
  c.close();
  assert.equal(server.broker.hasTopic('__consumer_offsets'), false, 'not auto-created by the attempt');
  const create = await fetch(`${server.url}/v1/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: '__consumer_offsets', partitions: 1 }) });
  assert.equal(create.status, 403);
  assert.equal(server.broker.hasTopic('__consumer_offsets'), false);
  const del = await fetch(`${server.url}/v1/topics/__consumer_offsets`, { method: 'DELETE' });
  assert.equal(del.status, 403);
});
