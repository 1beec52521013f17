/**
 * The log's replication hooks (server/src/replication/): `appendAsFollower`,
 * the replicated high watermark (moved only by `setHighWatermark`, restored
 * from the checkpoint at open) and `onWrite`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssertionError, encodeRecordBatch, iterateBatches, RunnelError } from '@runnel/client/codec';
import { MemoryLogDirectory } from './memory-segment-file.ts';
import { PartitionLog } from './partition-log.ts';

function batch(records: number, opts: { producerId?: number; producerEpoch?: number; baseSequence?: number } = {}): Uint8Array {
  const value = new Uint8Array(20).fill(3);
  return encodeRecordBatch({ ...opts, records: Array.from({ length: records }, () => ({ value, timestampMs: 1000 })) });
}

/** Each stored batch of `bytes` as its own (copied) buffer, with its header. */
function split(bytes: Uint8Array) {
  const out = [];
  for (const b of iterateBatches(bytes)) {
    assert.ok(b.ok);
    out.push({ bytes: bytes.slice(b.value.at, b.value.at + b.value.header.totalBytes), header: b.value.header });
  }
  return out;
}

test('appendAsFollower stores the leader bytes as they are (offsets, epoch) and rebuilds idempotent producer state', async () => {
  const leader = await PartitionLog.openDirectory(new MemoryLogDirectory());
  await leader.append(batch(3), { leaderEpoch: 4 });
  await leader.append(batch(2, { producerId: 9, producerEpoch: 0, baseSequence: 0 }), { leaderEpoch: 4 });
  await leader.append(batch(2, { producerId: 9, producerEpoch: 0, baseSequence: 2 }), { leaderEpoch: 6 });
  const stored = (await leader.read(0, 1 << 20)).batches;

  const follower = await PartitionLog.openDirectory(new MemoryLogDirectory(), { isReplicated: true });
  for (const b of split(stored)) await follower.appendAsFollower(b.bytes, b.header);
  assert.deepEqual((await follower.read(0, 1 << 20, { maxOffset: follower.logEndOffset })).batches, stored, 'byte-identical');
  assert.deepEqual(follower.leaderEpochEntries(), [{ epoch: 4, startOffset: 0 }, { epoch: 6, startOffset: 5 }]);
  assert.equal(follower.highWatermark, 0, 'a replicated log hides everything until told the high watermark');
  follower.setHighWatermark(5);
  assert.equal(follower.highWatermark, 5);

  // The follower becomes leader: the producer's retry of its last batch is a duplicate with the original offsets.
  const retry = await follower.append(batch(2, { producerId: 9, producerEpoch: 0, baseSequence: 2 }), { leaderEpoch: 7 });
  assert.deepEqual([retry.duplicate, retry.baseOffset, retry.lastOffset], [true, 5, 6]);
  await assert.rejects(follower.append(batch(1, { producerId: 9, producerEpoch: 0, baseSequence: 9 }), { leaderEpoch: 7 }), (e: RunnelError) => e.errorName === 'OUT_OF_ORDER_SEQUENCE_NUMBER');
  await leader.close();
  await follower.close();
});

test('appendAsFollower refuses a batch not at the log end and one that fails its CRC, appending nothing', async () => {
  const log = await PartitionLog.openDirectory(new MemoryLogDirectory(), { isReplicated: true });
  const b = batch(2);
  await log.appendAsFollower(b.slice());
  assert.equal(log.logEndOffset, 2, 'baseOffset 0 at an empty log is accepted');
  await assert.rejects(log.appendAsFollower(b.slice()), AssertionError);
  const corrupt = batch(1);
  new DataView(corrupt.buffer).setBigInt64(0, 2n);
  corrupt[corrupt.length - 1] ^= 0xff;
  await assert.rejects(log.appendAsFollower(corrupt), (e: RunnelError) => e.errorName === 'CORRUPT_MESSAGE');
  assert.equal(log.logEndOffset, 2);
  await log.close();
});

test('replicated high watermark: restored from the checkpoint at open, capped by the durable end, monotonic', async () => {
  const dir = new MemoryLogDirectory();
  let log = await PartitionLog.openDirectory(dir, { isReplicated: true });
  for (let i = 0; i < 4; i++) await log.append(batch(5), { leaderEpoch: 1 });
  assert.deepEqual([log.logEndOffset, log.highWatermark], [20, 0]);
  const seen: number[] = [];
  log.onAppend((e) => seen.push(e.baseOffset));
  log.setHighWatermark(12);
  assert.equal(log.highWatermark, 12, 'the high watermark is a limit, not rounded to batches');
  assert.deepEqual(seen, [0, 5], 'onAppend fires for batches wholly below it');
  log.setHighWatermark(99);
  assert.equal(log.highWatermark, 20, 'never past the durable end');
  log.setHighWatermark(3);
  assert.equal(log.highWatermark, 20, 'monotonic');
  assert.equal((await log.read(0, 1 << 20)).nextOffset, 20);
  await log.close();

  log = await PartitionLog.openDirectory(dir, { isReplicated: true });
  assert.deepEqual([log.logEndOffset, log.highWatermark], [20, 20], 'restored from the clean-shutdown checkpoint');
  await log.append(batch(5), { leaderEpoch: 1 });
  assert.equal(log.highWatermark, 20);
  log.setHighWatermark(25);
  await log.checkpointHighWatermark();
  await log.close();

  const single = await PartitionLog.openDirectory(dir);
  assert.equal(single.highWatermark, 25, 'a single-node log keeps its rule: the durable end');
  await single.close();
});

test('onWrite reports the written end after each write', async () => {
  const log = await PartitionLog.openDirectory(new MemoryLogDirectory());
  const ends: number[] = [];
  log.onWrite((end) => ends.push(end));
  await log.append(batch(3));
  await Promise.all([log.append(batch(1)), log.append(batch(1))]);
  assert.equal(ends[0], 3);
  assert.equal(ends[ends.length - 1], 5);
  await log.close();
});

test('truncateTo drops acknowledged batches not yet visible: onAppend never delivers a truncated batch (a deposed leader\'s tail)', async () => {
  const log = await PartitionLog.openDirectory(new MemoryLogDirectory(), { isReplicated: true });
  const delivered: { baseOffset: number; batch: Uint8Array }[] = [];
  log.onAppend((e) => delivered.push({ baseOffset: e.baseOffset, batch: e.batch }));
  const [b1, b2, b3] = [batch(2), batch(2), batch(2)];
  await log.append(b1, { leaderEpoch: 1 });
  await log.append(b2, { leaderEpoch: 1 });
  await log.append(b3, { leaderEpoch: 1 });
  log.setHighWatermark(2);
  assert.deepEqual(delivered, [{ baseOffset: 0, batch: b1 }]);
  // Demoted: the batches at 2 and 4 (acked, never visible) diverge from the new leader's.
  await log.truncateTo(2);
  assert.equal(log.logEndOffset, 2);
  const fromLeader = batch(3);
  new DataView(fromLeader.buffer).setBigInt64(0, 2n);
  new DataView(fromLeader.buffer).setInt32(12, 2);
  await log.appendAsFollower(fromLeader);
  log.setHighWatermark(5);
  assert.equal(delivered.length, 2, 'only the new leader\'s batch, once');
  assert.equal(delivered[1].batch, fromLeader);
  assert.equal(delivered[1].baseOffset, 2);
  await log.close();
});

test('truncateFullyAndStartAt restarts the log empty past its end (a follower behind the leader\'s log start); the state survives a reopen', async () => {
  const dir = new MemoryLogDirectory();
  let log = await PartitionLog.openDirectory(dir, { isReplicated: true, maxSegmentBytes: 64 * 1024, maxBatchBytes: 16 * 1024 });
  for (let i = 0; i < 30; i++) await log.append(batch(100, { producerId: 3, producerEpoch: 0, baseSequence: i * 100 }), { leaderEpoch: 1 });
  log.setHighWatermark(3000);
  assert.ok(log.segmentInfo().length > 1);
  await log.truncateFullyAndStartAt(5000);
  assert.deepEqual([log.logStartOffset, log.logEndOffset, log.highWatermark, log.durableEndOffset], [5000, 5000, 5000, 5000]);
  assert.deepEqual(log.segmentInfo(), [{ baseOffset: 5000, sizeBytes: 0, nextOffset: 5000 }]);
  assert.deepEqual(log.leaderEpochEntries(), []);
  assert.equal(log.producerState(3), undefined);
  const fromLeader = batch(5, { producerId: 3, producerEpoch: 0, baseSequence: 7000 });
  new DataView(fromLeader.buffer).setBigInt64(0, 5000n);
  new DataView(fromLeader.buffer).setInt32(12, 4);
  await log.appendAsFollower(fromLeader);
  log.setHighWatermark(5005);
  assert.equal((await log.read(5000, 1 << 20)).nextOffset, 5005);
  await assert.rejects(log.read(500, 1 << 20), (e: RunnelError) => e.errorName === 'OFFSET_OUT_OF_RANGE');
  await log.close();
  log = await PartitionLog.openDirectory(dir, { isReplicated: true });
  assert.deepEqual([log.logStartOffset, log.logEndOffset, log.highWatermark], [5000, 5005, 5005]);
  assert.deepEqual(log.leaderEpochEntries(), [{ epoch: 4, startOffset: 5000 }]);
  assert.equal(log.producerState(3)?.batches.length, 1);
  await log.close();
});
