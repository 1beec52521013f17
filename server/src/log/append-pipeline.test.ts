import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppendPipeline, type AckReady, type PendingAppend } from './append-pipeline.ts';

type Step =
  | { kind: 'assign'; records: number; isNewSegment: boolean }
  | { kind: 'write' }
  | { kind: 'sync' }
  | { kind: 'limit'; offset: number }
  | { kind: 'ack' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('assign' as const), records: fc.integer({ min: 1, max: 3 }), isNewSegment: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'write' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'sync' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('limit' as const), offset: fc.nat(60) }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'ack' as const }) },
);

/** Drives the pure core as log-writer.ts does, checking every Ready against the ordering contract. */
function drive(isDurable: boolean, startOffset: number, steps: Step[]) {
  const pipeline = new AppendPipeline<number>(startOffset, isDurable);
  let writeSegment = 0;
  let lastSegment = 0;
  let lastHighWatermark = startOffset;
  let limit: number | null = null;
  const appends: PendingAppend<number>[] = [];
  const written: number[] = [];
  const visible: number[] = [];
  const acked: number[] = [];
  const perform = (ack: AckReady) => {
    assert.ok(ack.highWatermark >= lastHighWatermark, 'high watermark is monotonic');
    assert.ok(ack.highWatermark <= ack.ackEnd && ack.ackEnd <= pipeline.writtenEnd && pipeline.writtenEnd <= pipeline.assignedEnd, 'hw <= ackEnd <= written <= assigned');
    if (isDurable) assert.equal(ack.ackEnd, ack.durableEnd, 'durable mode acknowledges only fdatasync-covered offsets');
    // The high watermark never moves back: a limit below it only bounds later moves.
    if (limit !== null && ack.highWatermark > lastHighWatermark) assert.ok(ack.highWatermark <= limit, 'never moved above the replicated limit');
    lastHighWatermark = ack.highWatermark;
    assert.equal(ack.visibleFrom, visible.length, 'visible batches continue where the last Ready stopped');
    for (let i = ack.visibleFrom; i < ack.visibleTo; i++) {
      assert.ok(pipeline.at(i).result.lastOffset < ack.highWatermark, 'consumers never see offsets >= highWatermark');
      visible.push(pipeline.at(i).result.baseOffset);
    }
    assert.equal(ack.ackedFrom, acked.length);
    for (let i = ack.ackedFrom; i < ack.ackedTo; i++) {
      assert.ok(pipeline.at(i).result.lastOffset < ack.ackEnd && written.includes(pipeline.at(i).result.baseOffset), 'ack only after the write (and fdatasync) covers it');
      acked.push(pipeline.at(i).result.baseOffset);
    }
    pipeline.advance(ack);
  };
  const write = () => {
    const step = pipeline.nextWrite(writeSegment);
    if (!step) return false;
    if (step.kind === 'roll') {
      assert.ok(step.segment > writeSegment, 'rolls go forward');
      pipeline.markWrittenDurable();
      writeSegment = step.segment;
      return true;
    }
    const next = appends.slice(written.length, written.length + step.chunks.length);
    assert.deepEqual(step.chunks, next.map((p) => p.batch), 'one vectored write of the next unwritten batches, in offset order');
    assert.ok(next.every((p) => p.segment === writeSegment), 'every chunk belongs to the write segment');
    assert.equal(step.endOffset, next[next.length - 1].result.lastOffset + 1);
    assert.equal(pipeline.nextWrite(writeSegment), null, 'one write in flight');
    pipeline.onWritten();
    written.push(...next.map((p) => p.result.baseOffset));
    return true;
  };
  for (const step of steps) {
    if (step.kind === 'assign') {
      if (step.isNewSegment) lastSegment++;
      const baseOffset = pipeline.assignedEnd;
      const result = { baseOffset, lastOffset: baseOffset + step.records - 1, logAppendTimeMs: 0, duplicate: false };
      const p: PendingAppend<number> = { batch: new Uint8Array([baseOffset & 0xff]), segment: lastSegment, result, resolve: () => {}, reject: () => {} };
      appends.push(p);
      pipeline.assign(p);
    } else if (step.kind === 'write') {
      write();
    } else if (step.kind === 'sync') {
      if (pipeline.startSync() !== null) pipeline.onSynced();
    } else if (step.kind === 'limit') {
      limit = Math.max(limit ?? 0, step.offset);
      pipeline.setHighWatermarkLimit(step.offset);
    } else {
      perform(pipeline.ready());
    }
  }
  // Drain: everything written, synced, the limit lifted: every append becomes visible and acknowledged, once, in order.
  while (write());
  if (pipeline.startSync() !== null) pipeline.onSynced();
  limit = pipeline.assignedEnd;
  pipeline.setHighWatermarkLimit(limit);
  perform(pipeline.ready());
  const all = appends.map((p) => p.result.baseOffset);
  assert.deepEqual(visible, all);
  assert.deepEqual(acked, all);
  assert.equal(pipeline.pendingCount, 0);
  assert.equal(pipeline.highWatermark, pipeline.assignedEnd);
}

test('property: writes, visibility and acks follow the AckReady/WriteReady contract (durable and flush-interval modes)', () => {
  fc.assert(fc.property(fc.boolean(), fc.nat(1000), fc.array(stepArb, { maxLength: 80 }), (isDurable, start, steps) => drive(isDurable, start, steps)), { numRuns: 500 });
});

test('failPending hands back every unacknowledged append once; advance of a stale Ready is refused', () => {
  const pipeline = new AppendPipeline<number>(0, true);
  for (let i = 0; i < 3; i++) {
    const result = { baseOffset: i, lastOffset: i, logAppendTimeMs: 0, duplicate: false };
    pipeline.assign({ batch: new Uint8Array(1), segment: 0, result, resolve: () => {}, reject: () => {} });
  }
  const write = pipeline.nextWrite(0);
  assert.equal(write?.kind === 'write' && write.chunks.length, 3);
  pipeline.onWritten();
  assert.equal(pipeline.startSync(), 3);
  pipeline.onSynced();
  const ack = pipeline.ready();
  assert.deepEqual([ack.ackedFrom, ack.ackedTo, ack.highWatermark], [0, 3, 3]);
  const stale = pipeline.ready();
  pipeline.advance(ack);
  assert.throws(() => pipeline.advance(stale), /stale/);
  const result = { baseOffset: 3, lastOffset: 4, logAppendTimeMs: 0, duplicate: false };
  pipeline.assign({ batch: new Uint8Array(1), segment: 0, result, resolve: () => {}, reject: () => {} });
  assert.deepEqual(pipeline.failPending(), { from: 3, to: 4 });
  assert.equal(pipeline.pendingCount, 0);
  assert.throws(() => pipeline.assign({ batch: new Uint8Array(1), segment: 0, result, resolve: () => {}, reject: () => {} }), /contiguous/);
});

test('regression: a replicated limit below the current high watermark does not move it back', () => {
  assert.doesNotThrow(() => drive(false, 0, [{ kind: 'assign', records: 1, isNewSegment: false }, { kind: 'write' }, { kind: 'ack' }, { kind: 'limit', offset: 0 }, { kind: 'ack' }]));
});
