/**
 * The one contract every `LogDirectory` implementation passes (STYLE.md #4):
 * run by fs-segment-file.test.ts and memory-segment-file.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogDirectory } from './segment-file.ts';

export interface DirectoryFixture {
  dir: LogDirectory;
  /** A fresh view of the same directory, as after a clean process restart. */
  reopen(): Promise<LogDirectory>;
  cleanup(): Promise<void>;
}

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

export function runLogDirectoryContract(label: string, makeFixture: () => Promise<DirectoryFixture>): void {
  async function withFixture(fn: (f: DirectoryFixture) => Promise<void>): Promise<void> {
    const f = await makeFixture();
    try {
      await fn(f);
    } finally {
      await f.cleanup();
    }
  }

  test(`${label}: append then read returns the same bytes, size grows`, () => withFixture(async ({ dir }) => {
    const file = await dir.openFile('a.log', { create: true });
    assert.equal(file.size, 0);
    await file.append([bytes(1, 2, 3), bytes(), bytes(4, 5)]);
    assert.equal(file.size, 5);
    assert.deepEqual([...await file.read(0, 5)], [1, 2, 3, 4, 5]);
    assert.deepEqual([...await file.read(3, 100)], [4, 5], 'short read at end of file');
    assert.equal((await file.read(9, 4)).length, 0, 'read past the end is empty');
    await file.close();
  }));

  test(`${label}: synced bytes survive reopen, size is restored`, () => withFixture(async (f) => {
    const file = await f.dir.openFile('b.log', { create: true });
    await file.append([bytes(9, 8, 7)]);
    await file.datasync();
    await file.close();
    const again = await (await f.reopen()).openFile('b.log', { create: false });
    assert.equal(again.size, 3);
    assert.deepEqual([...await again.read(0, 3)], [9, 8, 7]);
    await again.append([bytes(6)]);
    assert.deepEqual([...await again.read(0, 4)], [9, 8, 7, 6], 'append continues at the end');
    await again.close();
  }));

  test(`${label}: truncate cuts the file`, () => withFixture(async ({ dir }) => {
    const file = await dir.openFile('c.log', { create: true });
    await file.append([bytes(1, 2, 3, 4)]);
    await file.truncate(2);
    assert.equal(file.size, 2);
    assert.deepEqual([...await file.read(0, 10)], [1, 2]);
    await file.append([bytes(7)]);
    assert.deepEqual([...await file.read(0, 10)], [1, 2, 7]);
    await file.close();
  }));

  test(`${label}: opening a missing file without create fails with ENOENT`, () => withFixture(async ({ dir }) => {
    await assert.rejects(dir.openFile('missing.log', { create: false }), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
  }));

  test(`${label}: writeAtomic replaces, readWhole/list/remove/modifiedTimeMs see it`, () => withFixture(async ({ dir }) => {
    assert.equal(await dir.readWhole('cp'), null);
    assert.equal(await dir.modifiedTimeMs('cp'), null);
    await dir.writeAtomic('cp', bytes(1));
    await dir.writeAtomic('cp', bytes(2, 3));
    assert.deepEqual([...(await dir.readWhole('cp'))!], [2, 3]);
    assert.ok((await dir.list()).includes('cp'));
    assert.ok(!(await dir.list()).some((n) => n.endsWith('.tmp')), 'no temp file left behind');
    assert.equal(typeof await dir.modifiedTimeMs('cp'), 'number');
    await dir.remove('cp');
    await dir.remove('cp');
    assert.equal(await dir.readWhole('cp'), null);
  }));
}
