/**
 * A cluster broker as users run it (`runnel start --cluster`): etcd and three
 * broker processes (LocalCluster). Produce on any broker (forwarded to the
 * leader), read on every broker (its own replica, or through the leader for
 * a topic it holds no replica of), leader SIGKILL and return (ISR shrink,
 * catch-up, preferred leader back), NOT_ENOUGH_REPLICAS below
 * minInsyncReplicas, auto-creation racing on two brokers, deletion seen
 * everywhere.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalCluster, type BrokerNode } from '../cluster/local-cluster.ts';
import type { ClusterView } from '../cluster/cluster-state.ts';

async function http(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const values = (json: any): unknown[] => json.records.map((r: { value: unknown }) => r.value);

test('a 3-broker cluster: forwarded produce, reads on every broker, failover, ISR, minInsyncReplicas, auto-create and delete', { timeout: 240_000 }, async () => {
  const cluster = await LocalCluster.start({
    nodes: 3, brokerLimits: { replicaLagTimeMs: 1500, preferredLeaderDelayMs: 1000, leaderWaitMs: 8000, replicationTimeoutMs: 8000 },
    limits: { clusterFormedTimeoutMs: 60_000 },
  });
  const b = cluster.brokers;
  const viewOf = async (node: BrokerNode, topic: string): Promise<ClusterView> => node.clusterView(2000, topic);
  try {
    // A replicated topic (defaults: RF min(3, brokers) = 3, minInsyncReplicas 2) and one with a single replica.
    const created = await http(b[0].url, 'POST', '/v1/topics', { name: 'orders', partitions: 1 });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(created.json.replicationFactor, 3);
    assert.equal(created.json.minInsyncReplicas, 2);
    assert.equal((await http(b[1].url, 'POST', '/v1/topics', { name: 'orders', partitions: 1 })).status, 409);
    assert.equal((await http(b[1].url, 'POST', '/v1/topics', { name: 'solo', partitions: 1, replicationFactor: 1 })).status, 201);

    // Produce on every broker: two of them forward to the leader.
    for (const [i, node] of b.entries()) {
      const r = await http(node.url, 'POST', '/v1/topics/orders/records', { records: [{ value: { n: i }, partition: 0 }] });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.offsets[0].offset, i);
      assert.equal((await http(node.url, 'POST', '/v1/topics/solo/records', { records: [{ value: { s: i }, partition: 0 }] })).status, 200);
    }
    // Every broker serves both: its own replica of orders, solo through its one replica where it has none.
    for (const node of b) {
      const orders = await until('orders replicated', async () => {
        const r = await http(node.url, 'GET', '/v1/topics/orders/partitions/0/records?offset=0');
        return r.status === 200 && r.json.records.length === 3 ? r.json : undefined;
      });
      assert.deepEqual(values(orders), [{ n: 0 }, { n: 1 }, { n: 2 }]);
      const solo = await http(node.url, 'GET', '/v1/topics/solo/partitions/0/records?offset=0');
      assert.equal(solo.status, 200, JSON.stringify(solo.json));
      assert.deepEqual(values(solo.json), [{ s: 0 }, { s: 1 }, { s: 2 }]);
    }
    const described = await http(b[2].url, 'GET', '/v1/topics/orders');
    const p0 = described.json.partitions[0];
    assert.equal(p0.replicas.length, 3);
    assert.deepEqual([...p0.isr].sort(), [...p0.replicas].sort());
    assert.equal(p0.highWatermark, 3);
    assert.equal(p0.leaderEpoch, 0);

    // SIGKILL the leader: a write through another broker is acknowledged by the new leader (epoch 1).
    const leaderId: number = p0.leader;
    const leader = b.find((n) => n.id === leaderId)!;
    const other = b.find((n) => n.id !== leaderId)!;
    await leader.kill();
    const killedAt = Date.now();
    const after = await http(other.url, 'POST', '/v1/topics/orders/records', { records: [{ value: { n: 3 }, partition: 0 }] });
    assert.equal(after.status, 200, JSON.stringify(after.json));
    assert.equal(after.json.offsets[0].offset, 3);
    console.log(`# leader ${leaderId} SIGKILLed: next write acknowledged after ${Date.now() - killedAt} ms`);
    const v1 = (await viewOf(other, 'orders')).partitions[0];
    assert.ok(v1.leader !== leaderId && v1.leader >= 0 && v1.leaderEpoch >= 1, JSON.stringify(v1));
    assert.ok(!v1.isr.includes(leaderId), `the dead leader left the ISR: ${JSON.stringify(v1)}`);

    // It returns: it truncates nothing committed, catches up, rejoins the ISR and, preferred, leads again.
    await leader.start();
    await until('the old leader back in the ISR and leading again (preferred replica)', async () => {
      const v = (await viewOf(other, 'orders')).partitions[0];
      return v.isr.includes(leaderId) && v.leader === (v.replicas[0] ?? -1) ? v : undefined;
    }, 40_000);
    const back = await http(leader.url, 'GET', '/v1/topics/orders/partitions/0/records?offset=0');
    assert.deepEqual(values(back.json), [{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);

    // Two followers down: once the ISR shrinks below minInsyncReplicas, acks=all is refused NOT_ENOUGH_REPLICAS (retryable) and nothing is acknowledged.
    const now = (await viewOf(b[0], 'orders')).partitions[0];
    const followers = b.filter((n) => n.id !== now.leader);
    const survivor = b.find((n) => n.id === now.leader)!;
    for (const f of followers) await f.kill();
    const refused = await until('NOT_ENOUGH_REPLICAS', async () => {
      const r = await http(survivor.url, 'POST', '/v1/topics/orders/records', { records: [{ value: { refused: true }, partition: 0 }] });
      return r.json?.error?.code === 'NOT_ENOUGH_REPLICAS' ? r : undefined;
    }, 30_000);
    assert.equal(refused.status, 503);
    for (const f of followers) await f.start();
    await until('ISR full again', async () => ((await viewOf(survivor, 'orders')).partitions[0].isr.length === 3 ? true : undefined), 40_000);

    // Auto-creation racing on two brokers: both produces succeed into one topic.
    const [x, y] = await Promise.all([
      http(b[0].url, 'POST', '/v1/topics/auto.race/records', { records: [{ value: 'x', partition: 0 }] }),
      http(b[1].url, 'POST', '/v1/topics/auto.race/records', { records: [{ value: 'y', partition: 0 }] }),
    ]);
    assert.equal(x.status, 200, JSON.stringify(x.json));
    assert.equal(y.status, 200, JSON.stringify(y.json));
    assert.notEqual(x.json.offsets[0].offset, y.json.offsets[0].offset);

    // Deleted on one broker: gone on all.
    assert.equal((await http(b[2].url, 'DELETE', '/v1/topics/solo')).status, 200);
    for (const node of b) await until(`solo gone on broker ${node.id}`, async () => ((await http(node.url, 'GET', '/v1/topics/solo')).status === 404 ? true : undefined));
  } catch (e) {
    console.log(b.map((n) => `--- broker ${n.id}\n${n.log().split('\n').slice(-30).join('\n')}`).join('\n'));
    throw e;
  } finally {
    await cluster.stop();
  }
});
