/**
 * SDK failover with real brokers and real sockets (issue 12), before the
 * cluster mode: what the SDK must do when the broker it is connected to
 * goes away is the same whether the next URL is another cluster member or
 * (here) another way to the same log.
 *
 * 1. Three URLs, two TCP proxies to one broker child and a dead port: the
 *    proxy in use is cut mid-stream, the SDK is on the next URL within a
 *    fraction of its (5 s) reconnect backoff; cut again, it passes the dead
 *    URL and comes back round. Every record acknowledged, each once in the
 *    log, and the consumer sees every offset once, in order.
 * 2. Two broker processes on one data dir (one at a time, different ports):
 *    broker A is SIGKILLed mid-stream with produces in flight and broker B
 *    started on the same dir; the SDK rotates to B, re-claims its producer id
 *    with the stored secret (B reads the same producer-id key), B answers the
 *    resent in-flight batches as duplicates, and the consumer resumes from
 *    its stored offsets. Then the same back from B to A.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createClient, type ConsumerRecord, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { fileStorage } from '@runnel/client/node';
import { BrokerProcess, freePort } from '../e2e/harness/broker-process.ts';
import { BrokerHttp } from '../e2e/harness/broker-http.ts';
import { DirBroker } from '../e2e/harness/dir-broker.ts';
import { TcpProxy } from '../e2e/harness/tcp-proxy.ts';
import { waitFor } from '../e2e/harness/wait-for.ts';

const WS = WebSocket as unknown as WebSocketConstructor;
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => {}); });

/** A client on `urls` with file storage in `dir`, and its state changes with times. */
function sdk(urls: string[], dir: string): { client: RunnelClient; states: { state: string; atMs: number }[]; errors: string[] } {
  const client = createClient({
    urls, WebSocket: WS, storage: fileStorage(dir), requestTimeoutMs: 5_000,
    // NB: a long backoff, so "at once" and "after a backoff" are told apart.
    reconnect: { initialDelayMs: 5_000, maxDelayMs: 10_000 }, limits: { lingerMs: 2, maxBatchRecords: 20 },
  });
  const states: { state: string; atMs: number }[] = [];
  const errors: string[] = [];
  client.on('statechange', ({ state }) => states.push({ state, atMs: Date.now() }));
  client.on('error', (e) => errors.push(`${e.errorName}: ${e.message}`));
  cleanups.push(() => client.close());
  return { client, states, errors };
}

/** A producer sending `{ n }` for n = 0.. every few ms until stopped; keeps every send's promise. */
function stream(client: RunnelClient, topic: string): { acks: Promise<unknown>[]; stop: () => void } {
  const acks: Promise<unknown>[] = [];
  let stopped = false;
  void (async () => {
    for (let n = 0; !stopped; n++) {
      acks.push(client.producer.send(topic, { n }, { key: String(n % 5) }));
      if (n % 10 === 9) await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return { acks, stop: () => { stopped = true; } };
}

/** Every offset of every partition exactly once, in order, at the handler. */
function assertNoGapNoDuplicate(seen: ConsumerRecord[], partitions: number): void {
  for (let p = 0; p < partitions; p++) {
    const offsets = seen.filter((r) => r.partition === p).map((r) => r.offset);
    offsets.forEach((o, i) => assert.equal(o, i, `partition ${p}: offset ${o} delivered at position ${i}`));
  }
}

async function assertLogExactlyOnce(http: BrokerHttp, topic: string, partitions: number, sent: number): Promise<void> {
  const values: number[] = [];
  for (let p = 0; p < partitions; p++) for (const r of await http.readLog(topic, p)) values.push((r.value as { n: number }).n);
  values.sort((a, b) => a - b);
  assert.deepEqual(values, Array.from({ length: sent }, (_, i) => i), 'each sent value is in the log exactly once');
}

const reconnectedAfter = (states: { state: string; atMs: number }[], sinceMs: number): number | undefined =>
  states.find((s) => s.state === 'connected' && s.atMs >= sinceMs)?.atMs;

test('URL rotation over real sockets: a cut connection moves to the next URL at once, a dead URL is passed, no gap, no duplicate', { timeout: 120_000 }, async () => {
  const broker = await BrokerProcess.start();
  cleanups.push(() => broker.stop());
  const http = new BrokerHttp(broker.url);
  // NB: the dead URL's port is held (every connection closed at once): a port only found free could be bound
  // meanwhile by another test's broker, and the SDK would take that broker, with another log, for this one.
  const [a, b, dead] = [await TcpProxy.start(broker.port), await TcpProxy.start(broker.port), await TcpProxy.start(broker.port)];
  cleanups.push(() => a.close(), () => b.close(), () => dead.close());
  dead.setAccepting(false);
  const urls = [a, b, dead].map((p) => `ws://127.0.0.1:${p.port}/v1/ws`);
  await http.createTopic('failover.rotate', 3);
  const dir = await mkdtemp(join(tmpdir(), 'runnel-failover-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const producer = sdk(urls, join(dir, 'p'));
  const consumer = sdk(urls, join(dir, 'c'));
  const seen: ConsumerRecord[] = [];
  consumer.client.subscribe('failover.rotate', (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest' });
  const load = stream(producer.client, 'failover.rotate');
  try {
    await waitFor('records flowing', () => seen.length >= 300, { context: () => broker.log() });
    await new Promise((r) => setTimeout(r, 1_100)); // sessions past STABLE_SESSION_MS

    const cutA = Date.now();
    a.setAccepting(false);
    a.cut();
    await waitFor('both clients on b', () => reconnectedAfter(producer.states, cutA) && reconnectedAfter(consumer.states, cutA) && b.openConnections === 2);
    for (const c of [producer, consumer]) {
      const ms = reconnectedAfter(c.states, cutA)! - cutA;
      assert.ok(ms < 2_500, `reconnected ${ms} ms after the cut: the next URL is dialled at once, not after a 5 s backoff`);
    }
    const before = seen.length;
    await waitFor('records flowing through b', () => seen.length >= before + 300);

    // b goes too: the next URL is dead, then a (accepting again) after at most the first round's backoff.
    await new Promise((r) => setTimeout(r, 1_100));
    a.setAccepting(true);
    b.setAccepting(false);
    b.cut();
    await waitFor('both clients back on a', () => a.openConnections === 2, { timeoutMs: 30_000 });
    const again = seen.length;
    await waitFor('records flowing through a', () => seen.length >= again + 300);

    load.stop();
    await Promise.all(load.acks);
    await waitFor('consumer caught up', () => seen.length >= load.acks.length, { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, load.acks.length);
    assertNoGapNoDuplicate(seen, 3);
    await assertLogExactlyOnce(http, 'failover.rotate', 3, load.acks.length);
    assert.deepEqual([...producer.errors, ...consumer.errors], []);
  } catch (error) {
    console.error(broker.log());
    throw error;
  } finally {
    load.stop();
  }
});

test('another broker process on the same log: producer id re-claimed, in-flight produces de-duplicated, consumer resumes exactly', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-failover-dir-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const [brokerA, brokerB] = [new DirBroker(await freePort(), join(dir, 'data')), new DirBroker(await freePort(), join(dir, 'data'))];
  cleanups.push(() => brokerA.kill(), () => brokerB.kill());
  await brokerA.start();
  await new BrokerHttp(brokerA.url).createTopic('failover.dir', 2);
  const urls = [brokerA.wsUrl, brokerB.wsUrl];
  const producer = sdk(urls, join(dir, 'p'));
  const consumer = sdk(urls, join(dir, 'c'));
  const seen: ConsumerRecord[] = [];
  consumer.client.subscribe('failover.dir', (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest' });
  const load = stream(producer.client, 'failover.dir');
  let http = new BrokerHttp(brokerA.url);
  try {
    await waitFor('records flowing', () => seen.length >= 300);
    await producer.client.producer.ready;
    const secret = producer.client.producer.producerSecret();
    assert.ok(secret.length > 0);
    for (const [from, to] of [[brokerA, brokerB], [brokerB, brokerA]] as const) {
      const before = seen.length;
      await from.kill(); // produces in flight: written or not, their acks are lost
      await to.start();
      http = new BrokerHttp(to.url);
      await waitFor(`records flowing through ${to.port}`, () => seen.length >= before + 300, { timeoutMs: 60_000, context: () => to.log() });
      assert.equal(producer.client.producer.producerSecret(), secret, 'the stored producer id was re-claimed, not replaced');
    }
    load.stop();
    await Promise.all(load.acks);
    await waitFor('consumer caught up', () => seen.length >= load.acks.length, { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, load.acks.length);
    assertNoGapNoDuplicate(seen, 2);
    await assertLogExactlyOnce(http, 'failover.dir', 2, load.acks.length);
    assert.deepEqual([...producer.errors, ...consumer.errors], []);
  } catch (error) {
    console.error(brokerA.log(), brokerB.log());
    throw error;
  } finally {
    load.stop();
  }
});
