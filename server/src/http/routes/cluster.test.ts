import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hs256Key } from '../../auth/keys.ts';
import { mintHs256Token } from '../../auth/mint.ts';
import { createTokenVerifier } from '../../auth/verifier.ts';
import { Broker } from '../../broker/broker.ts';
import type { ClusterPartitionView, ClusterView } from '../../cluster/cluster-state.ts';
import { validateLimits, type Limits } from '../../limits.ts';
import { createMetrics } from '../../metrics.ts';
import { AccessControl } from '../../request/access-control.ts';
import { RequestLayer } from '../../request/request-layer.ts';
import { createHttpApp } from '../app.ts';
import { MemoryBroker } from '../testing/memory-broker.ts';
import { errorCode } from '../testing/app-fixture.ts';
import { boundedPartitions, clusterSamples, partitionHealth, validateClusterViewLimits, type ClusterViewLimits } from './cluster.ts';

function partition(topic: string, p: number, fields: Partial<ClusterPartitionView> = {}): ClusterPartitionView {
  return { topic, partition: p, leader: 1, leaderEpoch: 3, replicas: [1, 2, 3], isr: [1, 2, 3], role: 'leader', highWatermark: 10, logEndOffset: 12, followers: [], ...fields };
}

/** Broker 1 of three, the controller; broker 3 is down (not registered). */
function threeNodeView(): ClusterView {
  return {
    brokerId: 1,
    controller: 1,
    etcdConnected: true,
    brokers: [
      { id: 2, clientUrl: 'http://127.0.0.1:8082', replicationHost: '127.0.0.1', replicationPort: 9092, startedAtMs: 1_700_000_000_000, leaseId: '22' },
      { id: 1, clientUrl: 'http://127.0.0.1:8081', replicationHost: '127.0.0.1', replicationPort: 9091, startedAtMs: 1_700_000_000_000, leaseId: '11' },
    ],
    partitions: [
      partition('orders', 1, {
        isr: [1, 2],
        followers: [{ brokerId: 2, lagRecords: 0, lagMs: 0, inIsr: true }, { brokerId: 3, lagRecords: 40, lagMs: 12_000, inIsr: false }],
      }),
      partition('orders', 0, { followers: [{ brokerId: 2, lagRecords: 2, lagMs: 15, inIsr: true }, { brokerId: 3, lagRecords: 1, lagMs: 5, inIsr: true }] }),
      partition('clicks', 0, { leader: 2, replicas: [2, 3, 1], isr: [2, 1], role: 'follower', followers: undefined }),
      partition('clicks', 1, { leader: -1, replicas: [3], isr: [3], role: 'none', followers: undefined }),
      partition('payroll', 0, { leader: 2, role: 'follower', followers: undefined }),
    ],
  };
}

/** The app over the route tests' in-memory broker (anonymous clients), with these topics created. */
async function memoryApp(opts: { view?: () => ClusterView; topics?: string[]; limits?: Partial<ClusterViewLimits> } = {}) {
  const broker = new MemoryBroker();
  const metrics = createMetrics();
  const limits = { ...validateLimits(), ...opts.limits } as Limits;
  const errors: unknown[] = [];
  const app = createHttpApp({ broker, metrics, limits, isReady: () => true, logError: (e) => errors.push(e), clusterView: opts.view });
  for (const name of opts.topics ?? []) {
    const res = await app.request('/v1/topics', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, partitions: 2 }) });
    assert.equal(res.status, 201);
  }
  return { app, metrics, errors };
}

const metricLine = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('single node: GET /v1/cluster is a one-node view of the broker\'s own partitions', async () => {
  const { app, errors } = await memoryApp({ topics: ['clicks'] });
  const produced = await app.request('/v1/topics/clicks/records', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: [{ value: 1, partition: 1 }, { value: 2, partition: 1 }] }),
  });
  assert.equal(produced.status, 200);
  const res = await app.request('/v1/cluster');
  assert.equal(res.status, 200);
  const view = await res.json() as ClusterView;
  assert.deepEqual(errors, []);
  assert.equal(view.brokerId, 0);
  assert.equal(view.controller, 0, 'a single node is its own controller');
  assert.equal(view.etcdConnected, false);
  assert.deepEqual(view.brokers.map((b) => [b.id, b.clientUrl, b.leaseId]), [[0, '', '']]);
  assert.deepEqual(view.partitions, [
    { topic: 'clicks', partition: 0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0], role: 'leader', highWatermark: 0, logEndOffset: 0, followers: [] },
    { topic: 'clicks', partition: 1, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0], role: 'leader', highWatermark: 2, logEndOffset: 2, followers: [] },
  ]);
});

test('cluster view: brokers by id, partitions by topic then partition, of visible topics only; ?topic= narrows', async () => {
  // payroll is in the view but not among the broker's topics (GET /v1/topics): it is not shown.
  const { app } = await memoryApp({ view: threeNodeView, topics: ['orders', 'clicks'] });
  const view = await (await app.request('/v1/cluster')).json() as ClusterView & { omittedPartitions?: number };
  assert.deepEqual(view.brokers.map((b) => b.id), [1, 2]);
  assert.deepEqual(view.partitions.map((p) => `${p.topic}/${p.partition}`), ['clicks/0', 'clicks/1', 'orders/0', 'orders/1']);
  assert.equal(view.omittedPartitions, undefined);
  assert.deepEqual(view.partitions[3], threeNodeView().partitions[0], 'a partition as the view has it, followers included');
  assert.deepEqual([view.brokerId, view.controller, view.etcdConnected], [1, 1, true]);

  const orders = await (await app.request('/v1/cluster?topic=orders')).json() as ClusterView;
  assert.deepEqual(orders.partitions.map((p) => `${p.topic}/${p.partition}`), ['orders/0', 'orders/1']);
  assert.deepEqual(orders.brokers.map((b) => b.id), [1, 2], 'the nodes whatever the filter');
  const none = await (await app.request('/v1/cluster?topic=payroll')).json() as ClusterView;
  assert.deepEqual(none.partitions, []);
  const bad = await app.request('/v1/cluster?topic=');
  assert.equal(bad.status, 400);
  assert.equal(await errorCode(bad), 'INVALID_REQUEST');
});

test('maxClusterViewPartitions: offline and under-replicated partitions are kept first, the rest counted in omittedPartitions', async () => {
  const { app } = await memoryApp({ view: threeNodeView, topics: ['orders', 'clicks'], limits: { maxClusterViewPartitions: 2 } });
  const view = await (await app.request('/v1/cluster')).json() as ClusterView & { omittedPartitions?: number };
  // clicks/1 offline first, then the under-replicated by topic: clicks/0 (kept), orders/1 (cut); orders/0 (healthy) cut.
  assert.deepEqual(view.partitions.map((p) => `${p.topic}/${p.partition}:${partitionHealth(p)}`), ['clicks/0:under-replicated', 'clicks/1:offline']);
  assert.equal(view.omittedPartitions, 2);

  const healthyOnly = Array.from({ length: 5 }, (_, i) => partition('t', 4 - i));
  const { kept, omitted } = boundedPartitions([...healthyOnly, partition('t', 9, { isr: [1] })], 3);
  assert.deepEqual(kept.map((p) => p.partition), [0, 1, 9], 'the unhealthy one, then the first healthy ones, by partition');
  assert.equal(omitted, 3);
});

test('metrics: gauges from the view; a partition is reported by its leader, a leaderless one by the controller', async () => {
  let view = threeNodeView();
  const { app, metrics } = await memoryApp({ view: () => view });
  const text = await (await app.request('/metrics')).text();
  assert.equal(metricLine(text, 'runnel_cluster_brokers'), 2);
  assert.equal(metricLine(text, 'runnel_cluster_is_controller'), 1);
  assert.equal(metricLine(text, 'runnel_cluster_etcd_connected'), 1);
  assert.equal(metricLine(text, 'runnel_partitions_led'), 2);
  assert.equal(metricLine(text, 'runnel_under_replicated_partitions'), 1, 'orders/1 (led here); clicks/0 is broker 2\'s to report');
  assert.equal(metricLine(text, 'runnel_offline_partitions'), 1, 'clicks/1, reported by the controller');
  assert.equal(metricLine(text, 'runnel_partition_leader{topic="orders",partition="1"}'), 1);
  assert.equal(metricLine(text, 'runnel_partition_isr_size{topic="orders",partition="1"}'), 2);
  assert.equal(metricLine(text, 'runnel_partition_replicas{topic="orders",partition="1"}'), 3);
  assert.equal(metricLine(text, 'runnel_partition_leader{topic="clicks",partition="1"}'), -1);
  assert.equal(metricLine(text, 'runnel_partition_leader{topic="clicks",partition="0"}'), undefined, 'led by broker 2: not reported here');
  assert.equal(metricLine(text, 'runnel_replica_lag_records{topic="orders",partition="1",follower="3"}'), 40);
  assert.equal(metricLine(text, 'runnel_replica_lag_ms{topic="orders",partition="1",follower="3"}'), 12_000);
  assert.equal(metricLine(text, 'runnel_replica_lag_ms{topic="orders",partition="0",follower="2"}'), 15);

  // Next scrape: broker 1 lost the controllership and orders/1; its series go, nothing stale stays.
  view = { ...threeNodeView(), controller: 2, partitions: threeNodeView().partitions.filter((p) => !(p.topic === 'orders' && p.partition === 1)) };
  const next = await metrics.registry.metrics();
  assert.equal(metricLine(next, 'runnel_cluster_is_controller'), 0);
  assert.equal(metricLine(next, 'runnel_offline_partitions'), 0, 'only the controller counts offline partitions');
  assert.equal(metricLine(next, 'runnel_partition_leader{topic="clicks",partition="1"}'), undefined);
  assert.equal(metricLine(next, 'runnel_partition_isr_size{topic="orders",partition="1"}'), undefined);
  assert.equal(metricLine(next, 'runnel_replica_lag_records{topic="orders",partition="1",follower="3"}'), undefined);
  assert.equal(metricLine(next, 'runnel_partitions_led'), 1);
  assert.equal(metricLine(next, 'runnel_under_replicated_partitions'), 0);
  // A single gauge read alone is filled too (the snapshot is per scrape, not per registry pass only).
  const single = await metrics.registry.getSingleMetricAsString('runnel_partitions_led');
  assert.equal(metricLine(single, 'runnel_partitions_led'), 1);
});

test('metrics: per-partition series bounded by maxPartitionSeries (unhealthy first), follower series by maxReplicaLagSeries (largest lags)', () => {
  const many: ClusterView = {
    ...threeNodeView(),
    partitions: Array.from({ length: 50 }, (_, i) => partition('big', i, {
      isr: i === 37 ? [1] : [1, 2, 3],
      followers: [{ brokerId: 2, lagRecords: i, lagMs: i * 10, inIsr: true }, { brokerId: 3, lagRecords: 0, lagMs: 0, inIsr: true }],
    })),
  };
  const s = clusterSamples(many, { maxPartitionSeries: 3, maxReplicaLagSeries: 2 });
  assert.equal(s.partitionsLed, 50, 'totals stay exact');
  assert.equal(s.underReplicated, 1);
  assert.deepEqual(s.partitions.map((p) => p.partition), [37, 0, 1]);
  assert.deepEqual(s.followers.map((f) => [f.partition, f.follower, f.lagRecords]), [[49, 2, 49], [48, 2, 48]]);
  const none = clusterSamples(many, { maxPartitionSeries: 0, maxReplicaLagSeries: 0 });
  assert.deepEqual([none.partitions.length, none.followers.length], [0, 0]);
});

test('metrics on a single node: one broker, its own controller, no etcd, every partition led here', async () => {
  const { app } = await memoryApp({ topics: ['a', 'b'] });
  const text = await (await app.request('/metrics')).text();
  assert.equal(metricLine(text, 'runnel_cluster_brokers'), 1);
  assert.equal(metricLine(text, 'runnel_cluster_is_controller'), 1);
  assert.equal(metricLine(text, 'runnel_cluster_etcd_connected'), 0);
  assert.equal(metricLine(text, 'runnel_partitions_led'), 4);
  assert.equal(metricLine(text, 'runnel_under_replicated_partitions'), 0);
  assert.equal(metricLine(text, 'runnel_offline_partitions'), 0);
  assert.equal(metricLine(text, 'runnel_partition_isr_size{topic="b",partition="1"}'), 1);
});

test('auth: a token sees the nodes and the partitions of topics it may describe; no token is 401; admin sees all', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'runnel-cluster-route-'));
  const broker = await Broker.open({ brokerId: 7, dataDir, host: '127.0.0.1', port: 0, autoCreateTopics: false, defaultPartitions: 1, flushIntervalMs: 0, limits: validateLimits() });
  try {
    await broker.createTopic({ name: 'orders', partitions: 2, replicationFactor: 1 });
    await broker.createTopic({ name: 'payroll', partitions: 1, replicationFactor: 1 });
    const secret = 'cluster-route-test-secret-cluster-route-test-secret';
    const audit: string[] = [];
    const access = new AccessControl({ verifier: createTokenVerifier({ keys: [hs256Key(secret, 'test')] }), writeAudit: (line) => audit.push(line) });
    const metrics = createMetrics();
    const app = createHttpApp({ broker: new RequestLayer(broker, access), metrics, limits: validateLimits(), isReady: () => true, logError: (e) => { throw e; } });
    const token = (grants: Parameters<typeof mintHs256Token>[0]['grants']) => mintHs256Token({ subject: 'u', grants, ttlMs: 60_000, secret, nowMs: Date.now() });
    const get = async (t?: string) => app.request('/v1/cluster', t === undefined ? {} : { headers: { authorization: `Bearer ${t}` } });

    const anonymous = await get();
    assert.equal(anonymous.status, 401);
    assert.equal(await errorCode(anonymous), 'SASL_AUTHENTICATION_FAILED');

    const reader = await (await get(await token({ subscribe: ['orders'] }))).json() as ClusterView;
    assert.equal(reader.brokerId, 7, 'the request layer\'s broker id');
    assert.deepEqual(reader.brokers.map((b) => b.id), [7]);
    assert.deepEqual(reader.partitions.map((p) => `${p.topic}/${p.partition}/${p.leader}/${p.role}`), ['orders/0/7/leader', 'orders/1/7/leader']);
    const nobody = await (await get(await token({ group: ['g'] }))).json() as ClusterView;
    assert.deepEqual(nobody.partitions, [], 'a token without topic grants sees the nodes only');
    assert.deepEqual(audit.filter((l) => !l.includes('"authentication_failed"')), [], 'hiding topics from a list is not an audited refusal');
    const admin = await (await get(await token({ admin: true }))).json() as ClusterView;
    assert.deepEqual(admin.partitions.map((p) => `${p.topic}/${p.partition}`), ['orders/0', 'orders/1', 'payroll/0']);

    // The scrape reads as the broker, whoever asks for /metrics (admin-only with auth).
    const scrape = await app.request('/metrics', { headers: { authorization: `Bearer ${await token({ admin: true })}` } });
    assert.equal(metricLine(await scrape.text(), 'runnel_partitions_led'), 3);
  } finally {
    await broker.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('OpenAPI documents GET /v1/cluster with the ClusterView schema', async () => {
  const { app } = await memoryApp();
  const doc = await (await app.request('/v1/openapi.json')).json();
  const get = doc.paths['/v1/cluster']?.get;
  assert.ok(get, 'GET /v1/cluster documented');
  assert.equal(get.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/ClusterView');
  const view = doc.components.schemas.ClusterView;
  assert.deepEqual(Object.keys(view.properties).sort(), ['brokerId', 'brokers', 'controller', 'etcdConnected', 'omittedPartitions', 'partitions']);
  assert.deepEqual(Object.keys(doc.components.schemas.ClusterPartition.properties).sort(),
    ['followers', 'highWatermark', 'isr', 'leader', 'leaderEpoch', 'logEndOffset', 'partition', 'replicas', 'role', 'topic']);
});

test('validateClusterViewLimits: defaults, and refuses negative, fractional and zero-partition limits', () => {
  assert.deepEqual(validateClusterViewLimits(), { maxClusterViewPartitions: 10_000, maxPartitionSeries: 1000, maxReplicaLagSeries: 1000 });
  assert.equal(validateClusterViewLimits({ maxPartitionSeries: 0 }).maxPartitionSeries, 0);
  assert.throws(() => validateClusterViewLimits({ maxReplicaLagSeries: -1 }), RangeError);
  assert.throws(() => validateClusterViewLimits({ maxPartitionSeries: 1.5 }), RangeError);
  assert.throws(() => validateClusterViewLimits({ maxClusterViewPartitions: 0 }), RangeError);
});
