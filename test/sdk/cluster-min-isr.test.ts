/**
 * Below minInsyncReplicas and back (issue 12, "with fewer than
 * minInsyncReplicas in the ISR, produce fails with NOT_ENOUGH_REPLICAS
 * (retryable) and nothing is acknowledged"), through the SDK on a real
 * 3-broker cluster (LocalCluster, RF 3, minInsyncReplicas 2): an idempotent
 * producer and a consumer on one broker; the two other brokers are SIGKILLed
 * one after the other, so the survivor leads every partition alone. The
 * producer keeps its records (retrying; none fails), the consumer stays
 * exact; one broker restarted, it rejoins the ISR and acknowledgments resume.
 * Afterwards every acknowledged value is in the log once, the consumer saw
 * every offset once in order, and no send failed.
 *
 * Prints the acknowledgments counted while the survivor was alone in every
 * ISR (records durable on two brokers before the second kill may still be
 * answered then) and the time from the restart to the first acknowledgment
 * of a record sent during the outage.
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
import { clusterLog, createServedTopic, partitionViews, waitFullIsr } from '../e2e/harness/cluster-probes.ts';
import { waitFor } from '../e2e/harness/wait-for.ts';

const WS = WebSocket as unknown as WebSocketConstructor;
const TOPIC = 'sdk.cluster.min-isr';
const PARTITIONS = 3;

test('two of three brokers SIGKILLed: produce waits below minInsyncReplicas without failing a send, resumes when one is back; nothing lost, duplicated or skipped', { timeout: 180_000 }, async () => {
  const cluster = await LocalCluster.start({
    nodes: 3, minInsyncReplicas: 2, brokerLimits: { replicaLagTimeMs: 2_000, brokerLeaseTtlMs: 2_000 }, limits: { clusterFormedTimeoutMs: 30_000 },
  });
  const dir = await mkdtemp(join(tmpdir(), 'runnel-sdk-min-isr-'));
  const clients: RunnelClient[] = [];
  const why = (): string => clusterLog(cluster);
  // NB: outside the try, so a failed wait below still ends the producing loop (it kept the test process alive).
  let stopped = false;
  try {
    const [survivor, first, second] = cluster.brokers;
    await createServedTopic(cluster, survivor, { name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, minInsyncReplicas: 2 });
    const open = (name: string): RunnelClient => {
      // NB: only the survivor's URL: the clients must ride out the outage on one broker, not move.
      const c = createClient({ urls: [survivor.wsUrl], WebSocket: WS, storage: fileStorage(join(dir, name)), requestTimeoutMs: 5_000, pingIntervalMs: 1_000, limits: { lingerMs: 2 } });
      clients.push(c);
      return c;
    };
    const producer = open('p'), consumer = open('c');
    const errors: string[] = [];
    for (const c of clients) c.on('error', (e) => { if (e.errorName !== 'NOT_ENOUGH_REPLICAS' && e.errorName !== 'NOT_ENOUGH_REPLICAS_AFTER_APPEND') errors.push(`${e.errorName}: ${e.message}`); });
    const seen: ConsumerRecord[] = [];
    consumer.subscribe(TOPIC, (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest' });

    const sends: Promise<unknown>[] = [];
    const ackedAt = new Map<number, number>();
    const failed: string[] = [];
    const producing = (async () => {
      for (let n = 0; !stopped; n++) {
        const sent = producer.producer.send(TOPIC, { n });
        sends.push(sent.then(() => { ackedAt.set(n, Date.now()); }, (e: Error) => { failed.push(`${n}: ${e.message}`); }));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    await waitFor('records flowing', () => seen.length >= 300, { timeoutMs: 60_000, context: why });
    await first.kill('SIGKILL');
    await waitFullIsr(cluster, TOPIC, 2);
    await second.kill('SIGKILL');
    await waitFor(`node ${survivor.id} alone in every ISR`, async () => (await partitionViews(survivor, TOPIC)).every((p) => p.leader === survivor.id && p.isr.length === 1), { context: why });
    const aloneAt = Date.now();
    const sentAlone = sends.length;
    const ackedBeforeAlone = ackedAt.size;
    await first.start();
    const restartedAt = Date.now();
    const ackedWhileAlone = ackedAt.size - ackedBeforeAlone;
    await waitFor('an acknowledgment of a record sent while one broker was up', () => [...ackedAt.keys()].some((n) => n >= sentAlone), { timeoutMs: 60_000, context: why });
    const resumedMs = Math.min(...[...ackedAt].filter(([n]) => n >= sentAlone).map(([, at]) => at)) - restartedAt;
    const total = seen.length;
    await waitFor('records flowing after the restart', () => seen.length >= total + 300, { timeoutMs: 60_000, context: why });
    stopped = true;
    await producing;
    await Promise.all(sends);
    assert.deepEqual(failed.slice(0, 20), [], `${failed.length} sends failed`);
    await waitFor('consumer caught up', () => seen.length >= sends.length, { timeoutMs: 60_000, context: why });

    for (let p = 0; p < PARTITIONS; p++) {
      const offsets = seen.filter((r) => r.partition === p).map((r) => r.offset);
      offsets.forEach((o, i) => assert.equal(o, i, `partition ${p}: offset ${o} delivered at position ${i}`));
    }
    const http = new BrokerHttp(survivor.url);
    const values: number[] = [];
    for (let p = 0; p < PARTITIONS; p++) for (const r of await http.readLog(TOPIC, p)) values.push((r.value as { n: number }).n);
    assert.deepEqual(values.sort((a, b) => a - b), Array.from({ length: sends.length }, (_, i) => i), 'each acknowledged value once in the log');
    assert.equal(seen.length, sends.length);
    assert.deepEqual(errors, []);
    console.log(`# cluster min ISR: ${sends.length} records; ${ackedWhileAlone} acknowledged while node ${survivor.id} was alone in every ISR (${restartedAt - aloneAt} ms, the restart); restart to first acknowledgment of a record sent during the outage ${resumedMs} ms`);
  } finally {
    stopped = true;
    for (const c of clients) await c.close().catch(() => {});
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
