import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsLogDirectory } from './fs-segment-file.ts';
import { runLogDirectoryContract } from './segment-file.contract.ts';

runLogDirectoryContract('fs', async () => {
  const path = await mkdtemp(join(tmpdir(), 'runnel-fs-'));
  const dir = await FsLogDirectory.open(join(path, 'p0'));
  return { dir, reopen: () => FsLogDirectory.open(join(path, 'p0')), cleanup: () => rm(path, { recursive: true, force: true }) };
});
