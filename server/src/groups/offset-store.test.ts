/**
 * OffsetStore: durable across reopen, torn tail truncated, topic tombstones,
 * compaction keeps the live entries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OffsetStore } from './offset-store.ts';

test('commits survive reopen; a torn last line is dropped; deleteTopic removes offsets', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-offsets-'));
  try {
    const store = await OffsetStore.open(dir);
    await Promise.all([
      store.commit('g', [{ topic: 'a', partition: 0, offset: 5, metadata: '' }]),
      store.commit('g', [{ topic: 'b', partition: 1, offset: 7, metadata: 'm' }]),
      store.commit('h', [{ topic: 'a', partition: 0, offset: 1, metadata: '' }]),
    ]);
    await store.commit('g', [{ topic: 'a', partition: 0, offset: 6, metadata: '' }]);
    await store.close();
    await appendFile(join(dir, 'groups', 'offsets.log'), '0badc0de {"g":"g","o":[{"topic":"a","partition":0,"offset":99'); // torn
    const reopened = await OffsetStore.open(dir);
    assert.deepEqual(reopened.fetch('g', ['a']), [{ topic: 'a', partition: 0, offset: 6, metadata: '' }]);
    assert.equal(reopened.fetch('g').length, 2);
    assert.ok(!(await readFile(join(dir, 'groups', 'offsets.log'), 'utf8')).includes('0badc0de'), 'torn tail truncated');
    await reopened.deleteTopic('a');
    assert.deepEqual(reopened.fetch('h'), []);
    assert.deepEqual(reopened.groups(), ['g']);
    await reopened.close();
    const third = await OffsetStore.open(dir);
    assert.deepEqual(third.fetch('g'), [{ topic: 'b', partition: 1, offset: 7, metadata: 'm' }]);
    await third.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('compaction rewrites the file and keeps every live offset', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-offsets-'));
  try {
    const store = await OffsetStore.open(dir);
    for (let i = 0; i < 10_050; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => store.commit('g', [{ topic: 't', partition: k % 3, offset: i + k, metadata: '' }])));
    }
    await store.close();
    const lines = (await readFile(join(dir, 'groups', 'offsets.log'), 'utf8')).trim().split('\n').length;
    assert.ok(lines < 1000, `compacted: ${lines} lines`);
    const reopened = await OffsetStore.open(dir);
    assert.deepEqual(reopened.fetch('g').map((o) => o.offset).sort((a, b) => a - b), [10_047, 10_048, 10_049]);
    await reopened.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
