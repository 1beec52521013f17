/**
 * AbortSignal on `send` and `flush` (issue 13, web-platform habits), and the
 * producer's no-linger rule (issue 13, hot path), against the fake broker:
 * - an abort before the ack rejects ABORTED; a record not in a batch yet
 *   (waiting for metadata, or accumulating behind a batch in flight) leaves
 *   the outbox and storage and never reaches the log; one already in a batch
 *   only stops being waited for (it is still written);
 * - `flush({ signal })` rejects ABORTED, and at once with an aborted signal;
 * - a record on a partition with nothing in flight is sent at once, however
 *   long lingerMs is; records sent while a batch is in flight share the next.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from './connection.ts';
import { FakeBroker } from './fake-broker.ts';
import { validateClientLimits, type ClientLimits } from './limits.ts';
import { memoryStorage } from './memory-storage.ts';
import { Producer } from './producer.ts';
import { seededRandom } from './reconnect-policy.ts';
import { decodeRecordBatch } from './codec/record-batch.ts';

function start(broker: FakeBroker, limits: Partial<ClientLimits> = {}) {
  const storage = memoryStorage();
  const conn = new Connection({ urls: ['fake://a'], transport: broker.transport, clientId: 't', random: seededRandom(1), reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
  const producer = new Producer(conn, storage.outbox, validateClientLimits({ lingerMs: 60_000, ...limits }), seededRandom(2), () => {});
  conn.open();
  return { conn, producer, storage, close: () => { producer.close(); conn.close(); } };
}

const until = async (what: string, cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

/** The `n` of every record in the broker's log for `topic` (one partition). */
function logged(broker: FakeBroker, topic: string): number[] {
  return broker.batches(topic, 0).flatMap((b) => {
    const d = decodeRecordBatch(b.bytes);
    assert.ok(d.ok);
    return d.value.records.map((r) => JSON.parse(new TextDecoder().decode(r.value!)).n as number);
  });
}

const isAborted = (e: any): boolean => e.errorName === 'ABORTED' && e.code === 1007;

test('send with an aborted signal rejects ABORTED at once and queues nothing', async () => {
  const broker = new FakeBroker(1);
  const c = start(broker);
  try {
    const send = c.producer.send('t', { n: 1 }, { signal: AbortSignal.abort('gone') });
    await assert.rejects(send, (e: any) => isAborted(e) && e.cause === 'gone');
    await assert.rejects(send.queued, isAborted);
    assert.equal(c.producer.outboxSize.records, 0);
  } finally {
    c.close();
  }
});

test('abort while the record waits for metadata: rejects ABORTED, leaves outbox and storage, never written', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  const c = start(broker);
  try {
    await c.producer.send('warm', { n: -1 });
    broker.holdMetadata = true;
    const ac = new AbortController();
    const aborted = c.producer.send('t', { n: 1 }, { signal: ac.signal });
    const kept = c.producer.send('t', { n: 2 });
    await aborted.queued; // stored
    assert.equal((await c.storage.outbox.load()).records.length, 2);
    ac.abort();
    await assert.rejects(aborted, isAborted);
    assert.equal(c.producer.outboxSize.records, 1, 'the aborted record left the outbox');
    assert.deepEqual((await c.storage.outbox.load()).records.map((r) => JSON.parse(new TextDecoder().decode(r.value!)).n), [2], 'and storage');
    broker.holdMetadata = false;
    broker.dropConnections(); // the held request is asked again on the next connection
    await kept;
    assert.deepEqual(logged(broker, 't'), [2]);
  } finally {
    c.close();
  }
});

test('abort while the record accumulates behind a batch in flight: withdrawn; abort once in a batch: only the wait stops', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  const c = start(broker);
  try {
    await c.producer.send('t', { n: 0 });
    broker.holdAcks = true;
    const inBatch = new AbortController(), accumulating = new AbortController();
    const first = c.producer.send('t', { n: 1 }, { signal: inBatch.signal }); // nothing in flight: frozen and sent at once (lingerMs is a minute)
    await until('the first batch was sent', () => broker.producedBatches.length === 2);
    const second = c.producer.send('t', { n: 2 }, { signal: accumulating.signal }); // a batch in flight: accumulates
    const third = c.producer.send('t', { n: 3 });
    await second.queued;
    accumulating.abort();
    await assert.rejects(second, isAborted);
    inBatch.abort();
    await assert.rejects(first, isAborted);
    assert.equal(c.producer.outboxSize.records, 2, 'the record in a batch stays; the accumulating one left');
    broker.holdAcks = false;
    broker.dropConnections(); // the held batch is sent again; the third goes with the next ack
    await third;
    await c.producer.drained();
    assert.deepEqual(logged(broker, 't'), [0, 1, 3], 'the aborted record in a batch is still written; the withdrawn one never');
  } finally {
    c.close();
  }
});

test('flush({ signal }): rejects ABORTED on abort, at once when already aborted; the records are still acked', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  const c = start(broker);
  try {
    await c.producer.send('t', { n: 0 });
    await assert.rejects(c.producer.flush({ signal: AbortSignal.abort() }), isAborted);
    broker.holdAcks = true;
    const send = c.producer.send('t', { n: 1 });
    const ac = new AbortController();
    const flushed = c.producer.flush({ signal: ac.signal });
    await until('the batch was sent', () => broker.producedBatches.length === 2);
    ac.abort();
    await assert.rejects(flushed, isAborted);
    broker.holdAcks = false;
    broker.dropConnections();
    assert.equal((await send).offset, 1);
    await c.producer.flush({ signal: new AbortController().signal });
  } finally {
    c.close();
  }
});

test('no linger when nothing is in flight: one send goes at once with lingerMs a minute; sends during a flight share the next batch', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  const c = start(broker);
  try {
    const startedMs = Date.now();
    await c.producer.send('t', { n: 0 });
    await c.producer.send('t', { n: 1 });
    assert.ok(Date.now() - startedMs < 5_000, 'acknowledged without waiting for lingerMs');
    broker.holdAcks = true;
    const head = c.producer.send('t', { n: 2 });
    await until('the head batch was sent', () => broker.producedBatches.length === 3);
    const during = Array.from({ length: 10 }, (_, i) => c.producer.send('t', { n: 3 + i }));
    await Promise.all(during.map((s) => s.queued));
    assert.equal(broker.producedBatches.length, 3, 'nothing else sent while the head is in flight');
    broker.holdAcks = false;
    broker.dropConnections();
    await head;
    await Promise.all(during);
    const sizes = broker.batches('t', 0).map((b) => { const d = decodeRecordBatch(b.bytes); assert.ok(d.ok); return d.value.records.length; });
    assert.deepEqual(sizes, [1, 1, 1, 10], 'the ten sent during the flight went in one batch, after its ack');
    assert.deepEqual(logged(broker, 't'), Array.from({ length: 13 }, (_, i) => i));
  } finally {
    c.close();
  }
});
