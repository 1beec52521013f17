import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterOverview, ClusterViewJson, type PolledViews } from './cluster-overview.ts';
import { peerView, selfView, SINGLE_NODE } from './cluster-fixtures.ts';

const ORIGIN = 'http://127.0.0.1:8081';

test('nodes: registered ones up, a replica that is not registered down, controller and self marked', () => {
  const o = clusterOverview({ self: selfView(), peers: new Map([[2, peerView()]]) }, ORIGIN);
  assert.deepEqual(o.nodes.map((n) => [n.id, n.state, n.isController, n.isSelf, n.leads, n.hosts]), [
    [1, 'up', true, true, 1, 2],
    [2, 'up', false, false, 1, 2],
    [3, 'down', false, false, 0, 2],
  ]);
  assert.equal(o.nodes[1].url, 'http://127.0.0.1:8082');
  assert.equal(o.isSingleNode, false);
});

test('partitions: health, and follower lag from each partition\'s leader (this broker\'s or a peer\'s answer)', () => {
  const o = clusterOverview({ self: selfView(), peers: new Map([[2, peerView()]]) }, ORIGIN);
  assert.deepEqual(o.partitions.map((p) => [p.partition, p.health, p.maxLagRecords, p.maxLagMs]), [
    [0, 'under-replicated', 900, 45_000], // led here
    [1, 'ok', 0, 0], // led by #2: from #2's answer
    [2, 'offline', null, null],
  ]);
  assert.deepEqual(o.totals, { partitions: 3, underReplicated: 1, offline: 1 });
  assert.equal(o.omittedPartitions, 0);
});

test('a peer that did not answer is unreachable, and its partitions\' lag unknown', () => {
  const polled: PolledViews = { self: selfView(), peers: new Map([[2, { error: 'http://127.0.0.1:8082/v1/cluster: connection refused' }]]) };
  const o = clusterOverview(polled, ORIGIN);
  const two = o.nodes.find((n) => n.id === 2)!;
  assert.deepEqual([two.state, two.problem], ['unreachable', 'http://127.0.0.1:8082/v1/cluster: connection refused']);
  assert.equal(o.partitions[1].followers, null);
  assert.equal(o.partitions[1].maxLagRecords, null);
});

test('a peer that no longer leads the partition gives no lag (leadership moved between the two answers)', () => {
  const stale = { ...peerView(), partitions: peerView().partitions.map((p) => ({ ...p, role: 'follower' as const })) };
  const o = clusterOverview({ self: selfView(), peers: new Map([[2, stale]]) }, ORIGIN);
  assert.equal(o.partitions[1].maxLagRecords, null);
});

test('maxRows: offline and under-replicated rows kept first, the rest (and the server\'s omitted ones) counted', () => {
  const view = selfView();
  const healthy = Array.from({ length: 10 }, (_, i) => ({ ...view.partitions[1], topic: 'a', partition: i }));
  const self = { ...view, partitions: [...healthy, ...view.partitions], omittedPartitions: 5 };
  const o = clusterOverview({ self, peers: new Map() }, ORIGIN, { maxRows: 3 });
  assert.deepEqual(o.partitions.map((p) => `${p.topic}/${p.partition}`), ['a/0', 'orders/0', 'orders/2']);
  assert.equal(o.omittedPartitions, 10 + 5);
  assert.equal(o.totals.partitions, 13 + 5);
});

test('single node: one node at the page\'s origin, its own controller, no etcd', () => {
  const o = clusterOverview({ self: SINGLE_NODE, peers: new Map() }, ORIGIN);
  assert.equal(o.isSingleNode, true);
  assert.deepEqual(o.nodes.map((n) => [n.id, n.url, n.state, n.isController]), [[0, ORIGIN, 'up', true]]);
  assert.deepEqual([o.partitions[0].maxLagRecords, o.partitions[0].health], [0, 'ok']);
  // A cluster broker that lost etcd reports no controller: not a single node.
  assert.equal(clusterOverview({ self: { ...selfView(), etcdConnected: false, controller: null }, peers: new Map() }, ORIGIN).isSingleNode, false);
});

test('ClusterViewJson accepts the server\'s answer (extra fields such as leaseId ignored) and refuses a wrong shape', () => {
  const answer = { ...selfView(), brokers: selfView().brokers.map((b) => ({ ...b, replicationHost: 'h', replicationPort: 1, leaseId: '7' })) };
  assert.equal(ClusterViewJson.safeParse(answer).success, true);
  assert.equal(ClusterViewJson.safeParse({ ...selfView(), controller: 'one' }).success, false);
  assert.equal(ClusterViewJson.safeParse({ error: { code: 'SASL_AUTHENTICATION_FAILED', message: 'no token' } }).success, false);
});
