/**
 * The `OffsetStore` contract (offset-store.ts), run on every implementation:
 * the file store and the partition store over a real log
 * (offset-store.test.ts). Each case opens a fresh store through `open`;
 * `reopen` closes it and opens it again over the same durable state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OffsetStore } from './offset-store.ts';

export interface OpenedStore {
  store: OffsetStore;
  /** Closes the store (and what it stands on) and opens it again over the same durable state. */
  reopen(): Promise<OffsetStore>;
  /** Closes whatever is open and removes the files. */
  cleanup(): Promise<void>;
}

const o = (topic: string, partition: number, offset: number, metadata = '') => ({ topic, partition, offset, metadata });
const sorted = <T extends { topic: string; partition: number }>(xs: T[]): T[] => [...xs].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));

export function offsetStoreContract(name: string, open: () => Promise<OpenedStore>): void {
  const withStore = (title: string, body: (s: OpenedStore) => Promise<void>) => test(`${name}: ${title}`, async () => {
    const opened = await open();
    try { await body(opened); } finally { await opened.cleanup(); }
  });

  withStore('a commit is visible once resolved, a later commit of the same partition wins, fetch filters by topic', async ({ store }) => {
    assert.deepEqual(store.fetch('g'), []);
    await store.commit('g', [o('a', 0, 5), o('b', 1, 7, 'm')]);
    await store.commit('g', [o('a', 0, 6)]);
    await store.commit('h', [o('a', 0, 1)]);
    assert.deepEqual(sorted(store.fetch('g')), [o('a', 0, 6), o('b', 1, 7, 'm')]);
    assert.deepEqual(store.fetch('g', ['b']), [o('b', 1, 7, 'm')]);
    assert.deepEqual(sorted(store.fetch('g', [])), [o('a', 0, 6), o('b', 1, 7, 'm')], 'an empty topic list means all');
    assert.deepEqual(store.groups().sort(), ['g', 'h']);
  });

  withStore('commits survive a reopen exactly as they were fetched', async (s) => {
    await Promise.all([s.store.commit('g', [o('a', 0, 5)]), s.store.commit('g', [o('b', 1, 7, 'x')]), s.store.commit('h', [o('a', 2, 1)])]);
    await s.store.commit('g', [o('a', 0, 9)]);
    const before = { g: sorted(s.store.fetch('g')), h: s.store.fetch('h') };
    const reopened = await s.reopen();
    assert.deepEqual({ g: sorted(reopened.fetch('g')), h: reopened.fetch('h') }, before);
    assert.deepEqual(before.g, [o('a', 0, 9), o('b', 1, 7, 'x')]);
  });

  withStore('concurrent commits of one partition: the state after a reopen is the state before it', async (s) => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => s.store.commit('g', [o('t', i % 3, i)])));
    const before = sorted(s.store.fetch('g'));
    assert.equal(before.length, 3);
    const reopened = await s.reopen();
    assert.deepEqual(sorted(reopened.fetch('g')), before);
  });

  withStore('deleteTopic removes every group\'s offsets of the topic, durably; later commits of a re-created topic count', async (s) => {
    await s.store.commit('g', [o('a', 0, 5), o('b', 0, 2)]);
    await s.store.commit('h', [o('a', 1, 3)]);
    await s.store.deleteTopic('a');
    assert.deepEqual(s.store.fetch('g'), [o('b', 0, 2)]);
    assert.deepEqual(s.store.fetch('h'), []);
    assert.deepEqual(s.store.groups(), ['g']);
    await s.store.commit('h', [o('a', 0, 1)]);
    const reopened = await s.reopen();
    assert.deepEqual(reopened.fetch('g'), [o('b', 0, 2)]);
    assert.deepEqual(reopened.fetch('h'), [o('a', 0, 1)]);
  });

  withStore('writes after close reject and change nothing', async ({ store }) => {
    await store.commit('g', [o('a', 0, 1)]);
    await store.close();
    await assert.rejects(store.commit('g', [o('a', 0, 2)]));
    await assert.rejects(store.deleteTopic('a'));
    assert.deepEqual(store.fetch('g'), [o('a', 0, 1)]);
  });
}
