import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type ClientOptions } from './client.ts';
import { FakeBroker } from './fake-broker.ts';
import { fileStorage } from './file-storage.ts';
import { indexedDbStorage } from './indexeddb-storage.ts';
import { indexedDbConsumerStorage } from './indexeddb-offsets.ts';
import { createConsumer } from './consumer-client.ts';
import { materialize, type RebuildEvent } from './materialize.ts';
import { memoryStorage } from './memory-storage.ts';
import { seededRandom } from './reconnect-policy.ts';
import type { ConsumerRecord } from './consumer-record.ts';
import type { StateStore } from './storage.ts';

const fast = { reconnect: { initialDelayMs: 2, maxDelayMs: 10 }, random: seededRandom(13), beacon: false } as const;
const client = (broker: FakeBroker, extra: Partial<ClientOptions> = {}) =>
  createClient({ urls: 'ws://fake/v1/ws', transport: broker.transport, storage: memoryStorage(), ...fast, ...extra });
const until = async (cond: () => boolean, what: string, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};
async function produce(broker: FakeBroker, topic: string, n: number, from = 0): Promise<void> {
  const c = client(broker);
  await Promise.all(Array.from({ length: n }, (_, i) => c.producer.send(topic, { n: from + i }, { key: `k${(from + i) % 7}` })));
  await c.close();
}

/** The state of the tests: every folded record's `partition:offset` in fold order, and the sum of values. */
interface Fold { seen: string[]; sum: number }
const initial = (): Fold => ({ seen: [], sum: 0 });
const reducer = (s: Fold, r: ConsumerRecord<{ n: number }>): Fold => { s.seen.push(`${r.partition}:${r.offset}`); s.sum += r.value.n; return s; };
/** Asserts the fold holds each record of the log exactly once (offsets from `starts`, default 0). */
function assertFoldOfLog(state: Fold, broker: FakeBroker, topic: string, starts = new Map<number, number>()): void {
  const expected: string[] = [];
  broker.topic(topic).partitions.forEach((p, i) => {
    for (let o = starts.get(i) ?? 0; o < p.logEndOffset; o++) expected.push(`${i}:${o}`);
  });
  assert.equal(new Set(state.seen).size, state.seen.length, 'no record folded twice');
  assert.deepEqual([...state.seen].sort(), expected.sort(), 'every record folded');
}

/**
 * A store that loses power at a moment the test picks: after `crash()` no
 * write lands (a write in flight when it happens is lost too), as if the
 * process died there.
 */
function crashable(store: StateStore): StateStore & { crash(): void } {
  let crashed = false;
  return {
    crash() { crashed = true; },
    getState: (n, t) => store.getState(n, t),
    putState: (n, t, s) => (crashed ? new Promise<void>(() => {}) : store.putState(n, t, s)),
    deleteState: (n, t) => store.deleteState(n, t),
  };
}

test('fold exactly once across crashes between records and mid-batch, while records keep arriving (IndexedDB snapshots every 37 records)', async () => {
  const broker = new FakeBroker(3);
  await produce(broker, 't', 400);
  const storage = await indexedDbStorage({ name: 'materialize-crash' });
  const random = seededRandom(7);
  let produced = 400;
  for (let life = 0; life < 6; life++) {
    const store = crashable(storage.states!);
    const c = client(broker);
    // Crash after a random number of records in this life: inside the reducer, so between two records of one batch.
    const crashAfter = 1 + Math.floor(random() * 150);
    let folded = 0;
    const view = materialize(c, 't', (s: Fold, r: ConsumerRecord<{ n: number }>) => {
      if (++folded === crashAfter) store.crash();
      return reducer(s, r);
    }, { initial, store, snapshotEvery: { records: 37 } });
    await view.ready;
    const more = produce(broker, 't', 100, produced);
    produced += 100;
    await until(() => folded >= crashAfter, `life ${life}: crash point`);
    await more;
    await c.close(); // the last snapshot of this life is lost with the crash
  }
  const c = client(broker);
  const view = materialize(c, 't', reducer, { initial, store: storage.states!, snapshotEvery: { records: 37 } });
  await view.ready;
  await until(() => view.state.seen.length >= produced, 'the whole log folded');
  await new Promise((r) => setTimeout(r, 30));
  assertFoldOfLog(view.state, broker, 't');
  assert.equal(view.state.sum, (produced * (produced - 1)) / 2);
  assert.equal(view.recordCount, produced);
  await view.close();
  await c.close();
  storage.close();
});

test('between snapshots the stored offsets never pass the stored state; close stores the last one; a reload resumes without refolding', async () => {
  const broker = new FakeBroker(2);
  await produce(broker, 't', 120);
  const dir = await mkdtemp(join(tmpdir(), 'runnel-materialize-'));
  try {
    const storage = await fileStorage(dir);
    const c = client(broker);
    const view = materialize(c, 't', reducer, { initial, store: storage.states!, snapshotEvery: { records: 1000, ms: 20 } });
    const snapshots: number[] = [];
    view.on('snapshot', ({ recordCount }) => snapshots.push(recordCount));
    await until(() => view.recordCount === 120, '120 folded');
    await until(() => snapshots.includes(120), 'the ms snapshot');
    const stored = (await storage.states!.getState('t', 't'))!;
    const covered = [...stored.offsets.values()].reduce((n, o) => n + o.offset, 0);
    assert.equal(covered, stored.recordCount, 'offsets cover exactly the records in the state');
    assert.equal((stored.state as Fold).seen.length, 120);
    await produce(broker, 't', 30, 120);
    await until(() => view.recordCount === 150, '150 folded');
    await view.close();
    await c.close();
    await storage.close();
    const again = await fileStorage(dir);
    const c2 = client(broker);
    const changes: number[] = [];
    const view2 = materialize(c2, 't', reducer, { initial, store: again.states!, snapshotEvery: { records: 1000, ms: 20 } });
    view2.on('change', ({ records }) => changes.push(records.length));
    await view2.ready;
    assert.equal(view2.recordCount, 150, 'close stored the last records');
    await produce(broker, 't', 5, 150);
    await until(() => view2.recordCount === 155, '5 more');
    assert.equal(changes.reduce((a, b) => a + b, 0), 5, 'nothing before the snapshot is folded again');
    assertFoldOfLog(view2.state, broker, 't');
    await view2.close();
    await c2.close();
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a consumer-only client on indexedDbConsumerStorage (docs/client.md): its states hold the fold, a reopened one resumes from the snapshot', async () => {
  const broker = new FakeBroker(2);
  await produce(broker, 't', 60);
  const open = async () => {
    const storage = await indexedDbConsumerStorage({ name: 'materialize-consumer-half' });
    const consumer = createConsumer({ urls: 'ws://fake/v1/ws', transport: broker.transport, storage, ...fast });
    return { storage, consumer, view: materialize(consumer, 't', reducer, { initial, store: storage.states!, snapshotEvery: { records: 1000, ms: 20 } }) };
  };
  const first = await open();
  await until(() => first.view.recordCount === 60, '60 folded');
  await first.view.close();
  await first.consumer.close();
  const second = await open();
  await second.view.ready;
  assert.equal(second.view.recordCount, 60, 'resumed from the snapshot the consumer half stored');
  await produce(broker, 't', 7, 60);
  await until(() => second.view.recordCount === 67, '7 more');
  assertFoldOfLog(second.view.state, broker, 't');
  await second.view.close();
  await second.consumer.close();
  indexedDB.deleteDatabase('materialize-consumer-half');
});

test('notrecovered: retention ran past the stored offset → rebuilt from earliest with the reason, the state is the fold of what is left', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 60);
  const storage = await indexedDbStorage({ name: 'materialize-retention' });
  const c = client(broker);
  const view = materialize(c, 't', reducer, { initial, store: storage.states! });
  await until(() => view.recordCount === 60, '60 folded');
  await view.close();
  await c.close();
  for (let i = 60; i < 200; i += 20) await produce(broker, 't', 20, i); // batches of 20: retention drops whole batches
  broker.deleteRecordsBefore('t', 0, 100); // the stored offset 60 is gone
  const start = broker.topic('t').partitions[0].logStartOffset;
  assert.ok(start > 60);
  const c2 = client(broker);
  const view2 = materialize(c2, 't', reducer, { initial, store: storage.states! });
  const rebuilds: RebuildEvent[] = [];
  view2.on('rebuild', (e) => rebuilds.push(e));
  await until(() => view2.recordCount === 200 - start, 'the rest folded');
  assert.equal(rebuilds.length, 1);
  assert.equal(rebuilds[0].reason, 'OFFSET_OUT_OF_RANGE');
  assert.deepEqual(rebuilds[0].notRecovered?.lost, { from: 60, to: start });
  assertFoldOfLog(view2.state, broker, 't', new Map([[0, start]]));
  await view2.flush();
  assert.equal((await storage.states!.getState('t', 't'))!.offsets.get(0)!.offset, 200);
  await view2.close();
  await c2.close();
  storage.close();
});

test('from a time: a fresh fold starts at the first batch at or after timestampMs, a reload resumes it, rebuild() folds from earliest', async () => {
  const broker = new FakeBroker(2);
  await produce(broker, 't', 50);
  await new Promise((r) => setTimeout(r, 15));
  const since = Date.now();
  await new Promise((r) => setTimeout(r, 5));
  await produce(broker, 't', 30, 50);
  const ends = broker.topic('t').partitions.map((p) => p.logEndOffset);
  const starts = new Map(broker.topic('t').partitions.map((p, i) => [i, p.batches.find((b) => b.maxTimestamp >= since)?.baseOffset ?? ends[i]]));
  const storage = await indexedDbStorage({ name: 'materialize-time' });
  const c = client(broker);
  const view = materialize(c, 't', reducer, { initial, store: storage.states!, from: { timestampMs: since } });
  await until(() => view.recordCount === 30, 'the 30 after the time');
  assert.ok(view.state.seen.every((k) => Number(k.split(':')[1]) >= starts.get(Number(k.split(':')[0]))!));
  assertFoldOfLog(view.state, broker, 't', starts);
  await view.close();
  await c.close();
  const c2 = client(broker);
  const view2 = materialize(c2, 't', reducer, { initial, store: storage.states!, from: { timestampMs: since } });
  await view2.ready;
  assert.equal(view2.recordCount, 30, 'resumed, not refolded from the time');
  const rebuilt = new Promise<RebuildEvent>((r) => view2.on('rebuild', r));
  await view2.rebuild('earliest');
  assert.equal((await rebuilt).reason, 'REQUESTED');
  await until(() => view2.recordCount === 80, 'the whole log');
  assertFoldOfLog(view2.state, broker, 't');
  await view2.close();
  await c2.close();
  storage.close();
});

test('a reducer that throws stops the fold with its error; the snapshot holds the records before it and a fixed reducer goes on from there', async () => {
  const broker = new FakeBroker(1);
  await produce(broker, 't', 20);
  const storage = await indexedDbStorage({ name: 'materialize-throw' });
  const c = client(broker);
  const view = materialize(c, 't', (s: Fold, r: ConsumerRecord<{ n: number }>) => { if (r.offset === 12) throw new Error('bad record'); return reducer(s, r); }, { initial, store: storage.states!, snapshotEvery: { records: 5 } });
  await assert.rejects(view.closed, (e: { cause?: Error }) => e.cause?.message === 'bad record');
  const stored = (await storage.states!.getState('t', 't'))!;
  assert.equal(stored.offsets.get(0)!.offset, 12);
  assert.equal((stored.state as Fold).seen.length, 12);
  await c.close();
  const c2 = client(broker);
  const view2 = materialize(c2, 't', reducer, { initial, store: storage.states! });
  await until(() => view2.recordCount === 20, 'the rest');
  assertFoldOfLog(view2.state, broker, 't');
  await view2.close();
  await c2.close();
  storage.close();
});
