/**
 * Replication end to end over testing/replica-cluster.ts: three
 * ReplicaPartitions on real logs, real TCP, an in-memory IsrStore with
 * compare-and-swap standing in for etcd and the controller.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { IsrStore } from '../cluster/cluster-state.ts';
import { PartitionLog } from '../log/partition-log.ts';
import type { AppendResult } from '../partition/partition.ts';
import { PeerLinks } from './peer-links.ts';
import { ReplicaPartition } from './replica-partition.ts';
import { ReplicationServer } from './replication-server.ts';
import { batch, Cluster, isCode, logBytes, produce, quiet, segmentFiles, testLimits as limits, topic, until } from './testing/replica-cluster.ts';
import { TEST_LINK_KEY } from './testing/link-key.ts';

const roots: string[] = [];
after(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

test('acks=-1 on the leader: acknowledged only once both followers are durable; identical bytes on all three; follower reads stop at their high watermark', async () => {
  const c = await Cluster.start();
  try {
    const [leader, f2, f3] = [c.node(1), c.node(2), c.node(3)];
    assert.deepEqual([leader.replica!.role, f2.replica!.role, f3.replica!.role], ['leader', 'follower', 'follower']);
    // Consumers of a follower: every batch they are shown is below the leader's high watermark too.
    let phantom = 0;
    let seenOnFollower = 0;
    f2.replica!.onVisible((e) => {
      seenOnFollower++;
      if (e.lastOffset >= leader.log.highWatermark) phantom++;
    });
    const acked: AppendResult[] = [];
    const checks: Promise<void>[] = [];
    for (let round = 0; round < 10; round++) {
      checks.push(...Array.from({ length: 20 }, () => produce(leader, 5).then((r) => {
        acked.push(r);
        // Acknowledged ⇒ durable on every ISR member.
        for (const f of [f2, f3]) assert.ok(f.log.durableEndOffset > r.lastOffset, `follower ${f.id} durable end ${f.log.durableEndOffset} covers ${r.lastOffset} at the ack`);
        assert.ok(leader.log.highWatermark > r.lastOffset);
      })));
    }
    await Promise.all(checks);
    assert.equal(acked.length, 200);
    assert.equal(leader.log.logEndOffset, 1000);
    await until('followers learn the final high watermark', () => f2.log.highWatermark === 1000 && f3.log.highWatermark === 1000);
    const bytes = await logBytes(leader.log);
    assert.ok(bytes.equals(await logBytes(f2.log)) && bytes.equals(await logBytes(f3.log)), 'identical bytes on all three replicas');
    assert.deepEqual(f2.log.leaderEpochEntries(), [{ epoch: 1, startOffset: 0 }], 'the leader epoch is kept as stamped');
    assert.equal(phantom, 0, 'no follower consumer saw a batch above the leader high watermark');
    assert.equal(seenOnFollower, 200);
    const read = await f3.replica!.read(0, 1 << 30);
    assert.equal(read.nextOffset, 1000);
    await assert.rejects(produce(f2, 1), isCode('NOT_LEADER_OR_FOLLOWER'), 'a follower refuses client appends');
    assert.deepEqual(leader.replica!.replicationView().followers?.map((f) => [f.brokerId, f.inIsr]), [[2, true], [3, true]]);
    await c.stopAll();
    const files = await segmentFiles(leader.dir);
    assert.ok(files.equals(await segmentFiles(f2.dir)) && files.equals(await segmentFiles(f3.dir)), 'segment files byte for byte');
  } finally {
    await c.close();
  }
});

test('a stopped follower leaves the ISR after replicaLagTimeMs and produce continues with minInsyncReplicas 2; a second one stopped → NOT_ENOUGH_REPLICAS; both rejoin after catching up', async () => {
  const c = await Cluster.start();
  try {
    const leader = c.node(1);
    await produce(leader, 10);
    await c.node(3).stop();
    const stoppedAt = performance.now();
    const waiting = await produce(leader, 10);
    assert.ok(performance.now() - stoppedAt >= 1400, 'held until the ISR shrank (replicaLagTimeMs 1500)');
    assert.equal(waiting.lastOffset, 19);
    assert.deepEqual(c.store.current.isr, [1, 2]);
    for (let i = 0; i < 5; i++) await produce(leader, 10);

    await c.node(2).stop();
    const held = produce(leader, 10);
    await assert.rejects(held, isCode('NOT_ENOUGH_REPLICAS_AFTER_APPEND'), 'appended, then the ISR shrank below 2 while it waited');
    assert.deepEqual(c.store.current.isr, [1]);
    const endBefore = leader.log.logEndOffset;
    await assert.rejects(produce(leader, 10), isCode('NOT_ENOUGH_REPLICAS'));
    assert.equal(leader.log.logEndOffset, endBefore, 'refused before appending');
    const one = await produce(leader, 10, 1);
    assert.equal(one.lastOffset, endBefore + 9, 'acks=1 still works');

    await c.node(2).start();
    await c.node(3).start();
    await until('both rejoin the ISR', () => c.store.current.isr.length === 3);
    const r = await produce(leader, 10);
    assert.equal(r.lastOffset, endBefore + 19);
    await until('followers caught up', () => c.node(2).log.highWatermark === leader.log.logEndOffset && c.node(3).log.highWatermark === leader.log.logEndOffset);
    const bytes = await logBytes(leader.log);
    assert.ok(bytes.equals(await logBytes(c.node(2).log)) && bytes.equals(await logBytes(c.node(3).log)));
  } finally {
    await c.close();
  }
});

test('a stalled ISR member: the leader holds at most maxUnreplicatedBytesPerPartition above the high watermark (any acks refused LIMIT_EXCEEDED) until the ISR shrinks', async () => {
  const c = await Cluster.start([1, 2, 3], { maxUnreplicatedBytesPerPartition: 2 * 1024 * 1024 });
  try {
    const leader = c.node(1);
    await produce(leader, 1000);
    await c.node(3).stop();
    let accepted = 0;
    for (;;) {
      const refused = await produce(leader, 1000, 1).then(() => null, (e: unknown) => e);
      if (refused) {
        assert.ok(isCode('LIMIT_EXCEEDED')(refused), String(refused));
        break;
      }
      accepted++;
      assert.ok(accepted < 40, 'refused after about 2 MiB of 120 KB batches');
    }
    assert.ok(accepted >= 10, `${accepted} batches accepted first`);
    await until('the ISR shrinks', () => c.store.current.isr.length === 2);
    await until('the high watermark catches up', () => leader.log.highWatermark === leader.log.logEndOffset);
    await produce(leader, 1000, 1);
  } finally {
    await c.close();
  }
});

test('a follower whose log ends below the leader\'s log start (retention) restarts its log there and catches up', async () => {
  const c = await Cluster.start([1, 2, 3], {}, { maxBatchBytes: 32 * 1024, maxSegmentBytes: 64 * 1024 });
  try {
    const [leader, n3] = [c.node(1), c.node(3)];
    await produce(leader, 50);
    await n3.stop();
    for (let i = 0; i < 40; i++) await produce(leader, 50);
    // Retention on the leader and broker 2: only the newest ~128 KiB stay.
    for (const n of [leader, c.node(2)]) await n.log.enforceRetention({ retentionBytes: 128 * 1024 });
    assert.ok(leader.log.logStartOffset > 50, `log start ${leader.log.logStartOffset}`);
    await n3.start();
    await until('broker 3 caught up', () => n3.log.logEndOffset === leader.log.logEndOffset && n3.log.highWatermark === leader.log.highWatermark);
    assert.equal(n3.log.logStartOffset, leader.log.logStartOffset);
    assert.ok((await logBytes(leader.log)).equals(await logBytes(n3.log)));
    assert.ok(c.warnings.some((w) => w.startsWith('3: the log ends at 50, below leader 1')), c.warnings.join('\n'));
    await until('broker 3 rejoins the ISR', () => c.store.current.isr.includes(3));
  } finally {
    await c.close();
  }
});

test('logs with flushIntervalMs > 0: acks=-1 still waits for the followers (flushed before they report), and leadership moves', async () => {
  const c = await Cluster.start([1, 2, 3], {}, { flushIntervalMs: 50 });
  try {
    for (let i = 0; i < 10; i++) await produce(c.node(1), 10);
    for (const id of [2, 3]) assert.ok(c.node(id).log.durableEndOffset >= 100, `broker ${id} flushed what it reported`);
    c.store.elect(2, [1, 2, 3]);
    await until('broker 2 leads', () => c.node(2).replica!.role === 'leader');
    const r = await produce(c.node(2), 10);
    assert.equal(r.lastOffset, 109);
    await until('all caught up', () => [1, 3].every((id) => c.node(id).log.highWatermark === 110));
    assert.ok((await logBytes(c.node(2).log)).equals(await logBytes(c.node(1).log)));
  } finally {
    await c.close();
  }
});

test('a replica whose recovery cut its tail is not electable (it refuses to lead) until it caught up with a leader again', async () => {
  const c = await Cluster.start();
  try {
    const [n1, n3] = [c.node(1), c.node(3)];
    for (let i = 0; i < 10; i++) await produce(n1, 10);
    await until('broker 3 has it all', () => n3.log.highWatermark === 100);
    await n3.stop();
    // Torn tail: the last batch loses its end (acknowledged records broker 3 no longer holds).
    const names = (await readdir(n3.dir)).filter((n) => n.endsWith('.log')).sort();
    const path = join(n3.dir, names[names.length - 1]);
    await truncate(path, (await stat(path)).size - 7);
    await n3.start();
    assert.equal(n3.log.logEndOffset, 90, 'recovery cut the torn batch');
    assert.equal(n3.replica!.isElectable, false);
    assert.ok(c.store.current.isr.includes(3), 'still in the ISR (back within replicaLagTimeMs)');
    c.store.elect(3, [1, 2, 3]);
    await until('broker 3 applied epoch 2', () => n3.replica!.leaderEpoch === 2);
    assert.equal(n3.replica!.role, 'none', 'it refuses to lead');
    await assert.rejects(produce(n3, 1), isCode('NOT_LEADER_OR_FOLLOWER'));
    assert.ok(c.warnings.some((w) => w.startsWith('3: elected leader at epoch 2 while not electable')), c.warnings.join('\n'));
    c.store.elect(1, [1, 2, 3]);
    await until('broker 3 caught up and is electable', () => n3.replica!.isElectable && n3.log.logEndOffset === 100);
    assert.ok((await logBytes(n1.log)).equals(await logBytes(n3.log)));

    // A tear above the high watermark it had (never acknowledged, as a crash leaves it) keeps a replica electable.
    const n2 = c.node(2);
    await n2.stop();
    await n3.stop();
    for (let i = 0; i < 3; i++) await produce(n1, 10, 1);
    assert.equal(n1.log.highWatermark, 100);
    await n1.stop();
    const leaderNames = (await readdir(n1.dir)).filter((n) => n.endsWith('.log')).sort();
    const leaderPath = join(n1.dir, leaderNames[leaderNames.length - 1]);
    await truncate(leaderPath, (await stat(leaderPath)).size - 7);
    await n1.start();
    assert.equal(n1.log.logEndOffset, 120, 'the torn acks=1 batch is cut');
    assert.equal(n1.replica!.isElectable, true);
  } finally {
    await c.close();
  }
});

test('divergence: the old leader\'s acks=1 tail is truncated by epoch when it follows the new leader; it ends byte-identical; an idempotent retry to the new leader is a duplicate', async () => {
  const c = await Cluster.start();
  try {
    const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
    await produce(n1, 10);
    const original = await produce(n1, 3, -1, { producerId: 7, producerEpoch: 0, baseSequence: 0 });
    await until('followers have it all', () => n2.log.highWatermark === 13 && n3.log.highWatermark === 13);
    // The followers go away; the old leader takes acks=1 batches nobody else gets.
    await n2.stop();
    await n3.stop();
    for (let i = 0; i < 4; i++) await produce(n1, 5, 1, { tag: 0xee });
    assert.equal(n1.log.logEndOffset, 33);
    await n1.stop();
    // The controller elects broker 2 at epoch 2 (it was in the ISR); it appends other batches.
    await n2.start();
    await n3.start();
    c.store.elect(2, [2, 3]);
    await until('broker 2 leads', () => n2.replica!.role === 'leader');
    await until('broker 3 follows epoch 2', () => n3.replica!.leaderEpoch === 2);
    const retry = await produce(n2, 3, -1, { producerId: 7, producerEpoch: 0, baseSequence: 0 });
    assert.deepEqual([retry.duplicate, retry.baseOffset, retry.lastOffset], [true, original.baseOffset, original.lastOffset], 'producer state rebuilt from the replicated batches');
    for (let i = 0; i < 3; i++) await produce(n2, 4, -1, { tag: 0x22 });
    assert.equal(n2.log.logEndOffset, 25);
    // The old leader returns as a follower of epoch 2.
    await n1.start();
    assert.equal(n1.replica!.role, 'follower');
    await until('broker 1 caught up with broker 2', () => n1.log.logEndOffset === 25 && n1.log.highWatermark === 25);
    const bytes = await logBytes(n2.log);
    assert.ok(bytes.equals(await logBytes(n1.log)), 'the divergent tail is gone, the new leader\'s batches in its place');
    assert.ok(bytes.equals(await logBytes(n3.log)));
    assert.deepEqual(n1.log.leaderEpochEntries(), [{ epoch: 1, startOffset: 0 }, { epoch: 2, startOffset: 13 }]);
    assert.ok(c.warnings.some((w) => w.startsWith('1: diverged') && /truncating 20 offsets to 13/.test(w)), c.warnings.join('\n'));
    await until('broker 1 rejoins the ISR', () => c.store.current.isr.includes(1));
  } finally {
    await c.close();
  }
});

test('leader changes: a deposed leader fails its waiting acks NOT_LEADER_OR_FOLLOWER and refuses appends; epochs fence fetches both ways; alterIsr fenced stops a leader', async () => {
  const c = await Cluster.start();
  try {
    const [n1, n2, n3] = [c.node(1), c.node(2), c.node(3)];
    await produce(n1, 5);
    await n3.stop();
    const waiting = produce(n1, 5);
    // Broker 2 takes over before the ISR shrinks: broker 1's waiting ack fails.
    c.store.elect(2, [1, 2]);
    await assert.rejects(waiting, isCode('NOT_LEADER_OR_FOLLOWER'));
    await until('broker 2 leads epoch 2', () => n2.replica!.role === 'leader');
    await assert.rejects(produce(n1, 1), isCode('NOT_LEADER_OR_FOLLOWER'));
    await produce(n2, 5);

    // Raw fetches to the leader (broker 2, epoch 2) as broker 1.
    const links = n1.links!;
    const request = { topicId: topic.topicId, partition: 0, replicaId: 1, lastFetchedEpoch: 2, fetchOffset: n1.log.durableEndOffset, knownHighWatermark: 0, maxBytes: 1 << 20, maxWaitMs: 0 };
    await assert.rejects(links.fetch(2, { ...request, currentLeaderEpoch: 1 }, 5000), isCode('FENCED_LEADER_EPOCH'));
    await assert.rejects(links.fetch(2, { ...request, currentLeaderEpoch: 3 }, 5000), isCode('UNKNOWN_LEADER_EPOCH'));
    await assert.rejects(links.fetch(2, { ...request, currentLeaderEpoch: 2, replicaId: 9 }, 5000), isCode('INVALID_REQUEST'));
    await assert.rejects(links.fetch(1, { ...request, currentLeaderEpoch: 2 }, 5000), isCode('NOT_LEADER_OR_FOLLOWER'), 'a follower answers no fetch');

    // Someone else changes the key at this epoch: the leader's next alterIsr is fenced and it stops acting.
    const moved = { ...c.store.current, isr: [2, 1] };
    c.store.current = { ...moved, revision: String(Number(moved.revision) + 50) };
    await n1.stop();
    await until('broker 2 was fenced', () => n2.replica!.role !== 'leader', 5000);
    await assert.rejects(produce(n2, 1), isCode('NOT_LEADER_OR_FOLLOWER'));
    assert.ok(c.warnings.some((w) => w.startsWith('2: fenced')), c.warnings.join('\n'));
  } finally {
    await c.close();
  }
});

test('a follower never appends a batch that fails its CRC: the answer is dropped and fetched again', async () => {
  const root = await mkdtemp(join(tmpdir(), 'runnel-replication-crc-'));
  roots.push(root);
  const good = batch(4);
  const stored = good.bytes.slice();
  new DataView(stored.buffer).setInt32(12, 1); // partitionLeaderEpoch 1, outside the CRC
  const corrupt = stored.slice();
  corrupt[corrupt.length - 3] ^= 0x10;
  let fetches = 0;
  const leaderServer = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: 9, warn: quiet });
  leaderServer.registerReplica(topic.topicId, 0, async (req) => {
    fetches++;
    const records = req.fetchOffset > 0 ? new Uint8Array(0) : fetches === 1 ? corrupt : stored;
    if (records.length === 0) await new Promise((r) => setTimeout(r, 50));
    return { leaderEpoch: 1, highWatermark: 4, logStartOffset: 0, logEndOffset: 4, divergingEpoch: null, records };
  });
  const { port } = await leaderServer.listen();
  const followerServer = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: 2, warn: quiet });
  await followerServer.listen();
  const links = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: 2, directory: { replicationAddress: (id) => (id === 9 ? { host: '127.0.0.1', port } : undefined) }, limits });
  const warnings: string[] = [];
  const log = await PartitionLog.open(join(root, 'f'), { isReplicated: true });
  const store: IsrStore = { alterIsr: async () => ({ ok: false, reason: 'unavailable' }) };
  const replica = new ReplicaPartition({ topic, partition: 0, minInsyncReplicas: 1, log, brokerId: 2, links, isrStore: store, server: followerServer, limits, warn: (m) => warnings.push(m) });
  try {
    await replica.applyLeadership({ topicId: topic.topicId, partition: 0, leader: 9, leaderEpoch: 1, isr: [9, 2], replicas: [9, 2], revision: '1' });
    await replica.waitForVisible(3, 10_000);
    assert.ok(fetches >= 2);
    assert.ok(warnings.some((w) => /failed its check \(CORRUPT_MESSAGE/.test(w)), warnings.join('\n'));
    assert.deepEqual(new Uint8Array(await logBytes(log)), stored, 'only the good copy was stored');
  } finally {
    await replica.close();
    links.close();
    await followerServer.close();
    await leaderServer.close();
  }
});

test('a high-watermark poll (maxBytes 0) is held until the high watermark passes knownHighWatermark, then answered with no records; its fetchOffset is not read from', async () => {
  const c = await Cluster.start();
  try {
    const leader = c.node(1);
    await produce(leader, 5);
    await until('follower 2 learns the high watermark', () => c.node(2).log.highWatermark === 5);
    let answered = false;
    const poll = c.node(2).links!.fetch(1, {
      topicId: topic.topicId, partition: 0, replicaId: 2, currentLeaderEpoch: leader.replica!.leaderEpoch, lastFetchedEpoch: leader.replica!.leaderEpoch,
      fetchOffset: 0, knownHighWatermark: 5, maxBytes: 0, maxWaitMs: 5000,
    }, 10_000).finally(() => { answered = true; });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(answered, false, 'held: records past fetchOffset 0 exist, but the high watermark has not passed 5');
    await produce(leader, 5);
    const answer = await poll;
    assert.equal(answer.records.length, 0);
    assert.equal(answer.highWatermark, 10);
  } finally {
    await c.close();
  }
});

test('a follower whose high-watermark poll carries the new high watermark gets no second, empty answer to its fetch: the fetch is held for data', async () => {
  const c = await Cluster.start();
  try {
    const leader = c.node(1);
    // Broker 2 is played by hand from here: its replica is closed, its links stay.
    await c.node(2).replica!.close();
    const links = c.node(2).links!;
    const epoch = leader.replica!.leaderEpoch;
    const request = (fetchOffset: number, knownHighWatermark: number, maxBytes: number) => links.fetch(1, {
      topicId: topic.topicId, partition: 0, replicaId: 2, currentLeaderEpoch: epoch, lastFetchedEpoch: epoch,
      fetchOffset, knownHighWatermark, maxBytes, maxWaitMs: 5000,
    }, 10_000);
    await produce(leader, 5, 1);
    await until('follower 3 has the batch', () => c.node(3).log.durableEndOffset === 5);
    assert.equal(leader.log.highWatermark, 0, 'broker 2 has not reported yet');
    const poll = request(0, 0, 0);
    await new Promise((r) => setTimeout(r, 50));
    // Broker 2 reports offset 5 durable: the high watermark moves to 5, which the held poll now carries.
    let fetchAnswered = false;
    const fetch = request(5, 0, 1 << 20).finally(() => { fetchAnswered = true; });
    const polled = await poll;
    assert.equal(polled.highWatermark, 5);
    assert.equal(polled.records.length, 0);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(fetchAnswered, false, 'held for data: the poll told broker 2 the high watermark');
    await produce(leader, 5, 1);
    const answer = await fetch;
    assert.equal(answer.records.length > 0, true, 'answered by the write, with its batch');
    assert.equal(answer.highWatermark, 5);
    // Without a poll in between, a fetch that does not know the high watermark is answered at once (nothing else tells it).
    const started = performance.now();
    const plain = await request(10, 0, 1 << 20);
    assert.ok(performance.now() - started < 250, 'answered at once');
    assert.equal(plain.records.length, 0);
    assert.ok(plain.highWatermark >= 5);
  } finally {
    await c.close();
  }
});

test('a leader fenced by a revision whose watch event never arrives reads the store again and resumes: the ISR shrinks and acks=-1 produce is served', async () => {
  const c = await Cluster.start();
  try {
    const leader = c.node(1);
    await produce(leader, 5);
    // The controller writes a new revision of the same leadership, and its watch event is lost.
    c.store.isWatchLost = true;
    c.store.touch();
    // The leader's next ISR change (follower 3 stops: it leaves after replicaLagTimeMs) is proposed against the revision it knows: fenced.
    await c.node(3).stop();
    await until('the leader was fenced', () => c.warnings.some((w) => /^1: fenced at epoch 1/.test(w)), 10_000);
    await until('the leader resumed and shrank the ISR', () => c.store.current.isr.join() === '1,2', 10_000);
    const r = await produce(leader, 5);
    assert.equal(r.lastOffset, 9);
    assert.equal(leader.replica!.role, 'leader');
  } finally {
    await c.close();
  }
});
