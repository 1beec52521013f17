import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLogDirectory } from './memory-segment-file.ts';
import { runLogDirectoryContract } from './segment-file.contract.ts';

runLogDirectoryContract('memory', async () => {
  const dir = new MemoryLogDirectory();
  return { dir, reopen: async () => dir, cleanup: async () => {} };
});

test('memory: crash keeps synced bytes and a torn prefix of the rest', async () => {
  const dir = new MemoryLogDirectory();
  const file = await dir.openFile('x.log', { create: true });
  await file.append([new Uint8Array(10).fill(1)]);
  await file.datasync();
  await file.append([new Uint8Array(10).fill(2)]);
  assert.equal((await dir.crash().readWhole('x.log'))!.length, 10);
  assert.equal((await dir.crash({ keepUnsyncedFraction: 0.5 }).readWhole('x.log'))!.length, 15);
  const torn = await dir.crash({ garbage: { file: 'x.log', bytes: Uint8Array.of(0xff, 0xfe) } }).readWhole('x.log');
  assert.deepEqual([...torn!.subarray(9)], [1, 0xff, 0xfe]);
});

test('memory: armed faults fire once', async () => {
  const dir = new MemoryLogDirectory();
  const file = await dir.openFile('y.log', { create: true });
  dir.faults.failNextAppend = new Error('EIO');
  await assert.rejects(file.append([Uint8Array.of(1)]), /EIO/);
  await file.append([Uint8Array.of(1)]);
  dir.faults.failNextDatasync = new Error('EIO sync');
  await assert.rejects(file.datasync(), /EIO sync/);
  await file.datasync();
  assert.equal(file.size, 1);
});
