/** The `StreamStore` contract, run on every implementation (stream-store.test.ts, etcd-stream-store.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { withChanges, type StreamMeta, type StreamStore } from './stream-store.ts';

export interface StreamStoreFixture {
  store: StreamStore;
  /** The state as a fresh process (or, for a shared store, another broker) opens it. */
  reopen(): Promise<StreamStore>;
}

export const streamMeta = (path: string, patch: Partial<StreamMeta> = {}): StreamMeta => {
  const incarnation = randomBytes(6).toString('hex');
  return {
    path, generation: '0000000000000001', incarnation, topic: `ds.test.${incarnation}`, contentType: 'text/plain', createdAtMs: 1,
    closed: false, base: 0, softDeleted: false, forkCount: 0, ...patch,
  };
};

export function streamStoreContract(name: string, open: () => Promise<StreamStoreFixture>): void {
  test(`${name}: a create takes a free path once; the state survives a reopen`, async () => {
    const { store, reopen } = await open();
    const first = streamMeta('a/b', { ttlSeconds: 30 });
    assert.equal(await store.commit([{ type: 'create', meta: first }]), true);
    assert.equal(await store.commit([{ type: 'create', meta: streamMeta('a/b') }]), false, 'the path is taken');
    assert.equal(store.get('a/b')?.incarnation, first.incarnation);
    assert.equal(store.byId(first.incarnation)?.path, 'a/b');
    assert.equal(store.size, 1);
    const again = await reopen();
    const { revision: _r, ...state } = again.get('a/b')!;
    assert.deepEqual(state, first);
    await again.close();
  });

  test(`${name}: an update or remove applies only at the revision read`, async () => {
    const { store } = await open();
    await store.commit([{ type: 'create', meta: streamMeta('s') }]);
    const read = store.get('s')!;
    assert.equal(await store.commit([{ type: 'update', expected: read, next: withChanges(read, { closed: true }) }]), true);
    const closed = store.get('s')!;
    assert.equal(closed.closed, true);
    assert.notEqual(closed.revision, read.revision);
    assert.equal(await store.commit([{ type: 'update', expected: read, next: withChanges(read, { lastStreamSeq: 'x' }) }]), false, 'a stale update');
    assert.equal(await store.commit([{ type: 'remove', expected: read }]), false, 'a stale remove');
    assert.equal(store.get('s')?.lastStreamSeq, undefined);
    assert.equal(await store.commit([{ type: 'remove', expected: closed }]), true);
    assert.equal(store.get('s'), undefined);
    assert.equal(store.byId(read.incarnation), undefined);
    assert.equal(await store.refresh('s'), undefined);
  });

  test(`${name}: a commit of several streams applies all or nothing`, async () => {
    const { store, reopen } = await open();
    await store.commit([{ type: 'create', meta: streamMeta('src') }]);
    const src = store.get('src')!;
    await store.commit([{ type: 'update', expected: src, next: withChanges(src, { lastStreamSeq: '1' }) }]);
    const fork = streamMeta('fork', { fork: { sourcePath: 'src', sourceIncarnation: src.incarnation, offset: '0_0', subOffset: 0 } });
    assert.equal(await store.commit([{ type: 'create', meta: fork }, { type: 'update', expected: src, next: withChanges(src, { forkCount: 1 }) }]), false);
    assert.equal(store.get('fork'), undefined, 'the create of a failed commit is not applied');
    const now = store.get('src')!;
    assert.equal(await store.commit([{ type: 'create', meta: fork }, { type: 'update', expected: now, next: withChanges(now, { forkCount: 1 }) }]), true);
    assert.equal(store.get('src')?.forkCount, 1);
    const soft = store.get('src')!;
    assert.equal(await store.commit([{ type: 'update', expected: soft, next: withChanges(soft, { softDeleted: true }) }]), true);
    assert.equal(store.get('src'), undefined, 'a soft-deleted stream is not live');
    assert.equal(store.softDeletedAt('src')?.incarnation, src.incarnation);
    assert.equal(await store.commit([{ type: 'create', meta: streamMeta('src') }]), false, 'a soft-deleted stream still holds its path');
    const again = await reopen();
    assert.equal(again.softDeletedAt('src')?.forkCount, 1);
    assert.equal(again.get('fork')?.fork?.sourceIncarnation, src.incarnation);
    await again.close();
  });

  test(`${name}: listeners see each change with the state before and after`, async () => {
    const { store } = await open();
    const seen: string[] = [];
    const off = store.onChange((path, before, now) => seen.push(`${path}:${before?.closed ?? '-'}>${now?.closed ?? '-'}`));
    await store.commit([{ type: 'create', meta: streamMeta('l') }]);
    const s = store.get('l')!;
    await store.commit([{ type: 'update', expected: s, next: withChanges(s, { closed: true }) }]);
    await store.commit([{ type: 'remove', expected: store.get('l')! }]);
    off();
    assert.deepEqual(seen, ['l:->false', 'l:false>true', 'l:true>-']);
  });

  test(`${name}: concurrent creates of one path: exactly one wins`, async () => {
    const { store } = await open();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.commit([{ type: 'create', meta: streamMeta('race', { contentType: `t/${i}` }) }])));
    assert.equal(results.filter(Boolean).length, 1);
  });
}
