/**
 * The local cluster launcher: port and data-dir planning, the broker command
 * line, the node table, `runnel cluster` argument parsing, a broker that
 * fails to start reported with its output, and (real etcd + 3 real brokers)
 * a cluster that forms, elects a controller, survives a SIGKILL + restart of
 * one node, and stops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseClusterArgs } from '../cli/cluster.ts';
import { BrokerNode, LocalCluster, brokerArgs, formatNodeTable, freePort, planNodes } from './local-cluster.ts';

test('planNodes: ids 1..N, client/replication port pairs from a base, data dirs under the root', async () => {
  const plans = await planNodes({ nodes: 3, basePort: 18080, rootDir: '/srv/c' });
  assert.deepEqual(plans, [
    { id: 1, clientPort: 18080, replicationPort: 18081, dataDir: '/srv/c/node-1' },
    { id: 2, clientPort: 18082, replicationPort: 18083, dataDir: '/srv/c/node-2' },
    { id: 3, clientPort: 18084, replicationPort: 18085, dataDir: '/srv/c/node-3' },
  ]);
  const free = await planNodes({ nodes: 2, rootDir: '/x' });
  assert.equal(new Set(free.flatMap((p) => [p.clientPort, p.replicationPort])).size, 4);
  await assert.rejects(planNodes({ nodes: 0, rootDir: '/x' }), /--nodes must be 1-9/);
  await assert.rejects(planNodes({ nodes: 3, basePort: 65532, rootDir: '/x' }), /room for 6 ports/);
});

test('brokerArgs: the runnel start contract, peer overrides and limits', () => {
  const args = brokerArgs({
    id: 2, clientPort: 9000, replicationPort: 9001, dataDir: '/d/2', clusterUrls: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
    peerAddresses: new Map([[1, { host: '127.0.0.1', port: 7001 }], [3, { host: '127.0.0.1', port: 7003 }]]),
    minInsyncReplicas: 2, brokerLimits: { replicaLagTimeMs: 2000, brokerLeaseTtlMs: 1500 },
  });
  assert.deepEqual(args, [
    'start', '--cluster', 'http://127.0.0.1:1,http://127.0.0.1:2', '--node-id', '2', '--host', '127.0.0.1', '--port', '9000',
    '--replication-port', '9001', '--data', '/d/2', '--peer-address', '1=127.0.0.1:7001,3=127.0.0.1:7003',
    '--min-insync-replicas', '2', '--limit', 'replicaLagTimeMs=2000', '--limit', 'brokerLeaseTtlMs=1500',
  ]);
});

test('formatNodeTable aligns one row per node', () => {
  const table = formatNodeTable([
    { nodeId: 1, clientUrl: 'http://127.0.0.1:8080', wsUrl: 'ws://127.0.0.1:8080/v1/ws', replicationPort: 8081, dataDir: '/d/node-1', etcdUrl: 'http://127.0.0.1:2379' },
    { nodeId: 10, clientUrl: 'http://127.0.0.1:8082', wsUrl: 'ws://127.0.0.1:8082/v1/ws', replicationPort: 8083, dataDir: '/d/node-10', etcdUrl: 'http://127.0.0.1:2379' },
  ]);
  const lines = table.split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^node  client URL {13}WebSocket {18}replication port  data dir {4}etcd$/);
  assert.equal(lines[1].indexOf('http://'), lines[2].indexOf('http://'));
  assert.equal(lines[1].indexOf('/d/node-1'), lines[2].indexOf('/d/node-10'));
});

test('runnel cluster arguments', () => {
  assert.deepEqual(parseClusterArgs([]), { nodes: 3, brokerLimits: {}, verbose: false });
  assert.deepEqual(parseClusterArgs(['--nodes', '5', '--port', '9000', '--data', '/tmp/c', '--limit', 'brokerLeaseTtlMs=3000', '--verbose']), {
    nodes: 5, basePort: 9000, rootDir: '/tmp/c', brokerLimits: { brokerLeaseTtlMs: '3000' }, verbose: true,
  });
  assert.throws(() => parseClusterArgs(['--nodes', '0']), /--nodes must be 1-9/);
  assert.throws(() => parseClusterArgs(['--nodes', 'x']), /--nodes must be a positive integer/);
  assert.throws(() => parseClusterArgs(['--limit', 'oops']), /name=value/);
  assert.throws(() => parseClusterArgs(['extra']), /unexpected argument 'extra'/);
});

test('a broker that exits before it is ready: start() rejects with its output', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-local-cluster-'));
  try {
    const node = new BrokerNode({
      id: 1, clientPort: await freePort(), replicationPort: await freePort(), dataDir: join(dir, 'node-1'),
      clusterUrls: ['http://127.0.0.1:1'], extraArgs: ['--min-insync-replicas', '3', '--default-replication-factor', '2'],
    });
    await assert.rejects(node.start(), (error: Error) => {
      assert.match(error.message, /node 1 exited \(code 1\) before it was ready/);
      assert.match(error.message, /--min-insync-replicas 3 is above --default-replication-factor 2/);
      return true;
    });
    assert.equal(node.isRunning, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('etcd + 3 brokers: ready, a controller elected, every broker registered; SIGKILL + restart of a node; stop removes the temp root', { timeout: 240_000 }, async () => {
  const cluster = await LocalCluster.start({ nodes: 3, env: { RUNNEL_REQUIRE_NATIVE_UWS: '1' } });
  try {
    const view = await cluster.view();
    assert.ok(view.controller !== null && [1, 2, 3].includes(view.controller), `controller ${view.controller}`);
    assert.deepEqual(view.brokers.map((b) => b.id).sort(), [1, 2, 3]);
    assert.equal((await fetch(`${cluster.brokers[2].url}/readyz`)).status, 200);
    const victim = cluster.brokers.find((b) => b.id === view.controller)!;
    await victim.kill();
    assert.equal(victim.isRunning, false);
    await victim.start();
    const after = await cluster.waitFormed();
    assert.ok(after.controller !== null);
    assert.equal(victim.starts, 2);
  } catch (error) {
    for (const b of cluster.brokers) console.error(b.log());
    throw error;
  } finally {
    await cluster.stop();
  }
  await assert.rejects(stat(cluster.rootDir), /ENOENT/);
});
