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
import { fileStorage } from './file-storage.ts';
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
