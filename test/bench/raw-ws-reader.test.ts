/**
 * The fan-out benchmark's raw reader counts exactly what the codec counts,
 * however TCP splits the stream: random RecordsFrames (several batches
 * each, 7- 16- and 64-bit WebSocket lengths) interleaved with other
 * messages and pings, cut at random points.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeFrame, encodeRecordBatch, encodeRecordsFrame } from '@runnel/client/codec';
import { RecordsCounter } from './raw-ws-reader.ts';

function serverFrame(payload: Uint8Array, opcode = 2): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126) head[0] = 0x80 | opcode;
  if (len >= 126 && len < 65536) { head[1] = 126; head.writeUInt16BE(len, 2); }
  if (len >= 65536) { head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2); }
  return Buffer.concat([head, payload]);
}

const message = fc.oneof(
  fc.record({
    kind: fc.constant('records' as const),
    topic: fc.string({ minLength: 1, maxLength: 40 }),
    batches: fc.array(fc.tuple(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 400 })), { minLength: 0, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('ping' as const), nonce: fc.nat() }),
  fc.record({ kind: fc.constant('wsPing' as const) }),
);

test('RecordsCounter counts the records of every RecordsFrame, across any TCP split', () => {
  fc.assert(fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), (messages, cuts) => {
    const expected: number[] = [];
    const expectedOther: number[] = [];
    const parts: Buffer[] = [];
    for (const m of messages) {
      if (m.kind === 'records') {
        const batches = m.batches.map(([count, size]) => encodeRecordBatch({ baseOffset: 0, baseTimestamp: 1, records: Array.from({ length: count }, () => ({ value: new Uint8Array(size) })) }));
        const frame = encodeRecordsFrame(m.topic, 0, 0, Buffer.concat(batches));
        parts.push(serverFrame(frame));
        expected.push(m.batches.reduce((n, [count]) => n + count, 0));
      } else if (m.kind === 'ping') {
        parts.push(serverFrame(encodeFrame({ type: 'pong', nonce: m.nonce })));
        expectedOther.push(2);
      } else {
        parts.push(serverFrame(new Uint8Array(0), 9));
        expectedOther.push(9);
      }
    }
    const stream = Buffer.concat(parts);
    const seen: number[] = [];
    const seenOther: number[] = [];
    const counter = new RecordsCounter({ records: (n) => seen.push(n), other: (opcode) => seenOther.push(opcode) });
    const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
    let from = 0;
    for (const p of [...points, stream.length]) {
      counter.push(stream.subarray(from, p));
      from = p;
    }
    assert.deepEqual(seen, expected);
    assert.deepEqual(seenOther, expectedOther);
  }), { numRuns: 300 });
});

test('RecordsCounter refuses a records frame whose batches overrun it (the count would be wrong)', () => {
  const batch = encodeRecordBatch({ baseOffset: 0, baseTimestamp: 1, records: [{ value: new Uint8Array(10) }] });
  const frame = Buffer.from(encodeRecordsFrame('t', 0, 0, batch.subarray(0, batch.length - 3)));
  const counter = new RecordsCounter({ records: () => {}, other: () => {} });
  assert.throws(() => counter.push(serverFrame(frame)), /ends inside a batch/);
});
