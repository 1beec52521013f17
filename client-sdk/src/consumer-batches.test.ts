/**
 * The consumer's batch-level API (`onBatch`, pull mode `batches()`) and its
 * lazily decoded records: values decoded when read, the `onInvalid` policy
 * applied when a handler lets a read value's error escape, plain copies for
 * postMessage. Against the in-process fake broker, through the client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type ClientOptions } from './client.ts';
import { FakeBroker } from './fake-broker.ts';
import { memoryStorage } from './memory-storage.ts';
import { seededRandom } from './reconnect-policy.ts';
import { plainRecord, type ConsumerRecord } from './consumer-record.ts';
import { Subscription, type ConsumerBatch, type SubscribeOptions } from './consumer.ts';
import type { Storage } from './storage.ts';
import type { Topic } from './topic.ts';

const fast = { reconnect: { initialDelayMs: 2, maxDelayMs: 10 }, random: seededRandom(3), beacon: false } as const;
const client = (broker: FakeBroker, extra: Partial<ClientOptions> = {}) => createClient({ urls: 'ws://fake/v1/ws', transport: broker.transport, ...fast, ...extra });
/** A small fixed credit window: a catch-up comes as many frames. */
const smallFrames = { limits: { creditWindowBytes: 4096, maxCreditWindowBytes: 4096 } };
const until = async (cond: () => boolean, what: string, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};
/** Values of ~250 B: a catch-up of a few hundred records spans several frames (the fake broker sends ≤ 64 KiB a frame). */
const PAD = 'x'.repeat(240);
async function produce(broker: FakeBroker, topic: string, n: number, from = 0): Promise<void> {
  const c = client(broker);
  // In rounds of 10: one RecordBatch per round (a frame carries whole batches).
  for (let at = 0; at < n; at += 10) {
    await Promise.all(Array.from({ length: Math.min(10, n - at) }, (_, i) => c.producer.send(topic, { n: from + at + i, pad: PAD }, { key: `k${from + at + i}`, headers: { h: `v${from + at + i}` } })));
  }
  await c.close();
}
/** A pull-mode subscription (no handler): what `subscribe(topic, options)` without a handler builds. */
function pull<T>(c: ReturnType<typeof client>, topic: string | Topic<unknown, T>, options: SubscribeOptions<T>): Subscription<T> {
  return new Subscription<T>(c.internals().deps, topic, null, options);
}

test('batches(): every offset once and in order, one frame per batch, the offset stored when the loop asks for the next', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 1000);
  const storage = memoryStorage();
  const c = client(broker, { storage, ...smallFrames });
  const sub = pull<{ n: number }>(c, 't', { from: 'earliest', consumerId: 'pull' });
  const offsets: number[] = [];
  let batches = 0;
  for await (const batch of sub.batches()) {
    batches++;
    assert.equal(batch.partition, 0);
    assert.equal(batch.nextOffset, batch.records[batch.records.length - 1].offset + 1);
    assert.ok(batch.highWatermark >= batch.nextOffset);
    // The previous batch is stored once this one is asked for; this one is not yet.
    const stored = (await storage.offsets.getOffsets('pull', 't')).get(0)?.offset ?? 0;
    assert.ok(stored <= batch.records[0].offset, `stored ${stored} ran ahead of the batch at ${batch.records[0].offset}`);
    for (const r of batch.records) { offsets.push(r.offset); assert.equal(r.value.n, r.offset); }
    if (offsets.length === 1000) break;
  }
  assert.deepEqual(offsets, Array.from({ length: 1000 }, (_, i) => i));
  assert.ok(batches > 1 && batches < 1000, `${batches} batches`);
  await sub.closed; // leaving the loop unsubscribed
  await c.close();
});

test('batches(): leaving the loop stores the batches handled before, not the one it held; the next loop resumes there', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 1000);
  const storage: Storage = memoryStorage();
  const c = client(broker, { storage, ...smallFrames });
  let heldFirst = -1, handledUpTo = 0;
  let n = 0;
  for await (const batch of pull<{ n: number }>(c, 't', { from: 'earliest', consumerId: 'p' }).batches()) {
    if (++n === 3) { heldFirst = batch.records[0].offset; break; }
    handledUpTo = batch.nextOffset;
  }
  assert.equal(heldFirst, handledUpTo);
  assert.equal((await storage.offsets.getOffsets('p', 't')).get(0)!.offset, handledUpTo);
  const again = pull<{ n: number }>(c, 't', { consumerId: 'p' });
  for await (const batch of again.batches()) {
    assert.equal(batch.records[0].offset, heldFirst);
    break;
  }
  await c.close();
});

test('batches(): unsubscribe while a batch is held ends the loop without storing it; misuse is refused', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 50);
  const storage = memoryStorage();
  const c = client(broker, { storage });
  const sub = pull(c, 't', { from: 'earliest', consumerId: 'u' });
  const seen: ConsumerBatch<unknown>[] = [];
  for await (const batch of sub.batches()) {
    seen.push(batch);
    await sub.unsubscribe(); // must not wait for this loop body to end
  }
  assert.equal(seen.length, 1);
  assert.equal((await storage.offsets.getOffsets('u', 't')).get(0)?.offset ?? 0, 0);
  const withHandler = c.subscribe('t', () => {}, { from: 'earliest' });
  await assert.rejects(withHandler.batches().next(), { errorName: 'INVALID_REQUEST' } as object);
  const twice = pull(c, 't', { from: 'earliest' });
  const first = twice.batches();
  void first.next();
  await assert.rejects(twice.batches().next(), { errorName: 'INVALID_REQUEST' } as object);
  await first.return(undefined);
  await c.close();
});

test('onBatch: the records of one frame per call, offsets stored per batch after it resolves', async () => {
  const broker = new FakeBroker(2);
  await produce(broker, 't', 1000);
  const storage = memoryStorage();
  const c = client(broker, { storage, ...smallFrames });
  const byPartition = new Map<number, number[]>();
  let calls = 0;
  const sub = new Subscription<{ n: number }>(c.internals().deps, 't', null, {
    from: 'earliest', consumerId: 'b',
    onBatch: async (records, { tx }) => {
      calls++;
      assert.equal(tx, undefined);
      const p = records[0].partition;
      assert.ok(records.every((r) => r.partition === p));
      const list = byPartition.get(p) ?? [];
      for (const r of records) list.push(r.offset);
      byPartition.set(p, list);
      await new Promise((r) => setTimeout(r, 1));
    },
  });
  await until(() => [...byPartition.values()].reduce((s, l) => s + l.length, 0) === 1000, '1000 records');
  await sub.unsubscribe();
  const stored = await storage.offsets.getOffsets('b', 't');
  for (const [p, list] of byPartition) {
    assert.deepEqual(list, Array.from({ length: list.length }, (_, i) => i), `partition ${p}`);
    assert.equal(stored.get(p)!.offset, list.length);
  }
  assert.ok(calls > 2 && calls < 1000, `${calls} calls for 1000 records`);
  await c.close();
});

const oddIsInvalid = { parse: (v: unknown) => { if ((v as { n: number }).n % 2 === 1) throw new Error('odd'); return v as { n: number }; } };

test('lazy values: a record whose value is never read is never validated; one read by the handler takes the policy', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 10);
  const c = client(broker);
  // 'throw' would stop the subscription, but nobody reads a value: offsets only.
  const offsets: number[] = [];
  const blind = c.subscribe({ name: 't', schema: oddIsInvalid, onInvalid: 'throw' as const }, (r) => { offsets.push(r.offset); }, { from: 'earliest' });
  await until(() => offsets.length === 10, 'all offsets');
  await blind.unsubscribe();
  // 'error': the escaped read error is emitted and the next record comes.
  const values: number[] = [];
  const errors: unknown[] = [];
  const reading = c.subscribe({ name: 't', schema: oddIsInvalid, onInvalid: 'error' as const }, (r) => { values.push(r.value.n); }, { from: 'earliest' });
  reading.on('error', (e) => errors.push(e));
  await until(() => values.length === 5 && errors.length === 5, 'even values and 5 errors');
  assert.deepEqual(values, [0, 2, 4, 6, 8]);
  assert.ok(errors.every((e) => (e as { errorName?: string }).errorName === 'SCHEMA_VALIDATION_FAILED'));
  assert.equal(reading.position(0), 10, 'invalid records are passed, not retried');
  await reading.unsubscribe();
  // 'throw' with an async handler that reads: the subscription stops at the first invalid record.
  const stopped = c.subscribe({ name: 't', schema: oddIsInvalid, onInvalid: 'throw' as const }, async (r) => { await Promise.resolve(); void r.value; }, { from: 'earliest' });
  stopped.on('error', () => {});
  await assert.rejects(stopped.closed, { errorName: 'SCHEMA_VALIDATION_FAILED' } as object);
  assert.equal(stopped.position(0), 1);
  // An error of the handler's own (not the record's) still fails the subscription whatever the policy.
  const own = c.subscribe({ name: 't', schema: oddIsInvalid, onInvalid: 'skip' as const }, () => { throw new Error('mine'); }, { from: 'earliest' });
  own.on('error', () => {});
  await assert.rejects(own.closed);
  await c.close();
});

test('batch handlers of a typed topic get only valid records; invalid ones take the policy before the call', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 20);
  const c = client(broker);
  const got: number[] = [];
  let skipped = 0;
  const sub = c.subscribeBatches({ name: 't', schema: oddIsInvalid, onInvalid: 'error' as const }, (records) => { for (const r of records) got.push(r.value.n); }, { from: 'earliest' });
  sub.on('error', () => skipped++);
  await until(() => got.length === 10 && skipped === 10, 'valid records');
  assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => i * 2));
  await until(() => sub.position(0) === 20, 'offset past the invalid tail');
  await c.close();
});

test('records decode key, value and headers when read, once; plainRecord makes a copy that survives structured clone', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 3);
  const c = client(broker);
  const seen: ConsumerRecord<{ n: number }>[] = [];
  c.subscribe<{ n: number }>('t', (r) => { seen.push(r); }, { from: 'earliest' });
  await until(() => seen.length === 3, 'records');
  const r = seen[2];
  assert.equal(r.value, r.value, 'cached: the same object each read');
  assert.deepEqual(r.value, { n: 2, pad: PAD });
  assert.equal(r.key, 'k2');
  assert.deepEqual(r.headers, { h: 'v2' });
  assert.deepEqual(JSON.parse(JSON.stringify(r)), { topic: 't', partition: 0, offset: 2, timestampMs: r.timestampMs, key: 'k2', value: { n: 2, pad: PAD }, headers: { h: 'v2' } });
  // NB: structured clone copies own data properties only: the accessors are lost without plainRecord.
  assert.equal((structuredClone(r) as { value?: unknown }).value, undefined);
  assert.deepEqual(structuredClone(plainRecord(seen[1])), { topic: 't', partition: 0, offset: 1, timestampMs: seen[1].timestampMs, key: 'k1', value: { n: 1, pad: PAD }, headers: { h: 'v1' } });
  r.value = { n: 99 };
  assert.deepEqual(r.value, { n: 99 }, 'a handler may replace the value');
  await c.close();
});
