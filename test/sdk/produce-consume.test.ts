/**
 * The Node SDK (with `ws`) against a real broker child process: 10k records
 * produced and consumed with no gap or duplicate; then SIGKILL + restart of
 * the broker mid-stream: the outbox resends without loss or duplicate in the
 * log, and the consumer resumes exactly (every offset once, in order).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createClient, type ConsumerRecord, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { fileStorage } from '@runnel/client/node';
import { BrokerProcess } from '../e2e/harness/broker-process.ts';

const until = async (cond: () => boolean, what: string, ms = 60_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const WS = WebSocket as unknown as WebSocketConstructor;

/** Runs `body` with a broker child process and two clients made by `clients`; prints the broker log on failure, always closes all three. */
async function withBrokerAndClients(
  clients: (broker: BrokerProcess) => [RunnelClient, RunnelClient],
  body: (broker: BrokerProcess, producer: RunnelClient, consumer: RunnelClient) => Promise<void>,
): Promise<void> {
  const broker = await BrokerProcess.start();
  const [producer, consumer] = clients(broker);
  try {
    await body(broker, producer, consumer);
  } catch (error) {
    console.error(broker.log());
    throw error;
  } finally {
    await producer.close();
    await consumer.close();
    await broker.stop();
  }
}

const createTopic = (broker: BrokerProcess, name: string, partitions: number): Promise<Response> =>
  fetch(`${broker.url}/v1/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, partitions, replicationFactor: 1 }) });

function assertExactlyOnceInOrder(seen: ConsumerRecord[], partitions: number): number {
  let total = 0;
  for (let p = 0; p < partitions; p++) {
    const offsets = seen.filter((r) => r.partition === p).map((r) => r.offset);
    offsets.forEach((o, i) => assert.equal(o, i, `partition ${p}: offset ${o} at position ${i}`));
    total += offsets.length;
  }
  return total;
}

test('10k records produced and consumed from earliest: every offset once, in order', { timeout: 120_000 }, async () => {
  await withBrokerAndClients((broker) => [createClient({ urls: broker.wsUrl, WebSocket: WS }), createClient({ urls: broker.wsUrl, WebSocket: WS })], async (broker, producer, consumer) => {
    await createTopic(broker, 'sdk-10k', 4);
    const acks = await Promise.all(Array.from({ length: 10_000 }, (_, n) => producer.producer.send('sdk-10k', { n }, { key: `user-${n % 101}` })));
    assert.equal(new Set(acks.map((a) => `${a.partition}/${a.offset}`)).size, 10_000);
    const seen: ConsumerRecord[] = [];
    consumer.subscribe('sdk-10k', (r) => { seen.push(r); }, { from: 'earliest' });
    await until(() => seen.length >= 10_000, '10k records');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(assertExactlyOnceInOrder(seen, 4), 10_000);
    assert.deepEqual(seen.map((r) => (r.value as { n: number }).n).sort((a, b) => a - b), Array.from({ length: 10_000 }, (_, i) => i));
    const byKey = new Map<string, number>();
    for (const r of seen) { // a key always lands on one partition
      const p = byKey.get(r.key!);
      if (p !== undefined) assert.equal(r.partition, p);
      byKey.set(r.key!, r.partition);
    }
  });
});

test('SIGKILL + restart mid-stream: no record lost or written twice, consumer resumes exactly', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-sdk-'));
  const TOTAL = 3_000;
  const clients = (broker: BrokerProcess): [RunnelClient, RunnelClient] => {
    const opts = { urls: broker.wsUrl, WebSocket: WS, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, requestTimeoutMs: 5_000 };
    return [createClient({ ...opts, storage: fileStorage(join(dir, 'producer')) }), createClient({ ...opts, storage: fileStorage(join(dir, 'consumer')) })];
  };
  await withBrokerAndClients(clients, async (broker, producer, consumer) => {
    await createTopic(broker, 'sdk-crash', 2);
    const seen: ConsumerRecord[] = [];
    consumer.subscribe('sdk-crash', (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest' });
    const acked: Promise<unknown>[] = [];
    for (let n = 0; n < TOTAL; n++) {
      acked.push(producer.producer.send('sdk-crash', { n }, { key: String(n % 17) }));
      if (n % 100 === 99) await new Promise((r) => setTimeout(r, 5));
      if (n === 1_000 || n === 2_000) {
        await broker.kill();
        await new Promise((r) => setTimeout(r, 200));
        await broker.restart();
      }
    }
    await Promise.all(acked);
    await until(() => seen.length >= TOTAL, `${TOTAL} records at the consumer`, 90_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(assertExactlyOnceInOrder(seen, 2), TOTAL);
    const values = seen.map((r) => (r.value as { n: number }).n).sort((a, b) => a - b);
    assert.deepEqual(values, Array.from({ length: TOTAL }, (_, i) => i), 'each produced value is in the log exactly once');
  }).finally(() => rm(dir, { recursive: true, force: true }));
});
