/** `checkProducedHeader`: what a client may not set in a produced batch (issue 11 finding 5). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordBatch, readBatchHeader, type BatchHeader } from '@runnel/client/codec';
import { defaultLimits } from '../limits.ts';
import { checkProducedHeader } from './broker.ts';

const now = 1_800_000_000_000;
const header = (over: Partial<BatchHeader> = {}): BatchHeader => {
  const h = readBatchHeader(encodeRecordBatch({ baseTimestamp: now, records: [{ value: new Uint8Array([1]) }, { value: new Uint8Array([2]) }] }));
  assert.ok(h.ok);
  return { ...h.value, ...over };
};
const refused = (h: BatchHeader, name: string) => assert.throws(() => checkProducedHeader(h, defaultLimits, now), (e: { errorName?: string }) => e.errorName === name);

test('a batch as the SDK encodes it passes', () => {
  checkProducedHeader(header(), defaultLimits, now);
  checkProducedHeader(header({ baseTimestamp: -1, maxTimestamp: -1 }), defaultLimits, now);
});

test('an offset span other than its record count is INVALID_RECORD (2^31-1 with one record moved the log end by 2^31)', () => {
  refused(header({ lastOffsetDelta: 2 ** 31 - 1 }), 'INVALID_RECORD');
  refused(header({ lastOffsetDelta: 0 }), 'INVALID_RECORD');
});

test('transactional and control bits are INVALID_RECORD', () => {
  refused(header({ attributes: 0x10 }), 'INVALID_RECORD');
  refused(header({ attributes: 0x20 }), 'INVALID_RECORD');
});

test('timestamps of 1970 or year 255,000 are INVALID_TIMESTAMP; inside the window they pass', () => {
  refused(header({ baseTimestamp: 0, maxTimestamp: 0 }), 'INVALID_TIMESTAMP');
  refused(header({ maxTimestamp: 255_000 * 365 * 24 * 3600 * 1000 }), 'INVALID_TIMESTAMP');
  refused(header({ maxTimestamp: now + defaultLimits.maxTimestampAfterMs + 1 }), 'INVALID_TIMESTAMP');
  checkProducedHeader(header({ baseTimestamp: now - defaultLimits.maxTimestampBeforeMs, maxTimestamp: now + defaultLimits.maxTimestampAfterMs }), defaultLimits, now);
});
