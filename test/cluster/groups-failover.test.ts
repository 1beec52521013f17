/**
 * Consumer groups in a real cluster: etcd and 3 broker processes
 * (LocalCluster), a topic with replication factor 3, two SDK group consumers
 * connected to different brokers (one group across brokers), committing as
 * they go. The broker coordinating the group (leader of its
 * `__consumer_offsets` partition), which is also one member's broker, is
 * SIGKILLed: the committed offsets, read
 * through the surviving brokers all along, never move backwards and are
 * still there after the kill; the members rejoin at the new coordinator and
 * the group finishes the records produced after the kill.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createClient, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { createGroupConsumer, type GroupConsumer } from '@runnel/client/group';
import { LocalCluster, type BrokerNode } from '../../server/src/cluster/local-cluster.ts';
import { OFFSETS_TOPIC, coordinatorPartitionOf } from '../../server/src/groups/coordinator-placement.ts';
import { defaultClusterGroupLimits } from '../../server/src/groups/cluster-group-limits.ts';

const WS = WebSocket as unknown as WebSocketConstructor;
const TOPIC = 'grp-failover';
const GROUP = 'failover-group';
const PARTITIONS = 4;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Produces `n` records per partition through `broker` (acks=all, HTTP JSON). */
async function produce(broker: BrokerNode, n: number, tag: string): Promise<void> {
  for (let p = 0; p < PARTITIONS; p++) {
    const res = await postJson(`${broker.url}/v1/topics/${TOPIC}/records`, { records: Array.from({ length: n }, (_, i) => ({ value: `${tag}-${p}-${i}`, partition: p })) });
    assert.equal(res.status, 200, `produce via broker ${broker.id}: ${res.status} ${await res.text()}`);
  }
}

/** The group's committed offsets as `broker` answers them (partition → offset), or null when it cannot answer now. */
async function committed(broker: BrokerNode): Promise<Map<number, number> | null> {
  try {
    const res = await fetch(`${broker.url}/v1/groups/${GROUP}/offsets?topic=${TOPIC}`, { signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) return null;
    const { offsets } = await res.json() as { offsets: { partition: number; offset: number }[] };
    return new Map(offsets.map((o) => [o.partition, o.offset]));
  } catch {
    return null;
  }
}

async function highWatermarks(broker: BrokerNode): Promise<number[]> {
  const res = await fetch(`${broker.url}/v1/topics/${TOPIC}`);
  const { partitions } = await res.json() as { partitions: { partition: number; highWatermark: number }[] };
  return partitions.sort((a, b) => a.partition - b.partition).map((p) => p.highWatermark);
}

test('SIGKILL of the group coordinator: committed offsets survive and never move backwards; members rejoin and finish', { timeout: 240_000 }, async () => {
  const cluster = await LocalCluster.start({ nodes: 3, brokerLimits: { minGroupSessionTimeoutMs: 1000 } });
  const clients: RunnelClient[] = [];
  const consumers: GroupConsumer<unknown>[] = [];
  const failures: unknown[] = [];
  let polling = true;
  try {
    const [b1] = cluster.brokers;
    const created = await postJson(`${b1.url}/v1/topics`, { name: TOPIC, partitions: PARTITIONS, replicationFactor: 3 });
    assert.equal(created.status, 201, await created.text());
    // NB: every broker serves the topic once its registry synced from etcd.
    await until('every broker serves the topic', async () => (await Promise.all(cluster.brokers.map((b) => fetch(`${b.url}/v1/topics/${TOPIC}`).then((r) => r.status)))).every((s) => s === 200));
    await produce(b1, 50, 'before');

    // The first group request creates __consumer_offsets; then who coordinates the group is known:
    // the leader of its __consumer_offsets partition.
    await until('a standalone commit is accepted', async () => (await postJson(`${b1.url}/v1/groups/${GROUP}/offsets`, { offsets: [{ topic: TOPIC, partition: 0, offset: 0 }] })).status === 200);
    const offsetsPartition = coordinatorPartitionOf(GROUP, defaultClusterGroupLimits.offsetsTopicPartitions);
    const view = await b1.clusterView(5000, OFFSETS_TOPIC);
    const coordinator = view.partitions.find((p) => p.topic === OFFSETS_TOPIC && p.partition === offsetsPartition)?.leader;
    assert.ok(coordinator !== undefined && coordinator > 0, `no coordinator in ${JSON.stringify(view.partitions.filter((p) => p.topic === OFFSETS_TOPIC))}`);
    const victim = cluster.brokers.find((b) => b.id === coordinator)!;
    const survivors = cluster.brokers.filter((b) => b.id !== victim.id);

    // One member is connected to the coordinator's broker (it loses both at once), the other to a survivor.
    for (const preferred of [victim, survivors[0]]) {
      const others = cluster.brokers.filter((b) => b !== preferred).map((b) => b.wsUrl);
      const client = createClient({ urls: [preferred.wsUrl, ...others], WebSocket: WS, beacon: false });
      clients.push(client);
      const consumer = createGroupConsumer(client, { group: GROUP, topics: [TOPIC], reset: 'earliest', sessionTimeoutMs: 3000, handler: async () => {} });
      consumer.closed.catch((e: unknown) => failures.push(e));
      consumers.push(consumer);
    }
    await Promise.all(consumers.map((c) => c.ready));

    const hw1 = await highWatermarks(b1);
    await until('the group committed everything produced before the kill', async () => {
      const c = await committed(b1);
      return c !== null && hw1.every((hw, p) => c.get(p) === hw);
    });

    // Committed offsets as read through the survivors, all along: never backwards.
    const highest = new Map<number, number>();
    const backwards: string[] = [];
    const poller = (async () => {
      while (polling) {
        for (const b of survivors) {
          const c = await committed(b);
          for (const [p, offset] of c ?? []) {
            if (offset < (highest.get(p) ?? 0)) backwards.push(`partition ${p}: ${highest.get(p)} -> ${offset} via broker ${b.id}`);
            highest.set(p, Math.max(offset, highest.get(p) ?? 0));
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const killedAtMs = Date.now();
    await victim.kill('SIGKILL');
    const afterKill = await (async () => {
      let c: Map<number, number> | null = null;
      await until('a survivor answers the committed offsets after the kill', async () => (c = await committed(survivors[0])) !== null, 60_000);
      return c!;
    })();
    for (const [p, hw] of hw1.entries()) assert.equal(afterKill.get(p), hw, `partition ${p}: committed offset after the kill`);

    await produce(survivors[0], 50, 'after');
    const hw2 = await highWatermarks(survivors[0]);
    await until('the group rejoined and committed everything produced after the kill', async () => {
      const c = await committed(survivors[1]);
      return c !== null && hw2.every((hw, p) => c.get(p) === hw);
    }, 120_000);
    console.log(`# coordinator broker ${victim.id} (${OFFSETS_TOPIC}/${offsetsPartition}) SIGKILLed; offsets read back through a survivor after the kill and the post-kill records committed ${Date.now() - killedAtMs} ms after it`);
    polling = false;
    await poller;
    assert.deepEqual(backwards, [], 'committed offsets moved backwards');
    assert.deepEqual(failures, [], 'no group consumer gave up');
  } finally {
    polling = false;
    await Promise.allSettled(consumers.map((c) => c.leave()));
    for (const c of clients) c.close();
    await cluster.stop();
  }
});
