/**
 * Both `OffsetStore`s through one contract (offset-store.contract.ts): the
 * file store in a tmp dir, and the partition store over a `LocalPartition`
 * on a real PartitionLog in a tmp dir (reopen = close the log and open it
 * again, then replay). Then what only one of them does: the file store's
 * torn tail and compaction; the partition store's replay of foreign records,
 * its wait for the high watermark at takeover, its fencing and batch limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch, validateRecords } from '@runnel/client/codec';
import { PartitionLog } from '../log/partition-log.ts';
import { LocalPartition } from '../partition/local-partition.ts';
import type { Partition } from '../partition/partition.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import { FileOffsetStore } from './file-offset-store.ts';
import { PartitionOffsetStore } from './partition-offset-store.ts';
import { offsetStoreContract } from './offset-store.contract.ts';
import { OFFSETS_TOPIC } from './coordinator-placement.ts';

const BATCH_LIMITS = { maxBatchBytes: 1024 * 1024, maxHeadersPerRecord: 64 };
const INFO: TopicInfo = { name: OFFSETS_TOPIC, topicId: 'offsets-test', partitions: 1, replicationFactor: 1, retentionMs: -1, retentionBytes: -1, createdAtMs: 0 };

async function openPartition(dir: string): Promise<LocalPartition> {
  return new LocalPartition(INFO, 0, await PartitionLog.open(dir, { flushIntervalMs: 0 }), 0);
}

offsetStoreContract('FileOffsetStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-offsets-'));
  let store = await FileOffsetStore.open(dir);
  return {
    store,
    reopen: async () => { await store.close(); return (store = await FileOffsetStore.open(dir)); },
    cleanup: async () => { await store.close(); await rm(dir, { recursive: true, force: true }); },
  };
});

offsetStoreContract('PartitionOffsetStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-offsets-partition-'));
  let partition = await openPartition(dir);
  const load = (p: Partition) => PartitionOffsetStore.load({ partition: p, isCurrent: () => true, batchLimits: BATCH_LIMITS });
  let store = await load(partition);
  return {
    store,
    reopen: async () => {
      await store.close();
      await partition.close();
      partition = await openPartition(dir);
      return (store = await load(partition));
    },
    cleanup: async () => { await store.close(); await partition.close(); await rm(dir, { recursive: true, force: true }); },
  };
});

test('FileOffsetStore: a torn last line is dropped on open', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-offsets-'));
  try {
    const store = await FileOffsetStore.open(dir);
    await store.commit('g', [{ topic: 'a', partition: 0, offset: 6, metadata: '' }]);
    await store.close();
    await appendFile(join(dir, 'groups', 'offsets.log'), '0badc0de {"g":"g","o":[{"topic":"a","partition":0,"offset":99'); // torn
    const reopened = await FileOffsetStore.open(dir);
    assert.deepEqual(reopened.fetch('g'), [{ topic: 'a', partition: 0, offset: 6, metadata: '' }]);
    assert.ok(!(await readFile(join(dir, 'groups', 'offsets.log'), 'utf8')).includes('0badc0de'), 'torn tail truncated');
    await reopened.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('FileOffsetStore: compaction rewrites the file and keeps every live offset', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-offsets-'));
  try {
    const store = await FileOffsetStore.open(dir);
    for (let i = 0; i < 10_050; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => store.commit('g', [{ topic: 't', partition: k % 3, offset: i + k, metadata: '' }])));
    }
    await store.close();
    const lines = (await readFile(join(dir, 'groups', 'offsets.log'), 'utf8')).trim().split('\n').length;
    assert.ok(lines < 1000, `compacted: ${lines} lines`);
    const reopened = await FileOffsetStore.open(dir);
    assert.deepEqual(reopened.fetch('g').map((o) => o.offset).sort((a, b) => a - b), [10_047, 10_048, 10_049]);
    await reopened.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function withPartition(body: (p: LocalPartition, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-offsets-partition-'));
  const partition = await openPartition(dir);
  try { await body(partition, dir); } finally { await partition.close(); await rm(dir, { recursive: true, force: true }); }
}

async function appendRaw(p: Partition, records: { key: Uint8Array | null; value: Uint8Array | null }[]): Promise<void> {
  const batch = encodeRecordBatch({ records: records.map((r) => ({ ...r, timestampMs: Date.now() })) });
  const header = validateRecords(batch);
  assert.ok(header.ok);
  await p.append(batch, { acks: -1, header: header.value });
}

test('PartitionOffsetStore: replay skips records it does not understand (forged or of another version) and applies the rest in log order', async () => {
  await withPartition(async (partition) => {
    const first = await PartitionOffsetStore.load({ partition, isCurrent: () => true, batchLimits: BATCH_LIMITS });
    await first.commit('g', [{ topic: 't', partition: 0, offset: 3, metadata: '' }]);
    const text = (s: string) => new TextEncoder().encode(s);
    await appendRaw(partition, [
      { key: text('g'), value: text('not json') },
      { key: text('g'), value: text('{"v":2,"o":[["t",0,999,""]]}') },
      { key: text('g'), value: text('{"v":1,"o":[["t",0,-5,""]]}') },
      { key: text('g'), value: null },
      { key: new Uint8Array([0xff, 0xfe]), value: text('{"v":1,"o":[["t",0,77,""]]}') },
    ]);
    await first.commit('g', [{ topic: 't', partition: 1, offset: 4, metadata: 'm' }]);
    await first.close();
    const second = await PartitionOffsetStore.load({ partition, isCurrent: () => true, batchLimits: BATCH_LIMITS });
    assert.deepEqual(second.fetch('g').sort((a, b) => a.partition - b.partition), [
      { topic: 't', partition: 0, offset: 3, metadata: '' }, { topic: 't', partition: 1, offset: 4, metadata: 'm' },
    ]);
    assert.deepEqual(second.stats, { replayedRecords: 2, skippedRecords: 5 });
  });
});

/** A leader that took over with records above its high watermark: the high watermark is held at `cap` until released. */
function heldHighWatermark(inner: Partition, cap: number): Partition & { release(): void } {
  let held = true;
  const hw = () => (held ? Math.min(cap, inner.highWatermark) : inner.highWatermark);
  const view = Object.create(inner) as Partition & { release(): void };
  Object.defineProperty(view, 'highWatermark', { get: hw });
  view.release = () => { held = false; };
  view.waitForVisible = async (offset, timeoutMs) => {
    if (hw() > offset) return;
    await new Promise((r) => setTimeout(r, Math.min(timeoutMs, 20)));
  };
  view.read = (offset, maxBytes) => inner.read(offset, maxBytes, { maxOffset: hw() });
  return view;
}

test('PartitionOffsetStore: a new leader replays only once its high watermark covers the log end it took over with (no offset moves backwards)', async () => {
  await withPartition(async (partition) => {
    const old = await PartitionOffsetStore.load({ partition, isCurrent: () => true, batchLimits: BATCH_LIMITS });
    for (let i = 1; i <= 5; i++) await old.commit('g', [{ topic: 't', partition: 0, offset: i * 10, metadata: '' }]);
    await old.close();
    const view = heldHighWatermark(partition, 2);
    let loaded: PartitionOffsetStore | undefined;
    const loading = PartitionOffsetStore.load({ partition: view, isCurrent: () => true, batchLimits: BATCH_LIMITS, limits: { offsetsReplayReadBytes: 1024, offsetsLoadPollMs: 10 } })
      .then((s) => (loaded = s));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(loaded, undefined, 'still waiting for the high watermark');
    view.release();
    await loading;
    assert.deepEqual(loaded!.fetch('g'), [{ topic: 't', partition: 0, offset: 50, metadata: '' }]);
  });
});

test('PartitionOffsetStore: a store that no longer leads refuses commits and loads (NOT_LEADER_OR_FOLLOWER); nothing is appended', async () => {
  await withPartition(async (partition) => {
    let current = true;
    const store = await PartitionOffsetStore.load({ partition, isCurrent: () => current, batchLimits: BATCH_LIMITS });
    await store.commit('g', [{ topic: 't', partition: 0, offset: 1, metadata: '' }]);
    const end = partition.logEndOffset;
    current = false;
    await assert.rejects(store.commit('g', [{ topic: 't', partition: 0, offset: 2, metadata: '' }]), { errorName: 'NOT_LEADER_OR_FOLLOWER' });
    await assert.rejects(store.deleteTopic('t'), { errorName: 'NOT_LEADER_OR_FOLLOWER' });
    assert.equal(partition.logEndOffset, end);
    assert.deepEqual(store.fetch('g'), [{ topic: 't', partition: 0, offset: 1, metadata: '' }]);
    await assert.rejects(PartitionOffsetStore.load({ partition: heldHighWatermark(partition, 0), isCurrent: () => current, batchLimits: BATCH_LIMITS }), { errorName: 'NOT_LEADER_OR_FOLLOWER' });
  });
});

test('PartitionOffsetStore: a commit larger than maxBatchBytes is refused whole (MESSAGE_TOO_LARGE)', async () => {
  await withPartition(async (partition) => {
    const store = await PartitionOffsetStore.load({ partition, isCurrent: () => true, batchLimits: { maxBatchBytes: 2048, maxHeadersPerRecord: 64 } });
    const many = Array.from({ length: 200 }, (_, i) => ({ topic: 'topic-with-a-long-name', partition: i, offset: i, metadata: '' }));
    await assert.rejects(store.commit('g', many), { errorName: 'MESSAGE_TOO_LARGE' });
    assert.deepEqual(store.fetch('g'), []);
    assert.equal(partition.logEndOffset, 0);
  });
});
