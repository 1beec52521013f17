import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileMetadataStore } from './file-metadata-store.ts';
import { metadataStoreContract } from './metadata-store.contract.ts';
import { MemoryMetadataStore } from './memory-metadata-store.ts';

metadataStoreContract('MemoryMetadataStore', async () => {
  const store = new MemoryMetadataStore();
  return { store, reopen: async () => store };
});

metadataStoreContract('FileMetadataStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-meta-'));
  return { store: await FileMetadataStore.open(dir), reopen: () => FileMetadataStore.open(dir) };
});
