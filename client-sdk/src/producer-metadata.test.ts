/**
 * The producer waiting for a topic's partition count, against the fake
 * broker (issue 12 item 3, issue 13's finding). Each test fails with the SDK
 * before the fix:
 * - records sent before a topic's partition count is known share one
 *   metadata request (it was one per record), and when the connection drops
 *   under it nothing escapes as an unhandled rejection (it was one per
 *   record); they are routed after the reconnect;
 * - a send to a topic the broker does not know yet (auto-creation off) waits
 *   for it, bounded by unknownTopicWaitMs like Kafka's max.block.ms (it was
 *   refused at once); past the wait it fails and leaves the outbox; a
 *   partition the topic does not have fails at once;
 * - a produce refused UNKNOWN_TOPIC_OR_PARTITION is retried up to
 *   deliveryTimeoutMs (Kafka: a retriable error), not failed at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from './connection.ts';
import type { RunnelError } from './codec/error-codes.ts';
import { FakeBroker } from './fake-broker.ts';
import { validateClientLimits, type ClientLimits } from './limits.ts';
import { memoryStorage } from './memory-storage.ts';
import { Producer } from './producer.ts';
import { seededRandom } from './reconnect-policy.ts';

function start(broker: FakeBroker, limits: Partial<ClientLimits> = {}) {
  const errors: unknown[] = [];
  const storage = memoryStorage();
  const conn = new Connection({ urls: ['fake://a', 'fake://b'], transport: broker.transport, clientId: 't', random: seededRandom(1), reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
  const producer = new Producer(conn, storage.outbox, validateClientLimits({ lingerMs: 1, retryBackoffMs: 5, retryBackoffMaxMs: 20, ...limits }), seededRandom(2), (e) => errors.push(e));
  conn.open();
  return { conn, producer, storage, errors, close: () => { producer.close(); conn.close(); } };
}

const until = async (what: string, cond: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

/** Collects the process's unhandled rejections while `body` runs (the SDK must never leave one). */
async function noUnhandledRejections(body: () => Promise<void>): Promise<void> {
  const escaped: unknown[] = [];
  const onRejection = (reason: unknown): void => { escaped.push(reason); };
  process.on('unhandledRejection', onRejection);
  try {
    await body();
    await new Promise((r) => setTimeout(r, 20)); // let late rejections surface
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  assert.deepEqual(escaped.map(String), [], 'unhandled rejections escaped the SDK');
}

test('50 sends before the partition count is known: one metadata request; the connection drops under it: no unhandled rejection, all acked after the reconnect', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(3);
  const c = start(broker);
  try {
    await noUnhandledRejections(async () => {
      await c.producer.send('warm', { n: -1 }); // connected and the producer id claimed
      broker.holdMetadata = true;
      const sends = Array.from({ length: 50 }, (_, n) => c.producer.send('t', { n }));
      await until('the metadata request arrived', () => (broker.metadataRequests.get('t') ?? 0) >= 1);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(broker.metadataRequests.get('t'), 1, 'one metadata request for the topic, not one per record');
      broker.holdMetadata = false; // the next connection's request is answered
      broker.dropConnections();
      const acked = await Promise.all(sends);
      assert.equal(acked.length, 50);
      assert.equal(broker.metadataRequests.get('t'), 2, 'one more request on the new connection');
      assert.deepEqual(c.errors, []);
    });
  } finally {
    c.close();
  }
});

test('a topic that does not exist yet is waited for (auto-creation off): the send resolves once it is created; one that never appears fails after unknownTopicWaitMs and leaves the outbox', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(2);
  broker.autoCreateTopics = false;
  broker.createTopic('warm', 1);
  const c = start(broker, { unknownTopicWaitMs: 400 });
  try {
    await noUnhandledRejections(async () => {
      await c.producer.send('warm', { n: -1 });
      const late = c.producer.send('late', { n: 1 });
      const neverAt = Date.now();
      const never = c.producer.send('never', { n: 2 });
      let lateSettled = false;
      late.then(() => (lateSettled = true), () => (lateSettled = true));
      await until('the topic was asked for again', () => (broker.metadataRequests.get('late') ?? 0) >= 3);
      assert.equal(lateSettled, false, 'the send waits for the topic');
      broker.createTopic('late', 2);
      const meta = await late;
      assert.equal(meta.topic, 'late');
      await assert.rejects(never, (e: RunnelError) => e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION' && /400 ms/.test(e.message));
      assert.ok(Date.now() - neverAt >= 400, `failed after ${Date.now() - neverAt} ms, before unknownTopicWaitMs`);
      const requests = broker.metadataRequests.get('never')!;
      assert.ok(requests >= 2 && requests < 60, `asked with backoff: ${requests} requests in the wait`);
      assert.deepEqual(c.producer.outboxSize, { records: 0, bytes: 0 }, 'the failed record left the outbox');
      assert.deepEqual((await c.storage.outbox.load()).records, [], 'and the store');
      await c.producer.drained();

      // A partition the topic does not have: at once (the count is known).
      const startedAt = Date.now();
      await assert.rejects(c.producer.send('late', { n: 3 }, { partition: 5 }), (e: RunnelError) => e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION');
      assert.ok(Date.now() - startedAt < 300);
      assert.deepEqual(c.producer.outboxSize, { records: 0, bytes: 0 });
    });
  } finally {
    c.close();
  }
});

test('a produce refused UNKNOWN_TOPIC_OR_PARTITION is retried (as Kafka does) up to deliveryTimeoutMs, then fails', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, { deliveryTimeoutMs: 300 });
  try {
    await noUnhandledRejections(async () => {
      await c.producer.send('t', { n: 0 });
      broker.produceErrors = ['UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_OR_PARTITION'];
      const meta = await c.producer.send('t', { n: 1 });
      assert.equal(meta.offset, 1);
      broker.produceErrors = Array.from({ length: 1000 }, () => 'UNKNOWN_TOPIC_OR_PARTITION' as const);
      const at = Date.now();
      await assert.rejects(c.producer.send('t', { n: 2 }), (e: RunnelError) => e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION');
      assert.ok(Date.now() - at >= 300, 'retried for deliveryTimeoutMs');
    });
  } finally {
    c.close();
  }
});
