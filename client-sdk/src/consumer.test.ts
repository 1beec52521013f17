import 'fake-indexeddb/auto';
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type ClientOptions } from './client.ts';
import { FakeBroker } from './fake-broker.ts';
import { memoryStorage } from './memory-storage.ts';
import { indexedDbStorage } from './indexeddb-storage.ts';
import { seededRandom } from './reconnect-policy.ts';
import type { ConsumerRecord } from './consumer-record.ts';
import type { NotRecoveredEvent } from './consumer.ts';

const fast = { reconnect: { initialDelayMs: 2, maxDelayMs: 10 }, random: seededRandom(9), beacon: false } as const;
function client(broker: FakeBroker, extra: Partial<ClientOptions> = {}) {
  return createClient({ urls: 'ws://fake/v1/ws', transport: broker.transport, ...fast, ...extra });
}
const until = async (cond: () => boolean, what: string, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};
async function produce(broker: FakeBroker, topic: string, n: number, from = 0): Promise<void> {
  const c = client(broker);
  await Promise.all(Array.from({ length: n }, (_, i) => c.producer.send(topic, { n: from + i }, { key: `k${(from + i) % 13}` })));
  await c.close();
}
/** Asserts offsets per partition are exactly start..end-1 in order. */
function assertExactlyOnce(seen: ConsumerRecord[], ends: Map<number, number>, starts = new Map<number, number>()): void {
  for (const [p, end] of ends) {
    const offsets = seen.filter((r) => r.partition === p).map((r) => r.offset);
    const start = starts.get(p) ?? 0;
    assert.deepEqual(offsets, Array.from({ length: end - start }, (_, i) => start + i), `partition ${p}`);
  }
}
const ends = (broker: FakeBroker, topic: string) => new Map(broker.topic(topic).partitions.map((p, i) => [i, p.logEndOffset]));

test('subscribe from earliest delivers every offset once, in order, while records keep arriving', async () => {
  const broker = new FakeBroker(3);
  await produce(broker, 't', 600);
  const c = client(broker);
  const seen: ConsumerRecord[] = [];
  const sub = c.subscribe('t', (r) => { seen.push(r); }, { from: 'earliest' });
  await sub.ready;
  await produce(broker, 't', 400, 600);
  await until(() => seen.length === 1000, '1000 records');
  assertExactlyOnce(seen, ends(broker, 't'));
  assert.deepEqual(seen.map((r) => (r.value as { n: number }).n).sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.equal(typeof seen[0].key, 'string');
  await c.close();
});

test('connection drops mid-stream: no gap, no duplicate', async () => {
  const broker = new FakeBroker(2);
  await produce(broker, 't', 3000);
  const c = client(broker);
  const seen: ConsumerRecord[] = [];
  c.subscribe('t', async (r) => { seen.push(r); if (r.offset % 97 === 0) await new Promise((res) => setTimeout(res, 1)); }, { from: 'earliest', consumerId: 'x' });
  for (let i = 0; i < 5; i++) {
    await until(() => seen.length > i * 500, 'progress');
    broker.dropConnections();
  }
  await until(() => seen.length >= 3000, 'all records');
  await new Promise((r) => setTimeout(r, 50));
  assertExactlyOnce(seen, ends(broker, 't'));
  await c.close();
});

test('resume: a new client on the same storage continues exactly after the last handled offset', async () => {
  const broker = new FakeBroker(2);
  await produce(broker, 't', 1000);
  const storage = memoryStorage();
  const seen: ConsumerRecord[] = [];
  const a = client(broker, { storage });
  const subA = a.subscribe('t', (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest' });
  await until(() => seen.length >= 300, '300');
  await subA.unsubscribe();
  await a.close();
  const b = client(broker, { storage });
  b.subscribe('t', (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest' });
  await until(() => seen.length >= 1000, 'rest');
  await new Promise((r) => setTimeout(r, 30));
  assertExactlyOnce(seen, ends(broker, 't'));
  await b.close();
});

test('stored offset deleted by retention: "not recovered" with the lost range, then reset earliest', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 50);
  await produce(broker, 't', 50, 50);
  const storage = memoryStorage();
  await storage.offsets.putOffsets('c', 't', new Map([[0, { offset: 10, topicId: broker.topic('t').topicId }]]));
  broker.deleteRecordsBefore('t', 0, 50);
  const start = broker.topic('t').partitions[0].logStartOffset;
  assert.equal(start, 50);
  const c = client(broker, { storage });
  const events: NotRecoveredEvent[] = [];
  const seen: ConsumerRecord[] = [];
  c.subscribe('t', (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest', onNotRecovered: (e) => events.push(e) });
  await until(() => seen.length === 100 - start, 'records after reset');
  assert.equal(events.length, 1);
  assert.equal(events[0].reason, 'OFFSET_OUT_OF_RANGE');
  assert.deepEqual(events[0].lost, { from: 10, to: start });
  assert.equal(seen[0].offset, start);
  await c.close();
});

test('topic deleted and recreated: INCONSISTENT_TOPIC_ID is reported, never skipped silently', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 20);
  const storage = memoryStorage();
  const old = broker.topic('t').topicId;
  await storage.offsets.putOffsets('c', 't', new Map([[0, { offset: 15, topicId: old }]]));
  broker.createTopic('t', 1);
  await produce(broker, 't', 5);
  const c = client(broker, { storage });
  const events: NotRecoveredEvent[] = [];
  c.on('notrecovered', (e) => events.push(e));
  const seen: ConsumerRecord[] = [];
  c.subscribe('t', (r) => { seen.push(r); }, { consumerId: 'c', reset: 'earliest' });
  await until(() => seen.length === 5, 'new topic records');
  assert.equal(events[0].reason, 'INCONSISTENT_TOPIC_ID');
  assert.equal(events[0].storedTopicId, old);
  assert.deepEqual(events[0].lost, { from: 15, to: null });
  assert.deepEqual((await storage.offsets.getOffsets('c', 't')).get(0), { offset: 5, topicId: broker.topic('t').topicId });
  await c.close();
});

test('two local consumers at different positions share one broker subscription per partition', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 200);
  const c = client(broker);
  const a: number[] = [], b: number[] = [];
  const subA = c.subscribe('t', (r) => { a.push(r.offset); }, { from: 'latest', consumerId: 'a' });
  await subA.ready;
  c.subscribe('t', (r) => { b.push(r.offset); }, { from: { offset: 50 }, consumerId: 'b' });
  await produce(broker, 't', 100, 200);
  await until(() => a.length === 100 && b.length === 250, 'both');
  assert.deepEqual(a, Array.from({ length: 100 }, (_, i) => 200 + i));
  assert.deepEqual(b, Array.from({ length: 250 }, (_, i) => 50 + i));
  assert.equal([...broker.sessions].reduce((n, s) => n + s.subs.size, 0), 1);
  await c.close();
});

test('credit: a slow handler never has more than the window outstanding', async () => {
  const broker = new FakeBroker(1);
  for (let i = 0; i < 10; i++) await produce(broker, 't', 200, i * 200);
  broker.maxBatchBytes = 4096;
  const c = client(broker, { limits: { creditWindowBytes: 4096, maxCreditWindowBytes: 4096 } }); // a fixed window (adaptive: partition-stream.test.ts)
  let handled = 0;
  c.subscribe('t', async () => {
    handled++;
    if (handled % 50 === 0) await new Promise((r) => setTimeout(r, 1));
  }, { from: 'earliest' });
  await until(() => handled === 2000, 'all handled');
  const credit = [...broker.sessions][0].subs.get('t/0')!.credit;
  const window = Math.max(4096, 2 * broker.maxBatchBytes); // two of the broker's largest frames at least
  assert.ok(credit <= window, `broker-side credit ${credit} stays within the window ${window}`);
  assert.ok(broker.recordsFramesSent > 3, 'delivery was split by credit');
  await c.close();
});

test('consume(): async iteration stores the offset when the loop moves on; abort ends it', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 30);
  const storage = memoryStorage();
  const c = client(broker, { storage });
  const ac = new AbortController();
  const got: number[] = [];
  for await (const r of c.consume('t', { from: 'earliest', consumerId: 'it', signal: ac.signal })) {
    got.push(r.offset);
    if (got.length === 10) ac.abort();
    if (got.length > 10) break;
  }
  assert.deepEqual(got.slice(0, 10), Array.from({ length: 10 }, (_, i) => i));
  const stored = (await storage.offsets.getOffsets('it', 't')).get(0)!.offset;
  assert.ok(stored === 9 || stored === 10, `stored ${stored}`);
  await c.close();
});

test('schema: invalid values are reported per policy; typed topics validate before sending', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 3);
  const c = client(broker);
  const schema = { parse: (v: unknown) => { if ((v as { n: number }).n === 1) throw new Error('bad'); return v as { n: number }; } };
  const topic = { name: 't', schema, onInvalid: 'error' as const };
  const errors: unknown[] = [];
  const seen: number[] = [];
  const sub = c.subscribe(topic, (r) => { seen.push(r.value.n); }, { from: 'earliest' });
  sub.on('error', (e) => errors.push(e));
  await until(() => seen.length === 2, 'valid ones');
  assert.equal(errors.length, 1);
  await assert.rejects(c.producer.send(topic, { n: 1 }), (e: any) => e.errorName === 'SCHEMA_VALIDATION_FAILED');
  await c.close();
});

test('transactional: handler writes and the offset commit in one IndexedDB transaction', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 40);
  const storage = await indexedDbStorage({ name: 'tx-test', version: 2, upgrade: (db) => { if (!db.objectStoreNames.contains('seen')) db.createObjectStore('seen'); } });
  const c = client(broker, { storage });
  let count = 0;
  c.subscribe<{ n: number }>('t', async (r, { tx }) => { await tx.objectStore('seen').put(r.value.n, r.offset); count++; }, { from: 'earliest', consumerId: 'tx', transactional: { stores: ['seen'] } });
  await until(() => count === 40, 'handled');
  await new Promise((r) => setTimeout(r, 20));
  const check = await indexedDbStorage({ name: 'tx-test', version: 2 });
  assert.equal((await check.offsets.getOffsets('tx', 't')).get(0)!.offset, 40);
  check.close();
  await c.close();
});

test('checkCrcs: a batch whose CRC does not match stops the subscription (CORRUPT_MESSAGE) unless checkCrcs is false', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 20);
  const stored = broker.batches('t', 0)[0].bytes;
  stored[42] ^= 1; // maxTimestamp's low byte: covered by the CRC, harmless to the records
  const checked = client(broker);
  const seen: number[] = [];
  const sub = checked.subscribe('t', (r) => { seen.push(r.offset); }, { from: 'earliest' });
  await assert.rejects(sub.closed, (e: { errorName?: string }) => e.errorName === 'CORRUPT_MESSAGE');
  assert.equal(seen.length, 0, 'nothing of the corrupt batch reached the handler');
  await checked.close();
  const trusting = client(broker, { checkCrcs: false });
  const all: number[] = [];
  trusting.subscribe('t', (r) => { all.push(r.offset); }, { from: 'earliest' });
  await until(() => all.length === 20, '20 records without CRC checks');
  assert.deepEqual(all, Array.from({ length: 20 }, (_, i) => i));
  await trusting.close();
});

test('values: ASCII, non-ASCII, long and invalid UTF-8 JSON decode like TextDecoder + JSON.parse', async () => {
  const broker = new FakeBroker(1);
  const values = [{ s: 'plain' }, { s: 'é€😀' }, { s: 'x'.repeat(5000) }, 'not json', 17, null];
  const c = client(broker);
  for (const v of values) await c.producer.send('t', v, { key: 'ключ', headers: { h: 'ü' } });
  const seen: ConsumerRecord[] = [];
  c.subscribe('t', (r) => { seen.push(r); }, { from: 'earliest' });
  await until(() => seen.length === values.length, 'all values');
  assert.deepEqual(seen.map((r) => r.value), values);
  assert.deepEqual(seen.map((r) => [r.key, r.headers.h]), values.map(() => ['ключ', 'ü']));
  await c.close();
});

test('unsubscribe() waits for the handler in flight and resolves as soon as it returns: no timer has to fire (timers frozen)', { timeout: 10_000 }, async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 5);
  const storage = memoryStorage();
  const c = client(broker, { storage });
  let entered!: () => void, release!: () => void;
  const inHandler = new Promise<void>((r) => (entered = r));
  const gate = new Promise<void>((r) => (release = r));
  const handled: number[] = [];
  const sub = c.subscribe('t', async (r) => {
    if (r.offset === 2) { entered(); await gate; }
    handled.push(r.offset);
  }, { from: 'earliest', consumerId: 'stop' });
  await inHandler;
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  try {
    let stopped = false;
    const stopping = sub.unsubscribe().then(() => { stopped = true; });
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(stopped, false, 'the handler of offset 2 is still running');
    release();
    await stopping;
    assert.deepEqual(handled, [0, 1, 2], 'the record in flight finishes; nothing after it starts');
    assert.equal((await storage.offsets.getOffsets('stop', 't')).get(0)!.offset, 3);
  } finally {
    mock.timers.reset();
    await c.close();
  }
});

test('consume(): leaving the loop with break ends the subscription; the record it broke on is not stored as handled', { timeout: 10_000 }, async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 10);
  const storage = memoryStorage();
  const c = client(broker, { storage });
  const got: number[] = [];
  for await (const r of c.consume('t', { from: 'earliest', consumerId: 'brk' })) {
    got.push(r.offset);
    if (got.length === 3) break;
  }
  assert.deepEqual(got, [0, 1, 2]);
  assert.equal((await storage.offsets.getOffsets('brk', 't')).get(0)!.offset, 2, 'offsets 0 and 1 were moved past; 2 was not');
  const again: number[] = [];
  for await (const r of c.consume('t', { consumerId: 'brk' })) {
    again.push(r.offset);
    if (again.length === 2) break;
  }
  assert.deepEqual(again, [2, 3], 'the next loop resumes at the record the last one broke on');
  await c.close();
});
