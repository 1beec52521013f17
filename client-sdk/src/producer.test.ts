import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from './connection.ts';
import { FakeBroker } from './fake-broker.ts';
import { IDLE_BATCH_BYTES, PRODUCER_BATCHES_RETAINED, validateClientLimits } from './limits.ts';
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

/** Producer ids stamped in the batches the broker received, in order. */
const producerIds = (broker: FakeBroker): number[] => broker.producedBatches.map((bytes) => { const d = decodeRecordBatch(bytes); assert.ok(d.ok); return d.value.header.producerId; });
const until = async (what: string, cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};
/** Memory storage whose batch deletes commit only when the test releases them (an IndexedDB transaction that takes its time). */
function slowDeletes(): { storage: Storage; held: (() => void)[]; committed: () => number } {
  const storage = memoryStorage();
  const held: (() => void)[] = [];
  let committed = 0;
  const deleteBatches = storage.outbox.deleteBatches.bind(storage.outbox);
  storage.outbox.deleteBatches = (ids) => new Promise<void>((resolve) => held.push(() => { void deleteBatches(ids).then(() => { committed += ids.length; resolve(); }); }));
  return { storage, held, committed: () => committed };
}

test('finding 6: at most PRODUCER_BATCHES_RETAINED batches per partition may be in the log while stored; the next is sent once a delete committed', async () => {
  const broker = new FakeBroker(1);
  const { storage, held, committed } = slowDeletes();
  const c = start(broker, storage, { maxBatchRecords: 1, lingerMs: 0 });
  try {
    const results = Array.from({ length: 12 }, (_, n) => c.producer.send('t', { n }, { partition: 0 }));
    const acked: number[] = [];
    results.forEach((r, n) => void r.then(() => acked.push(n)));
    await until('5 batches acknowledged', () => acked.length === 5);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(broker.producesReceived, 5, 'no 6th batch while 5 acknowledged ones wait for their deletes');
    assert.equal(acked.length, 5, 'an acknowledgement resolves at once; only the next send waits for the delete');
    for (let released = 0; released < 12; released++) {
      await until(`delete #${released} requested`, () => held.length > released);
      held[released]();
      await until(`delete #${released} committed`, () => committed() === released + 1);
      await new Promise((r) => setTimeout(r, 5));
      // Stored and possibly in the log = sent - committed deletes: never above the broker's window.
      assert.ok(broker.producesReceived - committed() <= PRODUCER_BATCHES_RETAINED, `${broker.producesReceived} sent, ${committed()} deleted`);
    }
    assert.deepEqual((await Promise.all(results)).map((r) => r.offset), Array.from({ length: 12 }, (_, i) => i));
    assert.equal(broker.producesReceived, 12);
    assert.deepEqual(logValues(broker, 't'), Array.from({ length: 12 }, (_, i) => i));
  } finally {
    c.close();
  }
});

test('finding 6: DUPLICATE_SEQUENCE_NUMBER (46) is "already written": the send resolves with offset -1, the batch is deleted, nothing re-stamped', async () => {
  const broker = new FakeBroker(1);
  broker.retainedBatches = 2; // so that a resend of 5 unanswered batches falls below the window
  const storage = memoryStorage();
  const c = start(broker, storage, { maxBatchRecords: 1, lingerMs: 0 });
  try {
    await c.producer.send('t', { n: -1 }, { partition: 0 });
    broker.loseAcks = true;
    const results = Array.from({ length: 5 }, (_, n) => c.producer.send('t', { n }, { partition: 0 }));
    await until('5 batches written, their acks lost', () => broker.batches('t', 0).length === 6);
    broker.loseAcks = false;
    broker.dropConnections();
    assert.deepEqual((await Promise.all(results)).map((r) => r.offset), [-1, -1, -1, 4, 5], 'below the window: offset unknown (-1); in it: the original offsets');
    assert.deepEqual(logValues(broker, 't'), [-1, 0, 1, 2, 3, 4], 'each once');
    assert.equal(new Set(producerIds(broker)).size, 1, 'never re-initialized');
    assert.deepEqual(c.errors, []);
    await until('the deletes', () => c.producer.outboxSize.records === 0);
    assert.deepEqual(await storage.outbox.load().then((s) => s.batches.length), 0);
  } finally {
    c.close();
  }
});

test('finding 6: a reload that finds more stored batches than the broker remembers resends them: 46 for the older ones, original offsets for the last 5, nothing written twice', async () => {
  const broker = new FakeBroker(1);
  const storage = memoryStorage();
  const deleteBatches = storage.outbox.deleteBatches.bind(storage.outbox);
  storage.outbox.deleteBatches = async () => {}; // acknowledged batches stay stored (an outbox written before the bound, or a crash)
  const a = start(broker, storage, { maxBatchRecords: 1, lingerMs: 0 });
  await Promise.all(Array.from({ length: 12 }, (_, n) => a.producer.send('t', { n }, { partition: 0 })));
  a.close();
  storage.outbox.deleteBatches = deleteBatches;
  assert.equal((await storage.outbox.load()).batches.length, 12);
  const sentBefore = broker.producesReceived;
  const b = start(broker, storage, { maxBatchRecords: 1, lingerMs: 0 });
  try {
    await until('the stored batches resent and deleted', () => broker.producesReceived === sentBefore + 12 && b.producer.outboxSize.records === 0);
    await b.producer.drained();
    assert.deepEqual(logValues(broker, 't'), Array.from({ length: 12 }, (_, i) => i), 'each once');
    assert.equal(new Set(producerIds(broker)).size, 1, 'the stored producer id, never a new one');
    assert.deepEqual(b.errors, []);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal((await storage.outbox.load()).batches.length, 0);
  } finally {
    b.close();
  }
});

test('finding 6: a batch that may be in the log is never re-stamped: when the broker refuses the stored producer id, its records fail (outcome unknown); never-sent batches go out under the new id', async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, memoryStorage(), { maxBatchRecords: 1 });
  try {
    assert.equal((await c.producer.send('t', { n: 0 }, { partition: 0 })).offset, 0);
    const oldId = producerIds(broker)[0];
    broker.loseAcks = true;
    const maybeWritten = c.producer.send('t', { n: 1 }, { partition: 0 });
    maybeWritten.catch(() => {});
    await until('batch 1 written, its ack lost', () => broker.batches('t', 0).length === 2);
    broker.refuseConnections = true;
    broker.dropConnections();
    await until('disconnected', () => c.conn.state !== 'connected');
    const neverSent = c.producer.send('t', { n: 2 }, { partition: 0 });
    await neverSent.queued;
    await until('batch 2 frozen while disconnected', () => c.producer.frozenBatches().length === 2);
    broker.secretKey = 'lost'; // the broker no longer recognises the stored id's secret
    broker.loseAcks = false;
    broker.refuseConnections = false;
    await assert.rejects(maybeWritten, (e: any) => e.errorName === 'UNKNOWN_PRODUCER_ID' && /outcome unknown/.test(e.message));
    assert.equal((await neverSent).offset, 2);
    assert.deepEqual(logValues(broker, 't'), [0, 1, 2], 'batch 1 was not written again under the new id');
    const ids = producerIds(broker);
    assert.deepEqual(ids.slice(0, 2), [oldId, oldId]);
    assert.ok(ids.slice(2).every((id) => id !== oldId), 'batch 2 went out under the new id');
    assert.equal(ids.length, 3, 'batch 1 was never resent');
  } finally {
    c.close();
  }
});

test('finding 6: OUT_OF_ORDER at the head after a reload is a real gap (the broker lost its tail): the queued batches are re-stamped under a new id and written once', async () => {
  const broker = new FakeBroker(1);
  const storage = memoryStorage();
  const a = start(broker, storage, { maxBatchRecords: 1, lingerMs: 0 });
  for (const n of [0, 1]) await a.producer.send('t', { n }, { partition: 0 });
  broker.loseAcks = true;
  a.producer.send('t', { n: 2 }, { partition: 0 }).catch(() => {});
  await until('batch 2 written, its ack lost', () => broker.batches('t', 0).length === 3);
  a.close(); // reload
  broker.loseAcks = false;
  broker.truncate('t', 0, 1); // the broker loses records 1 and 2: it expects sequence 1, the outbox's head is 2
  const b = start(broker, storage, { maxBatchRecords: 1, lingerMs: 0 });
  try {
    await until('the outbox drained', () => b.producer.outboxSize.records === 0 && broker.batches('t', 0).length === 2);
    assert.deepEqual(logValues(broker, 't'), [0, 2], 'record 2 once (record 1 was lost by the broker after its ack)');
    assert.deepEqual(b.errors.map((e: any) => e.errorName), ['OUT_OF_ORDER_SEQUENCE_NUMBER']);
    const ids = producerIds(broker);
    assert.notEqual(ids[ids.length - 1], ids[0], 'the gap was closed under a new producer id');
  } finally {
    b.close();
  }
});

test('queued resolves only once the store write carrying the record is done, also when a full batch issued that write early', async () => {
  const broker = new FakeBroker(1);
  const storage = memoryStorage();
  const held: (() => void)[] = [];
  const addRecords = storage.outbox.addRecords.bind(storage.outbox);
  const c = start(broker, storage, { maxBatchRecords: 2 });
  try {
    assert.equal((await c.producer.send('t', { n: -1 }, { partition: 0 })).offset, 0); // connected, with a producer id
    storage.outbox.addRecords = (records) => new Promise<void>((resolve) => held.push(() => void addRecords(records).then(resolve)));
    // 4 records, batches of 2: each batch freezes (and issues its records' write) inside the send's own tick.
    const sends = Array.from({ length: 4 }, (_, n) => c.producer.send('t', { n }, { partition: 0 }));
    let queued = 0;
    for (const s of sends) void s.queued.then(() => queued++);
    await until('the record writes issued', () => held.length === 2);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(queued, 0, 'no record is queued while the write that stores it is pending (a crash now would lose it)');
    for (const release of held) release();
    await Promise.all(sends.map((s) => s.queued));
    assert.deepEqual((await Promise.all(sends)).map((r) => r.offset), [1, 2, 3, 4]);
  } finally {
    c.close();
  }
});

test('finding 6: after a reload the stored batches are resent within the bound too (which of them are in the log is not known)', async () => {
  const broker = new FakeBroker(1);
  const { storage, held, committed } = slowDeletes();
  const a = start(broker, storage, { maxBatchRecords: 1, lingerMs: 0 });
  await Promise.all(Array.from({ length: 3 }, (_, n) => a.producer.send('t', { n }, { partition: 0 }))); // written, deletes held
  broker.refuseConnections = true;
  broker.dropConnections();
  await until('disconnected', () => a.conn.state !== 'connected');
  const later = Array.from({ length: 20 }, (_, n) => a.producer.send('t', { n: n + 3 }, { partition: 0 }));
  later.forEach((p) => p.catch(() => {}));
  await Promise.all(later.map((p) => p.queued));
  await until('20 batches frozen, never sent', () => a.producer.frozenBatches().length === 20);
  a.close(); // crash: the 3 acknowledged batches' deletes never commit
  held.length = 0;
  assert.equal((await storage.outbox.load()).batches.length, 23);
  broker.refuseConnections = false;
  const sentBefore = broker.producesReceived;
  const b = start(broker, storage, { maxBatchRecords: 1, lingerMs: 0 });
  try {
    await until('the first 5 resends acknowledged, their deletes pending', () => held.length === 5);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(broker.producesReceived - sentBefore, 5, '3 written before the crash + 2 new, then nothing while their deletes are pending');
    for (let released = 0; released < 23; released++) {
      await until(`delete #${released} requested`, () => held.length > released);
      held[released]();
      await until(`delete #${released} committed`, () => committed() === released + 1);
    }
    await until('drained', () => b.producer.outboxSize.records === 0);
    assert.deepEqual(logValues(broker, 't'), Array.from({ length: 23 }, (_, i) => i), 'each once');
    assert.deepEqual(b.errors, []);
  } finally {
    b.close();
  }
});

test('what accumulates while a partition cannot send grows one batch: after an outage the backlog goes in a few large batches, not one per linger', async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, memoryStorage());
  try {
    await c.producer.send('t', { n: -1 }, { partition: 0 });
    broker.refuseConnections = true;
    broker.dropConnections();
    while (c.conn.state === 'connected') await new Promise((r) => setTimeout(r, 1));
    // A paced producer during the outage: a few records per tick, far more ticks than lingerMs-sized batches could be sent.
    const results: Promise<{ offset: number }>[] = [];
    for (let tick = 0; tick < 40; tick++) {
      for (let k = 0; k < 3; k++) results.push(c.producer.send('t', { n: results.length }, { partition: 0 }));
      await new Promise((r) => setTimeout(r, 4));
    }
    const before = broker.producesReceived;
    broker.refuseConnections = false;
    assert.deepEqual((await Promise.all(results)).map((r) => r.offset), Array.from({ length: 120 }, (_, i) => i + 1));
    // Without holding back, 40 ticks at lingerMs 2 freeze ~40 batches; now at most maxInflightPerPartition lingered ones plus the rest in one.
    assert.ok(broker.producesReceived - before <= 5 + 1, `${broker.producesReceived - before} produce requests for the backlog`);
    assert.deepEqual(logValues(broker, 't'), [-1, ...Array.from({ length: 120 }, (_, i) => i)]);
  } finally {
    c.close();
  }
});

test('a burst in one tick to an idle partition: a first batch of IDLE_BATCH_BYTES goes at once, the rest on its ack (not at lingerMs)', async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, memoryStorage(), { lingerMs: 60_000 });
  try {
    await c.producer.send('t', { n: -1 });
    const before = broker.producesReceived;
    const pad = 'x'.repeat(90);
    const burst = Array.from({ length: 1000 }, (_, n) => c.producer.send('t', { n, pad }));
    const size = IDLE_BATCH_BYTES / (16 + JSON.stringify({ n: 500, pad }).length); // RECORD_OVERHEAD_BYTES + value
    let timer: ReturnType<typeof setTimeout> | undefined;
    const lingered = new Promise((resolve) => { timer = setTimeout(resolve, 10_000, 'still waiting after 10 s (for lingerMs?)'); });
    assert.notEqual(await Promise.race([Promise.all(burst), lingered]), 'still waiting after 10 s (for lingerMs?)');
    clearTimeout(timer);
    const counts = broker.producedBatches.slice(before).map((b) => { const d = decodeRecordBatch(b); assert.ok(d.ok); return d.value.records.length; });
    assert.equal(counts.length, 2, `batches of the burst: ${counts}`);
    assert.ok(Math.abs(counts[0] - size) <= 2, `first batch ${counts[0]} records, ~${Math.round(size)} expected`);
    assert.equal(counts[0] + counts[1], 1000);
    assert.deepEqual(logValues(broker, 't'), [-1, ...Array.from({ length: 1000 }, (_, i) => i)]);
  } finally {
    c.close();
  }
});

test('values beyond ASCII reach the log exact and count their UTF-8 bytes against maxOutboxBytes', async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, memoryStorage());
  try {
    await c.producer.send('t', { n: 0 });
    broker.holdAcks = true;
    const texts = ['plain', 'café', '日本語', '😀😀', 'x'.repeat(40)];
    const pending = texts.map((s, n) => c.producer.send('t', { n, s }));
    await Promise.all(pending.map((p) => p.queued));
    const ascii = texts.map((s, n) => JSON.stringify({ n, s }).length).reduce((a, b) => a + b);
    const utf8 = texts.map((s, n) => new TextEncoder().encode(JSON.stringify({ n, s })).length).reduce((a, b) => a + b);
    assert.equal(utf8 - ascii, 1 + 6 + 4); // é, three CJK, two emoji (surrogate pairs)
    assert.equal(c.producer.outboxSize.bytes, utf8 + texts.length * 16); // RECORD_OVERHEAD_BYTES each
    broker.holdAcks = false;
    broker.dropConnections(); // the held produce is answered on the resend
    await Promise.all(pending);
    const logged: string[] = [];
    for (const b of broker.batches('t', 0)) {
      const d = decodeRecordBatch(b.bytes);
      assert.ok(d.ok);
      for (const r of d.value.records) logged.push(JSON.parse(new TextDecoder().decode(r.value!)).s);
    }
    assert.deepEqual(logged.slice(1), texts);
  } finally {
    c.close();
  }
});
