import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryStorage } from './memory-storage.ts';
import { indexedDbStorage } from './indexeddb-storage.ts';
import { indexedDbConsumerStorage } from './indexeddb-offsets.ts';
import { indexedDbProducerStorage } from './indexeddb-outbox.ts';
import type { Storage } from './storage.ts';
import { fileStorage } from './file-storage.ts';
import { openDB } from 'idb';
import { storageContract } from './storage.contract.ts';

storageContract('memory', async () => {
  const storage = memoryStorage();
  return { open: async () => storage, cleanup: async () => {} };
});

let dbCount = 0;
storageContract('IndexedDB (fake-indexeddb)', async () => {
  const name = `runnel-test-${++dbCount}`;
  return { open: () => indexedDbStorage({ name }), cleanup: async () => { indexedDB.deleteDatabase(name); } };
});

// The two halves a one-half app uses, opened on one database: together they are the whole storage.
storageContract('IndexedDB halves (indexedDbConsumerStorage + indexedDbProducerStorage)', async () => {
  const name = `runnel-test-${++dbCount}`;
  const open = async (): Promise<Storage> => {
    const [consumer, producer] = await Promise.all([indexedDbConsumerStorage({ name }), indexedDbProducerStorage({ name })]);
    return { offsets: consumer.offsets, states: consumer.states, outbox: producer.outbox, orphans: producer.orphans, close: () => { consumer.close(); producer.close(); } };
  };
  return { open, cleanup: async () => { indexedDB.deleteDatabase(name); } };
});

test('IndexedDB: a half app and a full client share one database (offsets and outbox written by the halves are what indexedDbStorage reads)', async () => {
  const name = 'runnel-halves-shared';
  const consumer = await indexedDbConsumerStorage({ name });
  await consumer.offsets.putOffsets('c', 't', new Map([[0, { offset: 4, topicId: 'A' }]]));
  consumer.close();
  const producer = await indexedDbProducerStorage({ name });
  await producer.outbox.saveProducer({ producerId: 9, producerEpoch: 1, sequences: { 't/0': 3 } });
  producer.close();
  const full = await indexedDbStorage({ name });
  assert.deepEqual([...(await full.offsets.getOffsets('c', 't'))], [[0, { offset: 4, topicId: 'A' }]]);
  assert.equal((await full.outbox.load()).producer?.producerId, 9);
  full.close();
  indexedDB.deleteDatabase(name);
});

storageContract('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-storage-'));
  return { open: () => fileStorage(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

test('file: one owner per directory — a second open is refused while the first is open; a dead owner\'s lock is taken over', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-storage-lock-'));
  try {
    const first = await fileStorage(dir);
    await assert.rejects(fileStorage(dir), (e: Error & { errorName?: string }) => e.errorName === 'INVALID_REQUEST' && e.message.includes(`process ${process.pid}`));
    await first.close();
    const second = await fileStorage(dir);
    await second.close();
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
    await writeFile(join(dir, 'runnel.lock'), String(deadPid));
    const third = await fileStorage(dir);
    await third.outbox.saveProducer({ producerId: 1, producerEpoch: 0, sequences: {} });
    await third.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('IndexedDB: a database of schema 1 (no states store) at the app\'s version 2 is upgraded: offsets, outbox and app stores kept, states added, upgrade sees app versions', async () => {
  const name = 'runnel-schema1';
  // Today's layout before the state store: the database version was the app's version.
  const old = await openDB(name, 2, {
    upgrade(db) {
      db.createObjectStore('offsets');
      db.createObjectStore('outboxRecords', { keyPath: 'id' });
      db.createObjectStore('outboxBatches', { keyPath: 'id' });
      db.createObjectStore('meta');
      db.createObjectStore('seen');
    },
  });
  await old.put('offsets', { partition: 0, offset: 7, topicId: 'A' }, ['c', 't', 0]);
  await old.put('seen', 'kept', 1);
  old.close();
  const seenVersions: number[] = [];
  const upgrade = (db: IDBDatabase, oldVersion: number): void => { seenVersions.push(oldVersion); if (!db.objectStoreNames.contains('seen')) db.createObjectStore('seen'); };
  const s = await indexedDbStorage({ name, version: 2, upgrade });
  assert.deepEqual(seenVersions, [2], 'the app sees its own version: nothing of its own to upgrade');
  assert.deepEqual([...(await s.offsets.getOffsets('c', 't'))], [[0, { offset: 7, topicId: 'A' }]]);
  await s.states!.putState('m', 't', { state: { n: 1 }, offsets: new Map([[0, { offset: 1, topicId: 'A' }]]), recordCount: 1 });
  s.close();
  const again = await indexedDbStorage({ name, version: 3, upgrade });
  assert.deepEqual(seenVersions, [2, 2], 'app version 2 → 3: the upgrade gets 2, not the database version');
  assert.equal((await again.states!.getState('m', 't'))?.recordCount, 1);
  again.close();
  const raw = await openDB(name);
  assert.equal(raw.version, 4, 'database version = app version + schema − 1');
  assert.equal(await raw.get('seen', 1), 'kept');
  raw.close();
  indexedDB.deleteDatabase(name);
});
