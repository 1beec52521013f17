/**
 * Failover against the in-process fake broker (issue 12): several URLs and
 * what the SDK retries. Each test would fail with the SDK before it:
 * - a lost session dials the next URL at once, a dead one is skipped;
 * - retryable produce errors (leader elections, NOT_ENOUGH_REPLICAS, …) are
 *   retried with backoff and never reach `send` or the error event, and a
 *   retried batch is never overtaken (an unknown producer's later batch
 *   accepted first would turn the retry into DUPLICATE_SEQUENCE_NUMBER: lost);
 * - past deliveryTimeoutMs the records fail with the last error;
 * - a retryable initProducer refusal is retried with the stored id (a fresh
 *   id would give up the batches sent under the old one);
 * - a subscription refused OFFSET_OUT_OF_RANGE by a broker whose high
 *   watermark lags what another broker showed waits for it (no reset).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type RunnelClient } from './client.ts';
import type { RunnelError } from './codec/error-codes.ts';
import { decodeRecordBatch } from './codec/record-batch.ts';
import type { ConsumerRecord } from './consumer-record.ts';
import { FakeBroker } from './fake-broker.ts';
import { LAGGING_BROKER_WAIT_MS, type ClientLimits } from './limits.ts';
import { memoryStorage } from './memory-storage.ts';
import { STABLE_SESSION_MS, seededRandom } from './reconnect-policy.ts';

const URLS = ['ws://a/v1/ws', 'ws://b/v1/ws', 'ws://c/v1/ws'];

function client(broker: FakeBroker, limits: Partial<ClientLimits> = {}, storage = memoryStorage()): { c: RunnelClient; errors: RunnelError[] } {
  const c = createClient({
    urls: URLS, transport: broker.transport, random: seededRandom(7), beacon: false, storage,
    // NB: a large initial delay, so a dial "at once" is told apart from one after a backoff.
    reconnect: { initialDelayMs: 2_000, maxDelayMs: 4_000 }, limits: { lingerMs: 1, ...limits },
  });
  const errors: RunnelError[] = [];
  c.on('error', (e) => errors.push(e));
  return { c, errors };
}

const until = async (what: string, cond: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

function logValues(broker: FakeBroker, topic: string, partition = 0): number[] {
  return broker.batches(topic, partition).flatMap((b) => {
    const d = decodeRecordBatch(b.bytes);
    assert.ok(d.ok);
    return d.value.records.map((r) => JSON.parse(new TextDecoder().decode(r.value!)).n as number);
  });
}

test('a lost session dials the next URL at once; a URL that is down is skipped after a short backoff', async () => {
  const broker = new FakeBroker(1);
  const { c } = client(broker);
  try {
    await c.producer.send('t', { n: 0 });
    assert.deepEqual(broker.dialed.map((d) => d.url), [URLS[0]]);
    await new Promise((r) => setTimeout(r, STABLE_SESSION_MS)); // a shorter session would count as a failed dial
    broker.downUrls.add(URLS[1]);
    const lostAt = Date.now();
    broker.dropConnections();
    await until('reconnected', () => c.state === 'connected' && broker.dialed.length >= 3);
    assert.deepEqual(broker.dialed.map((d) => d.url), [URLS[0], URLS[1], URLS[2]]);
    // b at once (not after a backoff of up to initialDelayMs); c within the first round's jitter.
    assert.ok(broker.dialed[1].atMs - lostAt < 500, `next URL dialled ${broker.dialed[1].atMs - lostAt} ms after the loss`);
    assert.ok(broker.dialed[2].atMs - broker.dialed[1].atMs <= 2_100);
    await c.producer.send('t', { n: 1 });
    assert.deepEqual(logValues(broker, 't'), [0, 1]);
  } finally {
    await c.close();
  }
});

test('retryable produce errors are retried with backoff, never surfaced, and a retried batch is not overtaken', async () => {
  const broker = new FakeBroker(1);
  const { c, errors } = client(broker, { maxBatchRecords: 5, retryBackoffMs: 5, retryBackoffMaxMs: 40 });
  try {
    // A leader election: the first produces of a fresh producer are refused; the later ones, had they been
    // pipelined, would be taken by a broker that does not know the producer yet (any sequence), and the
    // retried first batch would then be answered DUPLICATE_SEQUENCE_NUMBER: its records lost.
    broker.produceErrors = ['NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'REQUEST_TIMED_OUT', 'CLUSTER_UNAVAILABLE'];
    const acks = await Promise.all(Array.from({ length: 50 }, (_, n) => c.producer.send('t', { n })));
    assert.deepEqual(acks.map((a) => a.offset), Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(logValues(broker, 't'), Array.from({ length: 50 }, (_, i) => i), 'each record once, in send order');
    assert.deepEqual(errors, [], 'retryable errors are not reported');
  } finally {
    await c.close();
  }
});

test('after a reconnect a partition resends its head alone first, then pipelines again', async () => {
  const broker = new FakeBroker(1);
  const { c } = client(broker, { maxBatchRecords: 1 });
  try {
    await c.producer.send('t', { n: -1 });
    broker.holdAcks = true; // written nowhere, answered never: then the connection drops
    const pending = Array.from({ length: 5 }, (_, n) => c.producer.send('t', { n }));
    await until('5 produces in flight', () => broker.producesReceived >= 6);
    broker.holdAcks = false;
    broker.produceErrors = ['NOT_LEADER_OR_FOLLOWER'];
    const before = broker.producesReceived;
    broker.dropConnections();
    await until('first resend', () => broker.producesReceived > before);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(broker.producesReceived, before + 1, 'one batch in flight until the head is answered');
    await Promise.all(pending);
    assert.deepEqual(logValues(broker, 't'), [-1, 0, 1, 2, 3, 4]);
  } finally {
    await c.close();
  }
});

test('past deliveryTimeoutMs the records fail with the last retryable error', async () => {
  const broker = new FakeBroker(1);
  const { c, errors } = client(broker, { retryBackoffMs: 5, retryBackoffMaxMs: 20, deliveryTimeoutMs: 300 });
  try {
    await c.producer.send('t', { n: 0 });
    broker.produceErrors = Array.from({ length: 1_000 }, () => 'NOT_ENOUGH_REPLICAS' as const);
    const started = Date.now();
    await assert.rejects(c.producer.send('t', { n: 1 }), (e: RunnelError) => e.errorName === 'NOT_ENOUGH_REPLICAS');
    assert.ok(Date.now() - started >= 300, 'not before the delivery timeout');
    assert.equal(errors.length, 1);
    broker.produceErrors = [];
    await c.producer.send('t', { n: 2 });
    assert.deepEqual(logValues(broker, 't'), [0, 2]);
  } finally {
    await c.close();
  }
});

test('a retryable initProducer refusal is retried with the stored id: the batch sent under it stays de-duplicated', async () => {
  const broker = new FakeBroker(1);
  const { c, errors } = client(broker, { retryBackoffMs: 5 });
  try {
    await c.producer.send('t', { n: 0 });
    broker.loseAcks = true; // written, the answer lost
    const pending = c.producer.send('t', { n: 1 });
    await until('written', () => logValues(broker, 't').length === 2);
    broker.loseAcks = false;
    broker.initProducerErrors = ['CLUSTER_UNAVAILABLE', 'REQUEST_TIMED_OUT', 'CLUSTER_UNAVAILABLE'];
    broker.dropConnections();
    assert.deepEqual(await pending, { topic: 't', partition: 0, offset: 1 }, 'the resend is answered as a duplicate with its offset');
    assert.deepEqual(logValues(broker, 't'), [0, 1]);
    assert.deepEqual(errors, []);
  } finally {
    await c.close();
  }
});

test('failover to a broker whose high watermark lags: the subscription waits for it, no reset, no gap, no duplicate', async () => {
  const broker = new FakeBroker(1);
  const producer = client(broker).c;
  const { c: consumer } = client(broker);
  const seen: ConsumerRecord[] = [];
  const lost: unknown[] = [];
  try {
    for (let n = 0; n < 20; n++) await producer.producer.send('t', { n });
    const sub = consumer.subscribe('t', (r) => { seen.push(r); }, { from: 'earliest', onNotRecovered: (e) => lost.push(e) });
    await until('20 records', () => seen.length === 20);
    broker.brokerId = 1; // the next broker of the cluster, behind on the high watermark
    broker.highWatermarkCap = 10;
    broker.dropConnections();
    await until('refused while lagging', () => broker.dialed.length >= 3 && consumer.state === 'connected');
    await new Promise((r) => setTimeout(r, 700)); // at least one refusal and one retry (SUBSCRIBE_REFUSED_RETRY_MS)
    broker.highWatermarkCap = undefined;
    for (let n = 20; n < 30; n++) await producer.producer.send('t', { n });
    await until('30 records', () => seen.length >= 30);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen.map((r) => r.offset), Array.from({ length: 30 }, (_, i) => i));
    assert.deepEqual(lost, []);
    await sub.unsubscribe();
  } finally {
    await producer.close();
    await consumer.close();
  }
});

test('a broker refusing an offset above its high watermark that it showed before (it lost data) is asked again, then reported after LAGGING_BROKER_WAIT_MS', { timeout: LAGGING_BROKER_WAIT_MS + 15_000 }, async () => {
  const broker = new FakeBroker(1);
  const producer = client(broker).c;
  const { c: consumer } = client(broker);
  const lost: { lost: { from: number; to: number | null } }[] = [];
  try {
    for (let n = 0; n < 20; n++) await producer.producer.send('t', { n });
    let count = 0;
    consumer.subscribe('t', () => { count++; }, { from: 'earliest', reset: 'earliest', onNotRecovered: (e) => lost.push(e) });
    await until('20 records', () => count === 20);
    broker.truncate('t', 0, 10);
    broker.dropConnections();
    const droppedAt = Date.now();
    await until('not recovered', () => lost.length === 1, LAGGING_BROKER_WAIT_MS + 10_000);
    assert.ok(Date.now() - droppedAt >= LAGGING_BROKER_WAIT_MS - 1000, `reported after ${Date.now() - droppedAt} ms, not after the wait`);
    assert.deepEqual(lost[0].lost, { from: 10, to: 20 });
  } finally {
    await producer.close();
    await consumer.close();
  }
});
