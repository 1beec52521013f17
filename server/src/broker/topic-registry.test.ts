/**
 * TopicRegistry + ProducerIdAllocator on a real temp dir: validation codes,
 * durable metadata, delete + re-create yields a new id and an empty log,
 * producer ids never reused across reopen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch } from '@runnel/client/codec';
import { defaultLimits } from '../limits.ts';
import { ProducerIdAllocator } from './producer-ids.ts';
import { TopicRegistry } from './topic-registry.ts';

const open = (dataDir: string) => TopicRegistry.open({ dataDir, limits: defaultLimits, flushIntervalMs: 0 });

test('create validates, persists, and delete + re-create gives a new id and empty logs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-registry-'));
  try {
    let reg = await open(dir);
    for (const [spec, code] of [
      [{ name: '..', partitions: 1, replicationFactor: 1 }, 'INVALID_TOPIC_EXCEPTION'],
      [{ name: 'a b', partitions: 1, replicationFactor: 1 }, 'INVALID_TOPIC_EXCEPTION'],
      [{ name: 'x'.repeat(250), partitions: 1, replicationFactor: 1 }, 'INVALID_TOPIC_EXCEPTION'],
      [{ name: 'ok', partitions: 0, replicationFactor: 1 }, 'INVALID_PARTITIONS'],
      [{ name: 'ok', partitions: 1, replicationFactor: 3 }, 'INVALID_REPLICATION_FACTOR'],
    ] as const) {
      await assert.rejects(reg.create(spec), (e: { errorName?: string }) => e.errorName === code);
    }
    const first = await reg.create({ name: 'orders', partitions: 2, replicationFactor: 1 });
    assert.equal(Buffer.from(first.topicId, 'base64url').length, 16);
    await assert.rejects(reg.create({ name: 'orders', partitions: 1, replicationFactor: 1 }), (e: { errorName?: string }) => e.errorName === 'TOPIC_ALREADY_EXISTS');
    await reg.get('orders')!.logs[1].append(encodeRecordBatch({ baseTimestamp: 0, records: [{ value: new Uint8Array([1]) }] }));
    await reg.close();
    reg = await open(dir);
    assert.equal(reg.get('orders')?.info.topicId, first.topicId, 'metadata durable');
    assert.equal(reg.get('orders')?.logs[1].highWatermark, 1, 'data durable');
    await reg.delete('orders');
    const second = await reg.create({ name: 'orders', partitions: 2, replicationFactor: 1 });
    assert.notEqual(second.topicId, first.topicId);
    assert.equal(reg.get('orders')?.logs[1].highWatermark, 0, 'a re-created topic starts empty');
    await reg.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('producer ids: allocated ids are never reused after reopen; an id is re-claimed only with its secret by its subject (issue 11 finding 1)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-pids-'));
  try {
    const a = await ProducerIdAllocator.open(dir);
    const ids = await Promise.all([0, 1, 2].map(() => a.initProducer(-1, -1, '', 'anonymous')));
    assert.deepEqual(ids.map((i) => i.producerEpoch), [0, 0, 0]);
    assert.equal(new Set(ids.map((i) => i.producerId)).size, 3);
    const b = await ProducerIdAllocator.open(dir);
    const fresh = await b.initProducer(-1, -1, '', 'anonymous');
    assert.ok(ids.every((i) => i.producerId < fresh.producerId), 'no reuse after restart');
    assert.deepEqual(await b.initProducer(ids[1].producerId, 3, ids[1].producerSecret, 'anonymous'), { producerId: ids[1].producerId, producerEpoch: 3, producerSecret: ids[1].producerSecret }, 'the key survives a restart');
    const unknown = await b.initProducer(10 ** 12, 0, 'x', 'anonymous');
    assert.notEqual(unknown.producerId, 10 ** 12, 'an id never allocated gets a fresh one');
    const takeover = await b.initProducer(ids[0].producerId, 7, '', 'anonymous');
    assert.notEqual(takeover.producerId, ids[0].producerId, 'an id presented without its secret gets a fresh one');
    const otherSubject = await b.initProducer(ids[0].producerId, 0, ids[0].producerSecret, 'mallory');
    assert.notEqual(otherSubject.producerId, ids[0].producerId, 'the secret is bound to the subject it was issued to');
    assert.equal(b.owns(ids[2].producerId, 'anonymous', ids[2].producerSecret), true);
    assert.equal(b.owns(ids[2].producerId, 'anonymous', ids[1].producerSecret), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
