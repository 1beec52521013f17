import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStreamStore } from './file-stream-store.ts';
import { streamStoreContract } from './stream-store.contract.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

streamStoreContract('FileStreamStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-streams-'));
  dirs.push(dir);
  return { store: await FileStreamStore.open(dir), reopen: () => FileStreamStore.open(dir) };
});
