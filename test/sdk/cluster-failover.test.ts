/**
 * The SDK against a real cluster (issue 12): etcd and three brokers
 * (LocalCluster), a topic with replication factor 3 and minInsyncReplicas 2,
 * an idempotent producer and a consumer given all three URLs. The broker
 * both clients are connected to is SIGKILLed mid-stream, twice (the second
 * time the one they moved to); they resume on another broker with no gap
 * and no duplicate at the handler, every acknowledged value is in the log
 * exactly once, and no send failed. Prints the time from each kill to the
 * first acknowledgment after it (issue 12 must show 2 measures it at p99 in
 * the fault suite).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createClient, type ConsumerRecord, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { fileStorage } from '@runnel/client/node';
import { LocalCluster } from '../../server/src/cluster/local-cluster.ts';
import { BrokerHttp } from '../e2e/harness/broker-http.ts';
import { connectionCounts, createServedTopic } from '../e2e/harness/cluster-probes.ts';
import { waitFor } from '../e2e/harness/wait-for.ts';

const WS = WebSocket as unknown as WebSocketConstructor;
const TOPIC = 'sdk.cluster.failover';
const PARTITIONS = 3;

async function startCluster(): Promise<LocalCluster> {
  return LocalCluster.start({
    nodes: 3, minInsyncReplicas: 2, brokerLimits: { replicaLagTimeMs: 2_000, brokerLeaseTtlMs: 2_000 },
    limits: { clusterFormedTimeoutMs: 60_000 },
  });
}

test('SIGKILL of the connected broker of a 3-broker cluster, twice: the SDK resumes on another with no gap, no duplicate, nothing lost', { timeout: 300_000 }, async (t) => {
  const cluster = await startCluster();
  const dir = await mkdtemp(join(tmpdir(), 'runnel-sdk-cluster-'));
  const clients: RunnelClient[] = [];
  const log = (): string => cluster.brokers.map((b) => b.log()).join('\n');
  // NB: outside the try, so a failed wait still ends the producing loop (it would keep the test process alive).
  let stopped = false;
  try {
    const live = () => cluster.brokers.find((b) => b.isRunning)!;
    // NB: waits until every broker serves the topic: a send in the window after the 201 is refused today (cluster-topic-visibility.test.ts).
    await createServedTopic(cluster, live(), { name: TOPIC, partitions: PARTITIONS, replicationFactor: 3 });
    const urls = cluster.brokers.map((b) => b.wsUrl);
    const open = (name: string): RunnelClient => {
      const c = createClient({ urls, WebSocket: WS, storage: fileStorage(join(dir, name)), requestTimeoutMs: 5_000, pingIntervalMs: 1_000, limits: { lingerMs: 2 } });
      clients.push(c);
      return c;
    };
    const producer = open('p'), consumer = open('c');
    const errors: string[] = [];
    for (const c of clients) c.on('error', (e) => errors.push(`${e.errorName}: ${e.message}`));
    const seen: ConsumerRecord[] = [];
    consumer.subscribe(TOPIC, (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest' });

    const acks: Promise<unknown>[] = [];
    const ackedAt: number[] = [];
    const producing = (async () => {
      for (let n = 0; !stopped; n++) {
        const sent = producer.producer.send(TOPIC, { n }, { key: String(n % 7) });
        acks.push(sent);
        void sent.then(() => ackedAt.push(Date.now()), () => {});
        if (n % 10 === 9) await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const failoverMs: number[] = [];
    // Both clients start on urls[0] (node 1); after its kill they move to node 2 (the next URL), which is killed next.
    for (const victim of [cluster.brokers[0], cluster.brokers[1]]) {
      const before = seen.length;
      await waitFor(`records flowing before killing node ${victim.id}`, () => seen.length >= before + 300, { timeoutMs: 60_000, context: log });
      // The victim is the broker both clients are on (runnel_connections: theirs are the only WebSockets).
      await waitFor(`both clients connected to node ${victim.id}`, async () => (await connectionCounts(cluster)).get(victim.id) === 2, { timeoutMs: 15_000, context: log });
      const killedAt = Date.now();
      await victim.kill('SIGKILL');
      await waitFor(`an acknowledgment after killing node ${victim.id}`, () => ackedAt.some((at) => at > killedAt), { timeoutMs: 60_000, context: log });
      failoverMs.push(Math.min(...ackedAt.filter((at) => at > killedAt)) - killedAt);
      const after = seen.length;
      await waitFor(`records flowing after killing node ${victim.id}`, () => seen.length >= after + 300, { timeoutMs: 60_000, context: log });
      if (victim === cluster.brokers[0]) await victim.start(); // back, so two of three stay up for minInsyncReplicas 2
    }
    stopped = true;
    await producing;
    await Promise.all(acks);
    await waitFor('consumer caught up', () => seen.length >= acks.length, { timeoutMs: 60_000, context: log });
    await new Promise((r) => setTimeout(r, 200));

    for (let p = 0; p < PARTITIONS; p++) {
      const offsets = seen.filter((r) => r.partition === p).map((r) => r.offset);
      offsets.forEach((o, i) => assert.equal(o, i, `partition ${p}: offset ${o} delivered at position ${i}`));
    }
    assert.equal(seen.length, acks.length);
    const http = new BrokerHttp(live().url);
    const values: number[] = [];
    for (let p = 0; p < PARTITIONS; p++) for (const r of await http.readLog(TOPIC, p)) values.push((r.value as { n: number }).n);
    assert.deepEqual(values.sort((a, b) => a - b), Array.from({ length: acks.length }, (_, i) => i), 'each acknowledged value once in the log');
    assert.deepEqual(errors, []);
    console.log(`# cluster failover: ${acks.length} records; kill to first acknowledgment ${failoverMs.join(' / ')} ms`);
  } finally {
    stopped = true;
    for (const c of clients) await c.close().catch(() => {});
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
