/**
 * FollowerRole against a scripted leader (the answers a leader sends, as data) on real logs:
 * the order in which a follower makes fetched records durable and visible.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RunnelError } from '@runnel/client/codec';
import { PartitionLog } from '../log/partition-log.ts';
import { FollowerRole } from './follower.ts';
import { resolveReplicationLimits } from './limits.ts';
import type { PeerLinks } from './peer-links.ts';
import type { FetchRequest, FetchResponse } from './protocol.ts';
import { batch, quiet } from './testing/replica-cluster.ts';

const roots: string[] = [];
after(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'runnel-follower-'));
  roots.push(d);
  return d;
}

test('the high watermark of an answer makes what the follower already holds durably visible before that answer\'s batches are written: a consumer of a follower does not wait for one more follower fdatasync', async () => {
  // The leader's log, for stored batch bytes (offsets and epoch as a leader assigns them).
  const leaderLog = await PartitionLog.open(join(await tempDir(), 'leader'), { isReplicated: true });
  const a = batch(5);
  const b = batch(5, { tag: 2 });
  await leaderLog.append(a.bytes, { leaderEpoch: 1, header: a.header });
  await leaderLog.append(b.bytes, { leaderEpoch: 1, header: b.header });
  const first = await leaderLog.read(0, 1, { maxOffset: 5 });
  const second = await leaderLog.read(5, 1, { maxOffset: 10 });
  assert.equal(first.nextOffset, 5);
  assert.equal(second.nextOffset, 10);
  await leaderLog.close();

  const log = await PartitionLog.open(join(await tempDir(), 'follower'), { isReplicated: true });
  const answer = (records: Uint8Array, highWatermark: number, logEndOffset: number): FetchResponse => ({ leaderEpoch: 1, highWatermark, logStartOffset: 0, logEndOffset, divergingEpoch: null, records });
  // 1st answer: batch [0, 5), high watermark 0; 2nd: batch [5, 10) and high watermark 5 (the leader learned [0, 5) is
  // durable on every ISR member); then nothing until the role stops.
  const answers = [answer(first.batches, 0, 5), answer(second.batches, 5, 10)];
  const requests: FetchRequest[] = [];
  const links = {
    fetch(_leader: number, request: FetchRequest, _timeoutMs: number, signal: AbortSignal): Promise<FetchResponse> {
      // High-watermark polls (maxBytes 0) are held for good here: only fetch answers move this follower.
      if (request.maxBytes === 0) return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new RunnelError('ABORTED', 'stopped')), { once: true }));
      requests.push(request);
      const next = answers.shift();
      if (next) return Promise.resolve(next);
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new RunnelError('ABORTED', 'stopped')), { once: true }));
    },
  } as unknown as PeerLinks;
  const durableEndWhenVisible: number[] = [];
  log.onAppend((e) => { if (e.baseOffset === 0) durableEndWhenVisible.push(log.durableEndOffset); });
  const role = new FollowerRole({ brokerId: 2, leaderId: 1, leaderEpoch: 1, topicId: 't', partition: 0, log, links, limits: resolveReplicationLimits(), warn: quiet });
  role.start();
  try {
    const deadline = Date.now() + 10_000;
    while (requests.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(requests.length, 3, 'the third fetch is sent');
    assert.deepEqual(requests.map((r) => r.fetchOffset), [0, 5, 10], 'each fetch reports the durable end (sent only once the previous answer is fdatasync\'ed)');
    assert.equal(requests[2].knownHighWatermark, 5);
    assert.deepEqual(durableEndWhenVisible, [5], '[0, 5) became visible while [5, 10) was not yet durable here');
    assert.equal(log.highWatermark, 5, 'capped at the leader\'s high watermark');
  } finally {
    await role.stop();
    await log.close();
  }
});

test('while it writes an answer\'s batches the follower polls the high watermark (maxBytes 0, at most one in flight): a high watermark the other ISR members moved meanwhile is applied from the poll, with no further fetch answer', async () => {
  const leaderLog = await PartitionLog.open(join(await tempDir(), 'leader'), { isReplicated: true });
  const a = batch(5);
  await leaderLog.append(a.bytes, { leaderEpoch: 1, header: a.header });
  const first = await leaderLog.read(0, 1, { maxOffset: 5 });
  await leaderLog.close();

  const log = await PartitionLog.open(join(await tempDir(), 'follower'), { isReplicated: true });
  const requests: FetchRequest[] = [];
  let answerPoll: (hw: number) => void = () => {};
  let fetches = 0;
  const never = (signal: AbortSignal) => new Promise<FetchResponse>((_, reject) => signal.addEventListener('abort', () => reject(new RunnelError('ABORTED', 'stopped')), { once: true }));
  const links = {
    fetch(_leader: number, request: FetchRequest, _timeoutMs: number, signal: AbortSignal): Promise<FetchResponse> {
      requests.push(request);
      const answer = (records: Uint8Array, highWatermark: number): FetchResponse => ({ leaderEpoch: 1, highWatermark, logStartOffset: 0, logEndOffset: 5, divergingEpoch: null, records });
      if (request.maxBytes === 0) return new Promise((resolve) => { answerPoll = (hw) => resolve(answer(new Uint8Array(0), hw)); });
      // The first fetch gets [0, 5) with high watermark 0; the next is held for good (no new data at the leader).
      return fetches++ === 0 ? Promise.resolve(answer(first.batches, 0)) : never(signal);
    },
  } as unknown as PeerLinks;
  const role = new FollowerRole({ brokerId: 2, leaderId: 1, leaderEpoch: 1, topicId: 't', partition: 0, log, links, limits: resolveReplicationLimits(), warn: quiet });
  role.start();
  try {
    const deadline = Date.now() + 10_000;
    while (requests.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(requests.map((r) => [r.maxBytes === 0 ? 'poll' : 'fetch', r.fetchOffset, r.knownHighWatermark]), [['fetch', 0, 0], ['poll', 0, 0], ['fetch', 5, 0]],
      'the poll goes out with the position already reported, before the next fetch (which waits for the fdatasync)');
    assert.equal(log.highWatermark, 0);
    answerPoll(5);
    while (log.highWatermark < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(log.highWatermark, 5, 'applied from the poll; the held fetch is still unanswered');
    assert.equal(requests.length, 3, 'a poll answer starts no fetch or poll of its own');
  } finally {
    await role.stop();
    await log.close();
  }
});
