/**
 * Shared contract suite for every Storage (memory, IndexedDB, file).
 * `open()` may be called several times and must see what earlier opens wrote
 * (a "reload").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FrozenBatch, OutboxRecord, Storage } from './storage.ts';

export interface StorageFixture { open(): Promise<Storage>; cleanup(): Promise<void> }

const record = (id: number, topic = 't'): OutboxRecord => ({
  id, topic, partition: id % 2 === 0 ? -1 : 1, key: id % 3 === 0 ? null : new Uint8Array([id]),
  value: new TextEncoder().encode(JSON.stringify({ id })), headers: [{ key: 'h', value: new Uint8Array([1, 2]) }], timestampMs: 1_700_000_000_000 + id,
});

export function storageContract(name: string, fixture: () => Promise<StorageFixture>): void {
  test(`${name}: offsets are stored per consumer and topic and survive reopen`, async () => {
    const f = await fixture();
    try {
      const s = await f.open();
      assert.equal((await s.offsets.getOffsets('c1', 't')).size, 0);
      await s.offsets.putOffsets('c1', 't', new Map([[0, { offset: 5, topicId: 'A' }], [2, { offset: 7, topicId: 'A' }]]));
      await s.offsets.putOffsets('c1', 't', new Map([[0, { offset: 9, topicId: 'A' }]]));
      await s.offsets.putOffsets('c2', 't', new Map([[0, { offset: 1, topicId: 'A' }]]));
      await s.offsets.putOffsets('c1', 't2', new Map([[0, { offset: 3, topicId: 'B' }]]));
      await s.close();
      const r = await f.open();
      assert.deepEqual([...(await r.offsets.getOffsets('c1', 't'))].sort(), [[0, { offset: 9, topicId: 'A' }], [2, { offset: 7, topicId: 'A' }]]);
      assert.deepEqual([...(await r.offsets.getOffsets('c2', 't'))], [[0, { offset: 1, topicId: 'A' }]]);
      await r.offsets.deleteOffsets('c1', 't');
      assert.equal((await r.offsets.getOffsets('c1', 't')).size, 0);
      assert.equal((await r.offsets.getOffsets('c1', 't2')).size, 1);
      await r.close();
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: outbox records freeze into batches atomically and replay in order`, async () => {
    const f = await fixture();
    try {
      const s = await f.open();
      assert.deepEqual(await s.outbox.load(), { producer: null, records: [], batches: [] });
      await s.outbox.addRecords([record(3), record(1), record(2)]);
      await s.outbox.addRecords([record(4)]);
      const batch: FrozenBatch = { id: 1, topic: 't', partition: 1, baseSequence: 0, recordIds: [1, 3], bytes: new Uint8Array([9, 8, 7]) };
      await s.outbox.freeze([batch], { producerId: 42, producerEpoch: 0, sequences: { 't/1': 2 } });
      await s.outbox.deleteRecords([4]);
      await s.close();
      const r = await f.open();
      const loaded = await r.outbox.load();
      assert.deepEqual(loaded.records, [record(2)]);
      assert.deepEqual(loaded.batches, [batch]);
      assert.ok(loaded.batches[0].bytes instanceof Uint8Array);
      assert.deepEqual(loaded.producer, { producerId: 42, producerEpoch: 0, sequences: { 't/1': 2 } });
      await r.outbox.freeze([{ ...batch, id: 2, baseSequence: 2, recordIds: [2] }], { producerId: 42, producerEpoch: 0, sequences: { 't/1': 3 } });
      await r.outbox.deleteBatches([1]);
      await r.outbox.saveProducer({ producerId: 42, producerEpoch: 1, sequences: {} });
      const after = await r.outbox.load();
      assert.deepEqual(after.records, []);
      assert.deepEqual(after.batches.map((b) => b.id), [2]);
      assert.equal(after.producer?.producerEpoch, 1);
      await r.close();
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: outbox records added in and out of id order, frozen and deleted in any order, load as a keyed store of them would`, async () => {
    const f = await fixture();
    try {
      const s = await f.open();
      const model = new Map<number, OutboxRecord>();
      let seed = 12345;
      const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
      const gaps: number[] = []; // ids skipped so far, added later (out of order)
      let next = 1, batchId = 1;
      for (let round = 0; round < 30; round++) {
        const ids: number[] = [];
        for (let i = 1 + rand(60); i > 0; i--) {
          if (gaps.length > 0 && rand(6) === 0) ids.push(gaps.splice(rand(gaps.length), 1)[0]);
          else {
            if (rand(8) === 0) gaps.push(next++);
            ids.push(next++);
          }
        }
        await s.outbox.addRecords(ids.map((id) => record(id)));
        for (const id of ids) model.set(id, record(id));
        // The oldest run (as a producer freezes), or a random pick (withdrawn records, failed drains).
        const held = [...model.keys()].sort((a, b) => a - b);
        const picked = rand(2) === 0 ? held.slice(0, rand(held.length + 1)) : held.filter(() => rand(3) === 0);
        if (rand(2) === 0) await s.outbox.deleteRecords(picked);
        else await s.outbox.freeze([{ id: batchId++, topic: 't', partition: 0, baseSequence: 0, recordIds: picked, bytes: new Uint8Array([round]) }], { producerId: 1, producerEpoch: 0, sequences: {} });
        for (const id of picked) model.delete(id);
        const loaded = await s.outbox.load();
        assert.deepEqual(loaded.records, [...model.keys()].sort((a, b) => a - b).map((id) => record(id)), `round ${round}`);
      }
      await s.close();
      const r = await f.open();
      assert.deepEqual((await r.outbox.load()).records.map((x) => x.id), [...model.keys()].sort((a, b) => a - b), 'after reopen');
      await r.close();
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: a state snapshot is stored with its offsets as one value, copied when put, and survives reopen`, async () => {
    const f = await fixture();
    try {
      const s = await f.open();
      if (!s.states) return void (await s.close()); // memory storage has no state store
      assert.equal(await s.states.getState('dash', 't'), null);
      const state = { counts: { a: 1 }, list: [1, 2] };
      await s.states.putState('dash', 't', { state, offsets: new Map([[0, { offset: 3, topicId: 'A' }], [1, { offset: 0, topicId: 'A' }]]), recordCount: 3 });
      await s.states.putState('other', 't', { state: 1, offsets: new Map(), recordCount: 0 });
      await s.states.putState('dash', 't', { state: { counts: { a: 2 }, list: [1, 2, 3] }, offsets: new Map([[0, { offset: 5, topicId: 'A' }]]), recordCount: 5 });
      const before = await s.states.getState('dash', 't');
      assert.deepEqual(before?.state, { counts: { a: 2 }, list: [1, 2, 3] });
      await s.close();
      const r = await f.open();
      const got = await r.states!.getState('dash', 't');
      assert.deepEqual(got, { state: { counts: { a: 2 }, list: [1, 2, 3] }, offsets: new Map([[0, { offset: 5, topicId: 'A' }]]), recordCount: 5 });
      assert.deepEqual((await r.states!.getState('other', 't'))?.state, 1);
      await r.states!.deleteState('dash', 't');
      assert.equal(await r.states!.getState('dash', 't'), null);
      await r.close();
    } finally {
      await f.cleanup();
    }
  });

  test(`${name}: putState copies the state at the call (a change made before the write lands is not stored)`, async () => {
    const f = await fixture();
    try {
      const s = await f.open();
      if (!s.states) return void (await s.close());
      const state = { n: 1 };
      const writing = s.states.putState('x', 't', { state, offsets: new Map([[0, { offset: 1, topicId: 'A' }]]), recordCount: 1 });
      state.n = 2; // the fold moved on while the write is in flight
      await writing;
      await s.close();
      const r = await f.open();
      assert.deepEqual((await r.states!.getState('x', 't'))?.state, { n: 1 });
      await r.close();
    } finally {
      await f.cleanup();
    }
  });
}
