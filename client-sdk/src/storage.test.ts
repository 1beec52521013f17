import 'fake-indexeddb/auto';
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
