/** The `MetadataStore` contract, run on every implementation (metadata-store.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MetadataStore } from './metadata-store.ts';
import type { TopicInfo } from './topic-info.ts';

export interface StoreFixture {
  store: MetadataStore;
  /** The same store as a fresh process would open it (durable implementations), or the same instance. */
  reopen(): Promise<MetadataStore>;
}

const topic = (name: string, topicId = `${name}-id`): TopicInfo => ({
  name, topicId, partitions: 2, replicationFactor: 1, retentionMs: 1000, retentionBytes: -1, createdAtMs: 1,
});

export function metadataStoreContract(name: string, open: () => Promise<StoreFixture>): void {
  test(`${name}: create, load sorted, survives reopen`, async () => {
    const { store, reopen } = await open();
    await store.createTopic(topic('b'));
    await store.createTopic(topic('a'));
    assert.deepEqual((await store.load()).map((t) => t.name), ['a', 'b']);
    const again = await reopen();
    assert.deepEqual(await again.load(), [topic('a'), topic('b')]);
    await again.close();
  });

  test(`${name}: a taken name is TOPIC_ALREADY_EXISTS and leaves the first topic`, async () => {
    const { store } = await open();
    await store.createTopic(topic('t', 'first'));
    await assert.rejects(store.createTopic(topic('t', 'second')), { errorName: 'TOPIC_ALREADY_EXISTS' } as object);
    assert.equal((await store.load())[0].topicId, 'first');
  });

  test(`${name}: delete compares the topic id (a stale delete never removes a re-created topic)`, async () => {
    const { store, reopen } = await open();
    await store.createTopic(topic('t', 'one'));
    await store.deleteTopic('t', 'one');
    await store.createTopic(topic('t', 'two'));
    await assert.rejects(store.deleteTopic('t', 'one'), { errorName: 'UNKNOWN_TOPIC_OR_PARTITION' } as object);
    await assert.rejects(store.deleteTopic('missing', 'x'), { errorName: 'UNKNOWN_TOPIC_OR_PARTITION' } as object);
    assert.deepEqual((await (await reopen()).load()).map((t) => t.topicId), ['two']);
  });

  test(`${name}: concurrent creates of one name: exactly one wins`, async () => {
    const { store } = await open();
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.createTopic(topic('race', `id-${i}`))));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    assert.equal((await store.load()).length, 1);
  });
}
