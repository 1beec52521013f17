import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsLogDirectory } from './fs-segment-file.ts';
import { InlineIoGovernor, type InlineIo } from './inline-io.ts';
import { runLogDirectoryContract } from './segment-file.contract.ts';

const governors = (maxMs: number): InlineIo => ({ write: new InlineIoGovernor(maxMs), sync: new InlineIoGovernor(maxMs) });

// The same contract with writes and fdatasyncs on the thread pool and inline on the event loop.
for (const [label, maxMs] of [['fs, thread pool', 0], ['fs, inline', 10]] as const) {
  runLogDirectoryContract(label, async () => {
    const path = await mkdtemp(join(tmpdir(), 'runnel-fs-'));
    const io = governors(maxMs);
    const dir = await FsLogDirectory.open(join(path, 'p0'), io);
    return { dir, reopen: () => FsLogDirectory.open(join(path, 'p0'), io), cleanup: () => rm(path, { recursive: true, force: true }) };
  });
}

test('fs: appends and fdatasyncs run inline while the governor says so, on the thread pool otherwise, with the same bytes', async () => {
  const path = await mkdtemp(join(tmpdir(), 'runnel-fs-'));
  try {
    for (const maxMs of [0, 10]) {
      const io = governors(maxMs);
      const dir = await FsLogDirectory.open(join(path, `m${maxMs}`), io);
      const file = await dir.openFile('00.log', { create: true });
      await file.append([new Uint8Array([1, 2]), new Uint8Array([3])]);
      await file.datasync();
      await file.append([new Uint8Array([4])]);
      await file.datasync();
      assert.deepEqual([...await readFile(join(path, `m${maxMs}`, '00.log'))], [1, 2, 3, 4]);
      assert.equal(file.size, 4);
      const inline = maxMs > 0 ? 2 : 0;
      assert.deepEqual([io.write.inlineCalls, io.write.pooledCalls, io.sync.inlineCalls, io.sync.pooledCalls], [inline, 2 - inline, inline, 2 - inline]);
      await file.close();
    }
  } finally {
    await rm(path, { recursive: true, force: true });
  }
});
