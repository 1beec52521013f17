/**
 * A broker cut off from etcd (a blackholed link) while clients and the other
 * brokers still reach it: its leaderships move, and it closes its client
 * connections and refuses new ones (CLUSTER_UNAVAILABLE), so clients move to
 * another broker instead of waiting on produces that can never be
 * acknowledged; when the link heals it serves again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { EtcdProcess } from '../cluster/etcd-process.ts';
import { BrokerNode, planNodes } from '../cluster/local-cluster.ts';
import { FaultProxy } from '../../../test/cluster/fault-proxy.ts';

/** A WebSocket upgrade request's HTTP answer (fetch refuses Upgrade headers). */
function upgradeAnswer(base: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/ws`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 101, body: '' }); });
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a broker cut off from etcd only: leaderships move, it sends clients away (503 CLUSTER_UNAVAILABLE), then serves again', { timeout: 180_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'runnel-isolation-'));
  const etcd = await EtcdProcess.start({ dataDir: join(root, 'etcd') });
  const plans = await planNodes({ nodes: 3, rootDir: root });
  const etcdPort = Number(new URL(etcd.url).port);
  const proxy = await FaultProxy.start({ name: '1->etcd', targetPort: etcdPort });
  const brokers = plans.map((plan, i) => new BrokerNode({
    ...plan, clusterUrls: [i === 0 ? `http://127.0.0.1:${proxy.port}` : etcd.url],
    brokerLimits: { replicaLagTimeMs: 1500, brokerLeaseTtlMs: 2000, preferredLeaderDelayMs: 600_000 },
  }));
  try {
    await Promise.all(brokers.map((b) => b.start()));
    const [cut, other] = brokers;
    await until('3 brokers registered', async () => ((await other.clusterView()).brokers.length === 3 ? true : undefined));
    const post = (b: BrokerNode, path: string, body: unknown) => fetch(`${b.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post(other, '/v1/topics', { name: 'iso', partitions: 3, replicationFactor: 3 })).status, 201);
    const ledByCut = await until('a partition led by the broker to cut off', async () => (await other.clusterView(2000, 'iso')).partitions.find((p) => p.leader === cut.id));
    assert.equal((await fetch(`${cut.url}/readyz`)).status, 200);

    proxy.blackhole();
    const cutAt = Date.now();
    // Its leaderships move to brokers that reach etcd (its lease expires or the probe reports it).
    const moved = await until('its leadership moved', async () => {
      const p = (await other.clusterView(2000, 'iso')).partitions.find((x) => x.partition === ledByCut.partition);
      return p && p.leader !== cut.id && p.leader >= 0 ? p : undefined;
    });
    assert.ok(moved.leaderEpoch > ledByCut.leaderEpoch);
    // It knows it is cut off: readiness fails and WebSocket upgrades are refused with CLUSTER_UNAVAILABLE.
    await until('isolated', async () => ((await fetch(`${cut.url}/readyz`)).status === 503 ? true : undefined));
    const upgrade = await upgradeAnswer(cut.url);
    assert.equal(upgrade.status, 503);
    assert.match(upgrade.body, /CLUSTER_UNAVAILABLE/);
    console.log(`# cut off from etcd: isolated within ${Date.now() - cutAt} ms`);
    // The rest of the cluster acknowledges writes meanwhile.
    const ack = await post(other, '/v1/topics/iso/records', { records: [{ value: 'while cut off', partition: ledByCut.partition }] });
    assert.equal(ack.status, 200);

    proxy.heal();
    await until('serving again', async () => ((await fetch(`${cut.url}/readyz`)).status === 200 ? true : undefined), 30_000);
    const read = await until('the cut-off broker caught up', async () => {
      const r = await fetch(`${cut.url}/v1/topics/iso/partitions/${ledByCut.partition}/records?offset=0`);
      const json = await r.json() as { records: { value: unknown }[] };
      return json.records?.some((x) => x.value === 'while cut off') ? json : undefined;
    }, 30_000);
    assert.ok(read.records.length >= 1);
  } catch (e) {
    console.log(brokers.map((b) => `--- broker ${b.id}\n${b.log().split('\n').slice(-25).join('\n')}`).join('\n'));
    throw e;
  } finally {
    await Promise.allSettled(brokers.map((b) => b.stop()));
    await proxy.close();
    await etcd.stop();
    await rm(root, { recursive: true, force: true });
  }
});
