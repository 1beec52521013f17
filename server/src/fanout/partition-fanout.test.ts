/**
 * Fan-out + catch-up unit tests over an in-memory log and an in-memory
 * pub/sub (standing in for uWS): the catch-up → live hand-over never loses
 * or repeats an offset, even when appends complete while a catch-up read is
 * in flight (the race the channel-end check exists for), and credit is
 * never exceeded. Single-module test: the log and sockets are fakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeRecordsFrame, encodeRecordBatch, iterateBatches, setBaseOffset } from '@runnel/client/codec';
import { defaultLimits } from '../limits.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { Partition, VisibleBatch as AppendEvent } from '../partition/partition.ts';
import { CatchUpScheduler, fitFrames } from './catch-up.ts';
import { PartitionFanout } from './partition-fanout.ts';
import { Subscription, type SubscriberConnection } from './subscription.ts';

class MemoryLog {
  readonly batches: { base: number; end: number; bytes: Uint8Array }[] = [];
  highWatermark = 0;
  logStartOffset = 0;
  listeners = new Set<(e: AppendEvent) => void>();
  /** Runs inside every read, before it resolves: lets a test complete appends mid-read. */
  duringRead: () => void = () => {};

  append(records: number): void {
    const bytes = encodeRecordBatch({ baseTimestamp: 0, records: Array.from({ length: records }, () => ({ value: new Uint8Array([1, 2, 3]) })) });
    setBaseOffset(bytes, 0, this.highWatermark);
    const base = this.highWatermark;
    this.highWatermark += records;
    this.batches.push({ base, end: this.highWatermark, bytes });
    for (const l of this.listeners) l({ batch: bytes, baseOffset: base, lastOffset: this.highWatermark - 1, highWatermark: this.highWatermark });
  }

  onAppend(l: (e: AppendEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  async read(offset: number, maxBytes: number, opts: { maxOffset?: number }) {
    const maxOffset = opts.maxOffset ?? this.highWatermark;
    await Promise.resolve();
    this.duringRead();
    const parts: Uint8Array[] = [];
    let size = 0;
    let next = offset;
    for (const b of this.batches) {
      if (b.end <= offset || b.base >= maxOffset) continue;
      if (parts.length > 0 && size + b.bytes.length > maxBytes) break;
      parts.push(b.bytes);
      size += b.bytes.length;
      next = b.end;
    }
    const out = new Uint8Array(size);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return { batches: out, firstOffset: offset, nextOffset: next, highWatermark: this.highWatermark, logStartOffset: 0 };
  }
}

/** The `Partition` seam over a MemoryLog (only what fan-out uses is live; the rest refuses). */
function memoryPartition(topic: TopicInfo, log: MemoryLog): Partition {
  const unused = (): never => assert.fail('fan-out must not call this');
  return {
    topic, partition: 0, leaderEpoch: 0,
    get logStartOffset() { return log.logStartOffset; },
    get logEndOffset() { return log.highWatermark; },
    get highWatermark() { return log.highWatermark; },
    read: (offset, maxBytes, opts) => log.read(offset, maxBytes, opts ?? {}),
    onVisible: (listener) => log.onAppend(listener),
    append: unused, offsetForTimestamp: unused, producerState: unused, waitForVisible: unused, state: unused, close: unused,
  };
}

class MemoryConnection implements SubscriberConnection {
  readonly id = 1;
  isClosed = false;
  liveCount = 0;
  received: number[] = [];
  payloadBytes = 0;
  /** Payload bytes of each frame received. */
  frameBytes: number[] = [];
  channels = new Set<string>();
  /** Published frames not yet delivered (deferLive). */
  pending: Uint8Array[] = [];
  drainPending(): void {
    for (const f of this.pending.splice(0)) this.deliver(f);
  }
  send(frame: Uint8Array): boolean {
    this.drainPending();
    return this.deliver(frame);
  }
  deliver(frame: Uint8Array): boolean {
    const f = decodeRecordsFrame(frame);
    assert.ok(f.ok);
    this.payloadBytes += f.value.batches.length;
    this.frameBytes.push(f.value.batches.length);
    for (const b of iterateBatches(f.value.batches)) {
      assert.ok(b.ok);
      for (let i = 0; i < b.value.header.recordCount; i++) this.received.push(b.value.header.baseOffset + i);
    }
    return true;
  }
  bufferedAmount(): number { return 0; }
  subscribeChannel(c: string): void { this.channels.add(c); }
  unsubscribeChannel(c: string): void { this.channels.delete(c); }
  roomBytes(): number { return 1e9; }
  notePaused(): void {}
  subscriptionFailed(): void { assert.fail('subscription failed'); }
}

/**
 * `deferLive` models uWS: a published frame reaches a socket at the end of
 * the tick or before that socket's next direct send, even when it left the
 * channel meanwhile (uws-session-socket.ts guarantees the latter).
 */
function setup(limits = { ...defaultLimits, maxConcurrentCatchUpReads: 2, catchUpReadBytes: 300 }, deferLive = false) {
  const log = new MemoryLog();
  const conns: MemoryConnection[] = [];
  const scheduler = new CatchUpScheduler(limits);
  const info = { name: 't', topicId: 'id', partitions: 1, replicationFactor: 1, retentionMs: -1, retentionBytes: -1, createdAtMs: 0 };
  const fanout = new PartitionFanout(memoryPartition(info, log), {
    limits,
    publish: (channel, frame) => {
      for (const c of conns) {
        if (!c.channels.has(channel)) continue;
        if (!deferLive) c.send(frame);
        else if (c.pending.push(frame) === 1) setImmediate(() => c.drainPending());
      }
    },
    enqueueCatchUp: (sub) => scheduler.enqueue(sub),
  });
  log.onAppend((e) => fanout.handleAppend(e));
  return { log, conns, fanout };
}

const settle = async (): Promise<void> => { for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r)); };

test('an append completing during a catch-up read is delivered once, after the read, in order', async () => {
  const { log, conns, fanout } = setup();
  for (let i = 0; i < 20; i++) log.append(2);
  const conn = new MemoryConnection();
  conns.push(conn);
  let raced = 0;
  log.duringRead = () => { if (raced++ < 3) log.append(1); };
  const sub = new Subscription(conn, fanout, 0, 1e9);
  fanout.add(sub);
  await settle();
  assert.equal(raced > 3, true, 'appends happened during reads');
  log.append(5); // live now
  await settle();
  assert.deepEqual(conn.received, Array.from({ length: log.highWatermark }, (_, i) => i));
  assert.equal(fanout.live.has(sub), true, 'joined the live channel');
});

test('property: any interleaving of appends, reads and credit grants delivers a gap-free, duplicate-free prefix within credit', async () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('append' as const), records: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('credit' as const), who: fc.integer({ min: 0, max: 2 }), bytes: fc.integer({ min: 50, max: 400 }) }),
    fc.record({ kind: fc.constant('tick' as const) }),
  );
  await fc.assert(fc.asyncProperty(
    fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 3, maxLength: 3 }),
    fc.array(step, { maxLength: 60 }),
    fc.array(fc.boolean(), { maxLength: 30 }),
    fc.integer({ min: 1, max: 400 }),
    async (startBatches, steps, raceDuringRead, catchUpFrameBytes) => {
      const { log, conns, fanout } = setup({ ...defaultLimits, maxConcurrentCatchUpReads: 2, catchUpReadBytes: 300, catchUpFrameBytes });
      for (let i = 0; i < 6; i++) log.append(2);
      let readNo = 0;
      log.duringRead = () => { if (raceDuringRead[readNo++ % Math.max(1, raceDuringRead.length)]) log.append(1); };
      const granted: number[] = [];
      const subs = startBatches.map((b, i) => {
        const conn = new MemoryConnection();
        conns.push(conn);
        granted[i] = 200;
        const sub = new Subscription(conn, fanout, Math.min(b * 2, log.highWatermark), 200);
        fanout.add(sub);
        return sub;
      });
      for (const s of steps) {
        if (s.kind === 'append') log.append(s.records);
        else if (s.kind === 'credit') { granted[s.who] += s.bytes; fanout.addCredit(subs[s.who], s.bytes); }
        else await settle();
      }
      await settle();
      subs.forEach((sub, i) => {
        const conn = sub.connection as MemoryConnection;
        const start = Math.min(startBatches[i] * 2, 12);
        assert.deepEqual(conn.received, Array.from({ length: conn.received.length }, (_, k) => start + k), 'contiguous, no duplicates');
        assert.ok(conn.payloadBytes <= granted[i], `credit exceeded: ${conn.payloadBytes} > ${granted[i]}`);
      });
    },
  ), { numRuns: 150 });
});

test('property: subscribers that grant back what they receive (autoCredit) are always served up to the high watermark', async () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('append' as const), records: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('tick' as const) }),
  );
  await fc.assert(fc.asyncProperty(
    fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 3, maxLength: 3 }),
    fc.array(step, { maxLength: 80 }),
    fc.array(fc.boolean(), { maxLength: 30 }),
    fc.boolean(),
    fc.integer({ min: 1, max: 400 }),
    async (startBatches, steps, raceDuringRead, deferLive, catchUpFrameBytes) => {
      const { log, conns, fanout } = setup({ ...defaultLimits, maxConcurrentCatchUpReads: 2, catchUpReadBytes: 300, catchUpFrameBytes }, deferLive);
      for (let i = 0; i < 6; i++) log.append(2);
      let readNo = 0;
      log.duringRead = () => { if (raceDuringRead[readNo++]) log.append(1); }; // bounded: a producer that outruns every read forever is not a stall
      const subs = startBatches.map((b) => {
        const conn = new MemoryConnection();
        conns.push(conn);
        // Credit for ~2 batches, granted back one round trip after each frame arrives (test/broker/harness.ts autoCredit).
        const sub = new Subscription(conn, fanout, Math.min(b * 2, log.highWatermark), 200);
        const deliver = conn.deliver.bind(conn);
        conn.deliver = (frame) => {
          const before = conn.payloadBytes;
          deliver(frame);
          setImmediate(() => fanout.addCredit(sub, conn.payloadBytes - before));
          return true;
        };
        fanout.add(sub);
        return sub;
      });
      for (const s of steps) {
        if (s.kind === 'append') log.append(s.records);
        else await settle();
      }
      await settle();
      subs.forEach((sub, i) => {
        const conn = sub.connection as MemoryConnection;
        const start = Math.min(startBatches[i] * 2, 12);
        assert.deepEqual(conn.received, Array.from({ length: log.highWatermark - start }, (_, k) => start + k), `subscriber ${i} served to the high watermark`);
      });
    },
  ), { numRuns: 150 });
});

test('fitFrames: whole batches, in order, each frame at most maxFrameBytes unless one batch is larger; a catch-up read goes out as such frames', async () => {
  const log = new MemoryLog();
  for (const n of [1, 2, 3, 30, 1]) log.append(n);
  const all = (await log.read(0, 1e9, {})).batches;
  const sizes = log.batches.map((b) => b.bytes.length);
  const big = sizes[3];
  const frames = fitFrames(all, Infinity, Infinity, sizes[0] + sizes[1]);
  assert.deepEqual(frames.map((f) => f.bytes), [sizes[0] + sizes[1], sizes[2], big, sizes[4]]);
  assert.deepEqual(frames.map((f) => f.records), [3, 3, 30, 1]);
  assert.deepEqual(frames.map((f) => f.nextOffset), [3, 6, 36, 37]);
  assert.deepEqual(fitFrames(all, Infinity, Infinity, 1e9).map((f) => f.bytes), [all.length], 'one frame when it fits');
  assert.deepEqual(fitFrames(all.subarray(0, 0), Infinity, Infinity, 100), []);
  assert.deepEqual(fitFrames(all, sizes[0] + sizes[1] + sizes[2] - 1, Infinity, 1e9).map((f) => f.bytes), [sizes[0] + sizes[1]], 'within the credit');
  assert.deepEqual(fitFrames(all, Infinity, 3, 1e9).map((f) => f.nextOffset), [3], 'below the end');
  assert.deepEqual(fitFrames(all, sizes[0] - 1, Infinity, 1e9), [], 'nothing when the first batch does not fit');

  // Through the scheduler: one read of everything, several frames, the same offsets.
  const { log: l2, conns, fanout } = setup({ ...defaultLimits, maxConcurrentCatchUpReads: 2, catchUpReadBytes: 1e9, catchUpFrameBytes: sizes[0] + sizes[1] });
  for (const n of [1, 2, 3, 30, 1]) l2.append(n);
  const conn = new MemoryConnection();
  conns.push(conn);
  fanout.add(new Subscription(conn, fanout, 0, 1e9));
  await settle();
  assert.deepEqual(conn.received, Array.from({ length: 37 }, (_, i) => i));
  assert.deepEqual(conn.frameBytes, [sizes[0] + sizes[1], sizes[2], big, sizes[4]]);
});
