import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from './connection.ts';
import { FakeBroker } from './fake-broker.ts';
import { validateClientLimits } from './limits.ts';
import { memoryStorage } from './memory-storage.ts';
import { Producer } from './producer.ts';
import { seededRandom } from './reconnect-policy.ts';
import { decodeRecordBatch } from './codec/record-batch.ts';
import type { Storage } from './storage.ts';

function start(broker: FakeBroker, storage: Storage, limits = {}) {
  const errors: unknown[] = [];
  const conn = new Connection({ urls: ['fake://'], transport: broker.transport, clientId: 't', random: seededRandom(1), reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
  const producer = new Producer(conn, storage.outbox, validateClientLimits({ lingerMs: 2, ...limits }), seededRandom(2), (e) => errors.push(e));
  conn.open();
  return { conn, producer, errors, close: () => { producer.close(); conn.close(); } };
}

/** Every value in the broker's log for `topic`, in partition then offset order. */
function logValues(broker: FakeBroker, topic: string): number[] {
  const out: number[] = [];
  for (let p = 0; p < broker.topic(topic).partitions.length; p++) {
    for (const b of broker.batches(topic, p)) {
      const d = decodeRecordBatch(b.bytes);
      assert.ok(d.ok);
      for (const r of d.value.records) out.push(JSON.parse(new TextDecoder().decode(r.value!)).n);
    }
  }
  return out;
}

test('send resolves with contiguous offsets; keyed records keep key order in one partition', async () => {
  const broker = new FakeBroker(3);
  const c = start(broker, memoryStorage());
  try {
    const results = await Promise.all(Array.from({ length: 500 }, (_, n) => c.producer.send('orders', { n }, { key: `user-${n % 7}` })));
    const byPartition = new Map<number, number[]>();
    for (const r of results) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r.offset]);
    for (const [, offsets] of byPartition) assert.deepEqual(offsets, offsets.map((_, i) => i));
    assert.deepEqual(logValues(broker, 'orders').sort((a, b) => a - b), Array.from({ length: 500 }, (_, i) => i));
    const again = await c.producer.send('orders', { n: 1 }, { key: 'user-1' });
    assert.equal(again.partition, results[1].partition);
    assert.equal(c.producer.outboxSize.records, 0);
  } finally {
    c.close();
  }
});

test('connection lost before the ack: the resend carries identical bytes and is written once', async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, memoryStorage());
  try {
    await c.producer.send('t', { n: -1 });
    broker.holdAcks = true;
    const pending = Array.from({ length: 50 }, (_, n) => c.producer.send('t', { n }));
    while (broker.producesReceived < 2) await new Promise((r) => setTimeout(r, 2));
    const firstBytes = broker.producedBatches.slice(1).map((b) => Buffer.from(b).toString('hex'));
    // Write them without answering, then cut the connection (the ack is lost).
    for (const bytes of broker.producedBatches.slice(1)) {
      const h = decodeRecordBatch(bytes);
      assert.ok(h.ok);
      broker.append('t', 0, bytes, h.value.header);
    }
    broker.holdAcks = false;
    broker.dropConnections();
    const results = await Promise.all(pending);
    assert.deepEqual(results.map((r) => r.offset), Array.from({ length: 50 }, (_, i) => i + 1));
    const resent = broker.producedBatches.slice(1 + firstBytes.length).map((b) => Buffer.from(b).toString('hex'));
    assert.deepEqual(resent, firstBytes);
    assert.deepEqual(logValues(broker, 't'), [-1, ...Array.from({ length: 50 }, (_, i) => i)]);
  } finally {
    c.close();
  }
});

test('reload: a new producer on the same storage replays the outbox with the same producer id, no loss, no duplicate', async () => {
  const broker = new FakeBroker(2);
  const storage = memoryStorage();
  const a = start(broker, storage);
  await a.producer.send('t', { n: 0 });
  broker.holdAcks = true;
  const queued = Array.from({ length: 30 }, (_, n) => a.producer.send('t', { n: n + 1 }, { key: String(n) }));
  queued.forEach((p) => p.catch(() => {}));
  await Promise.all(queued.map((p) => p.queued));
  while (broker.producesReceived < 2) await new Promise((r) => setTimeout(r, 2));
  broker.producedBatches.forEach((bytes, i) => { // written, ack lost
    if (i === 0) return;
    const d = decodeRecordBatch(bytes);
    assert.ok(d.ok);
    broker.append('t', broker.producedPartitions[i], bytes, d.value.header);
  });
  a.close(); // "reload"
  broker.holdAcks = false;
  const stored = await storage.outbox.load();
  assert.equal(stored.records.length + stored.batches.reduce((n, b) => n + b.recordIds.length, 0), 30);
  const b = start(broker, storage);
  try {
    await b.producer.flush();
    while (b.producer.outboxSize.records > 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(logValues(broker, 't').sort((x, y) => x - y), Array.from({ length: 31 }, (_, i) => i));
    const ids = new Set(broker.producedBatches.map((bytes) => { const d = decodeRecordBatch(bytes); assert.ok(d.ok); return d.value.header.producerId; }));
    assert.equal(ids.size, 1, 'the reloaded producer reuses the persisted producer id');
    assert.deepEqual(await storage.outbox.load().then((s) => [s.records.length, s.batches.length]), [0, 0]);
  } finally {
    b.close();
  }
});

test('outbox bound: sends past maxOutboxRecords reject with OUTBOX_FULL; schema-less JSON failures reject early', async () => {
  const broker = new FakeBroker(1);
  broker.holdAcks = true;
  const c = start(broker, memoryStorage(), { maxOutboxRecords: 10 });
  try {
    const ok = Array.from({ length: 10 }, (_, n) => c.producer.send('t', { n }));
    ok.forEach((p) => p.catch(() => {}));
    await assert.rejects(c.producer.send('t', { n: 10 }), (e: any) => e.errorName === 'OUTBOX_FULL');
    await assert.rejects(c.producer.send('t', undefined), (e: any) => e.errorName === 'SCHEMA_VALIDATION_FAILED');
  } finally {
    c.close();
  }
});

test('flush() and drained() resolve on the acks themselves: no timer has to fire (timers frozen)', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(2);
  const c = start(broker, memoryStorage(), { lingerMs: 60_000 });
  try {
    await c.producer.send('t', { n: -1 }); // connected, producer id and metadata known
    mock.timers.enable({ apis: ['setTimeout', 'setInterval'] }); // the fake broker delivers with setImmediate
    const sends = Array.from({ length: 200 }, (_, n) => c.producer.send('t', { n }, { key: `k${n % 5}` }));
    await c.producer.flush();
    const results = await Promise.all(sends);
    assert.equal(results.length, 200, 'everything sent before flush() is acknowledged when it resolves');
    assert.equal(c.producer.outboxSize.records, 0);
    const more = Array.from({ length: 20 }, (_, n) => c.producer.send('t', { n }));
    await Promise.all(more.map((s) => s.queued));
    await c.producer.freezeNow(); // lingerMs is a minute and timers are frozen: freeze by hand
    await c.producer.drained();
    assert.equal(c.producer.outboxSize.records, 0, 'drained() resolves once the outbox is empty');
  } finally {
    mock.timers.reset();
    c.close();
  }
});

test('drained() resolves when the producer closes with records left', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  broker.holdAcks = true;
  const c = start(broker, memoryStorage());
  const pending = c.producer.send('t', { n: 1 });
  pending.catch(() => {});
  await pending.queued;
  const drained = c.producer.drained();
  c.close();
  await drained;
  await assert.rejects(pending, (e: any) => e.errorName === 'NOT_CONNECTED');
});
