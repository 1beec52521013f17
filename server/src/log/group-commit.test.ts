import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GroupCommit } from './group-commit.ts';

test('any interleaving keeps durableEnd <= writtenEnd <= assignedEnd and never marks unsynced data durable (property)', () => {
  const op = fc.constantFrom('assign', 'startWrite', 'finishWrite', 'startSync', 'finishSync');
  fc.assert(fc.property(fc.array(fc.tuple(op, fc.integer({ min: 1, max: 1000 })), { maxLength: 300 }), (ops) => {
    const gc = new GroupCommit(0);
    let writing: number | null = null;
    let syncing: number | null = null;
    let syncedForReal = 0;
    for (const [kind, n] of ops) {
      if (kind === 'assign') gc.onAssigned(gc.assignedEnd + n);
      if (kind === 'startWrite' && gc.startWrite()) writing = gc.assignedEnd;
      if (kind === 'finishWrite' && writing !== null) { gc.onWritten(writing); writing = null; }
      if (kind === 'startSync') { const t = gc.startSync(); if (t !== null) { assert.equal(syncing, null); syncing = t; } }
      if (kind === 'finishSync' && syncing !== null) { syncedForReal = syncing; assert.equal(gc.onSynced(), syncing); syncing = null; }
      assert.ok(gc.durableEnd <= gc.writtenEnd && gc.writtenEnd <= gc.assignedEnd);
      assert.ok(gc.durableEnd <= syncedForReal || gc.durableEnd === 0);
    }
  }));
});

test('appends arriving during a write and an fdatasync share the next ones', () => {
  const gc = new GroupCommit(10);
  gc.onAssigned(11);
  assert.ok(gc.startWrite());
  gc.onAssigned(12);
  gc.onAssigned(15);
  assert.equal(gc.startWrite(), false, 'one write at a time');
  gc.onWritten(11);
  assert.equal(gc.startSync(), 11);
  assert.ok(gc.startWrite(), 'the next write overlaps the fdatasync');
  gc.onWritten(15);
  assert.equal(gc.startSync(), null, 'one fdatasync at a time');
  assert.equal(gc.onSynced(), 11);
  assert.equal(gc.startSync(), 15, 'both queued appends share one fdatasync');
  assert.equal(gc.onSynced(), 15);
  assert.ok(gc.isIdle);
  assert.throws(() => gc.onSynced(), RangeError);
});
