import { test } from 'node:test';
import assert from 'node:assert/strict';
import { segmentsToDelete, shouldRoll } from './retention.ts';

const limits = { maxSegmentBytes: 1000, segmentMs: 60_000 };

test('shouldRoll: size, age, relative-offset overflow; an empty segment never rolls', () => {
  const cases: [string, Parameters<typeof shouldRoll>, boolean][] = [
    ['empty segment, huge batch', [{ baseOffset: 0, sizeBytes: 0, createdMs: 0 }, 5000, 0, limits, 1e9], false],
    ['fits', [{ baseOffset: 0, sizeBytes: 500, createdMs: 0 }, 500, 10, limits, 1], false],
    ['would pass max size', [{ baseOffset: 0, sizeBytes: 500, createdMs: 0 }, 501, 10, limits, 1], true],
    ['too old', [{ baseOffset: 0, sizeBytes: 1, createdMs: 0 }, 1, 10, limits, 60_000], true],
    ['relative offset overflow', [{ baseOffset: 0, sizeBytes: 1, createdMs: 0 }, 1, 2 ** 32, limits, 1], true],
  ];
  for (const [name, args, want] of cases) assert.equal(shouldRoll(...args), want, name);
});

test('segmentsToDelete: by time, by size, never the active segment, -1 disables', () => {
  const segs = [
    { sizeBytes: 100, lastModifiedMs: 1000 },
    { sizeBytes: 100, lastModifiedMs: 2000 },
    { sizeBytes: 100, lastModifiedMs: 3000 },
    { sizeBytes: 10, lastModifiedMs: 1 }, // active: never deleted, even if old
  ];
  const cases: [string, { retentionBytes: number; retentionMs: number }, number, number][] = [
    ['nothing configured', { retentionBytes: -1, retentionMs: -1 }, 1e9, 0],
    ['time: two expired', { retentionBytes: -1, retentionMs: 500 }, 2600, 2],
    ['time: stops at the first young segment', { retentionBytes: -1, retentionMs: 500 }, 1600, 1],
    ['time: all old but active kept', { retentionBytes: -1, retentionMs: 0 }, 1e9, 3],
    ['size: keep >= 210 bytes', { retentionBytes: 210, retentionMs: -1 }, 0, 1],
    ['size: keep >= 110 bytes', { retentionBytes: 110, retentionMs: -1 }, 0, 2],
    ['size: 0 keeps only active', { retentionBytes: 0, retentionMs: -1 }, 0, 3],
    ['max of both rules', { retentionBytes: 210, retentionMs: 500 }, 2600, 2],
  ];
  for (const [name, retention, now, want] of cases) assert.equal(segmentsToDelete(segs, retention, now), want, name);
});
