/**
 * The `HttpBrokerApi` contract: what the HTTP routes rely on. Run on the
 * real request layer over a real broker and on the route tests' in-memory
 * broker (http-broker-api.test.ts), so the double cannot drift from the
 * broker its tests stand in for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordBatch } from '@runnel/client/codec';
import type { HttpBrokerApi } from './broker-api.ts';
import { requestContext } from './request-context.ts';

export interface ApiFixture {
  api: HttpBrokerApi;
  close(): Promise<void>;
}

const ctx = requestContext('http', '127.0.0.1', 'contract');
const batch = (...values: string[]) => encodeRecordBatch({ baseTimestamp: Date.now(), records: values.map((v) => ({ value: new TextEncoder().encode(v) })) });
const code = (name: string) => (e: unknown) => (e as { errorName?: string }).errorName === name;

export function httpBrokerApiContract(name: string, open: () => Promise<ApiFixture>): void {
  const withApi = (title: string, fn: (api: HttpBrokerApi) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const f = await open();
      try {
        await fn(f.api);
      } finally {
        await f.close();
      }
    });

  withApi('topic names follow one rule set', async (api) => {
    for (const bad of ['', '.', '..', 'a b', 'x'.repeat(250), 'ü']) {
      await assert.rejects(api.createTopic(ctx, { name: bad, partitions: 1, replicationFactor: 1 }), code('INVALID_TOPIC_EXCEPTION'), `name ${JSON.stringify(bad)}`);
    }
    await assert.rejects(api.createTopic(ctx, { name: 'p0', partitions: 0, replicationFactor: 1 }), code('INVALID_PARTITIONS'));
    const info = await api.createTopic(ctx, { name: 'a.b_c-1', partitions: 2, replicationFactor: 1 });
    assert.equal(info.partitions, 2);
    await assert.rejects(api.createTopic(ctx, { name: 'a.b_c-1', partitions: 1, replicationFactor: 1 }), code('TOPIC_ALREADY_EXISTS'));
    assert.deepEqual(api.listTopics(ctx).map((t) => t.name), ['a.b_c-1']);
  });

  withApi('produce assigns contiguous offsets; fetch serves from the batch holding the offset, below the high watermark', async (api) => {
    await api.createTopic(ctx, { name: 't', partitions: 1, replicationFactor: 1 });
    const first = await api.produce(ctx, 't', 0, batch('a', 'b'), -1);
    const second = await api.produce(ctx, 't', 0, batch('c'), -1);
    assert.deepEqual([first.baseOffset, first.lastOffset, second.baseOffset, second.lastOffset], [0, 1, 2, 2]);
    assert.equal(api.describeTopic(ctx, 't').partitions[0].highWatermark, 3);
    const read = await api.fetch(ctx, 't', 0, 1, 1024 * 1024);
    assert.equal(read.highWatermark, 3);
    assert.equal(read.nextOffset, 3);
    assert.ok(read.batches.byteLength > 0);
    await assert.rejects(api.fetch(ctx, 't', 0, 4, 1024), code('OFFSET_OUT_OF_RANGE'));
    await assert.rejects(api.fetch(ctx, 't', 1, 0, 1024), code('UNKNOWN_TOPIC_OR_PARTITION'));
  });

  withApi('a corrupt batch, or more than one batch, is refused and nothing is stored', async (api) => {
    await api.createTopic(ctx, { name: 't', partitions: 1, replicationFactor: 1 });
    const bad = batch('x');
    bad[bad.length - 1] ^= 0xff;
    await assert.rejects(api.produce(ctx, 't', 0, bad, -1), code('CORRUPT_MESSAGE'));
    const two = new Uint8Array([...batch('a'), ...batch('b')]);
    await assert.rejects(api.produce(ctx, 't', 0, two, -1), code('CORRUPT_MESSAGE'));
    assert.equal(api.describeTopic(ctx, 't').partitions[0].highWatermark, 0);
  });

  withApi('waitForRecords resolves on new data and on timeout', async (api) => {
    await api.createTopic(ctx, { name: 't', partitions: 1, replicationFactor: 1 });
    const waiting = api.waitForRecords(ctx, 't', 0, 0, 60_000);
    await api.produce(ctx, 't', 0, batch('a'), -1);
    assert.equal(await Promise.race([waiting.then(() => 'woken'), new Promise((r) => setTimeout(r, 3000, 'still waiting'))]), 'woken');
    const started = Date.now();
    await api.waitForRecords(ctx, 't', 0, 1, 50);
    assert.ok(Date.now() - started >= 40, 'waited for the timeout');
    const aborted = new AbortController();
    const wait = api.waitForRecords(ctx, 't', 0, 1, 60_000, aborted.signal);
    aborted.abort();
    assert.equal(await Promise.race([wait.then(() => 'aborted'), new Promise((r) => setTimeout(r, 3000, 'still waiting'))]), 'aborted');
  });

  withApi('deleting a topic ends its waits and forgets it; unknown topics are UNKNOWN_TOPIC_OR_PARTITION', async (api) => {
    await api.createTopic(ctx, { name: 't', partitions: 1, replicationFactor: 1 });
    const waiting = api.waitForRecords(ctx, 't', 0, 0, 60_000);
    await api.deleteTopic(ctx, 't');
    assert.equal(await Promise.race([waiting.then(() => 'ended'), new Promise((r) => setTimeout(r, 3000, 'still waiting'))]), 'ended');
    assert.throws(() => api.describeTopic(ctx, 't'), code('UNKNOWN_TOPIC_OR_PARTITION'));
    await assert.rejects(api.deleteTopic(ctx, 't'), code('UNKNOWN_TOPIC_OR_PARTITION'));
  });

  withApi('standalone offset commits are durable answers; describe and lag see them; member commits need a member', async (api) => {
    await api.createTopic(ctx, { name: 't', partitions: 2, replicationFactor: 1 });
    await api.produce(ctx, 't', 1, batch('a', 'b', 'c'), -1);
    await api.commitOffsets(ctx, 'g', -1, '', [{ topic: 't', partition: 1, offset: 1, metadata: 'm' }]);
    assert.deepEqual(await api.fetchOffsets(ctx, 'g'), [{ topic: 't', partition: 1, offset: 1, metadata: 'm' }]);
    assert.deepEqual(await api.fetchOffsets(ctx, 'g', ['other']), []);
    const described = await api.describeGroup(ctx, 'g');
    assert.equal(described.offsets[0].lag, 2);
    assert.deepEqual((await api.listGroups(ctx)).map((g) => g.group), ['g']);
    assert.deepEqual(api.consumerLag(), [{ group: 'g', topic: 't', partition: 1, lag: 2 }]);
    await assert.rejects(api.describeGroup(ctx, 'nobody'), code('UNKNOWN_GROUP'));
    await assert.rejects(api.commitOffsets(ctx, 'g', 3, 'not-a-member', [{ topic: 't', partition: 0, offset: 0, metadata: '' }]), code('UNKNOWN_MEMBER_ID'));
    await api.commitOffsets(ctx, 'g', -1, '', [{ topic: 't', partition: 1, offset: 3, metadata: '' }]);
    await assert.rejects(api.commitOffsets(ctx, 'g', -1, '', [{ topic: 't', partition: 1, offset: 2, metadata: '' }]), code('OFFSET_COMMIT_BACKWARDS'));
    await api.commitOffsets(ctx, 'g', -1, '', [{ topic: 't', partition: 1, offset: 0, metadata: '' }], true);
    assert.deepEqual(await api.fetchOffsets(ctx, 'g'), [{ topic: 't', partition: 1, offset: 0, metadata: '' }]);
  });
}
