/** Zig-zag varints: round trips, Kafka's byte encodings, bounds and over-long input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { readVarint, readVarlong, varintSize, varlongSize, writeVarint, writeVarlong } from './varint.ts';

function encodeVarint(v: number): Uint8Array {
  const b = new Uint8Array(varintSize(v));
  assert.equal(writeVarint(b, 0, v), b.length);
  return b;
}
function encodeVarlong(v: number): Uint8Array {
  const b = new Uint8Array(varlongSize(v));
  assert.equal(writeVarlong(b, 0, v), b.length);
  return b;
}

test('Kafka zig-zag encodings (ByteUtilsTest vectors)', () => {
  assert.deepEqual([...encodeVarint(0)], [0x00]);
  assert.deepEqual([...encodeVarint(-1)], [0x01]);
  assert.deepEqual([...encodeVarint(1)], [0x02]);
  assert.deepEqual([...encodeVarint(63)], [0x7e]);
  assert.deepEqual([...encodeVarint(-64)], [0x7f]);
  assert.deepEqual([...encodeVarint(64)], [0x80, 0x01]);
  assert.deepEqual([...encodeVarint(2147483647)], [0xfe, 0xff, 0xff, 0xff, 0x0f]);
  assert.deepEqual([...encodeVarint(-2147483648)], [0xff, 0xff, 0xff, 0xff, 0x0f]);
  assert.deepEqual([...encodeVarlong(2 ** 32)], [0x80, 0x80, 0x80, 0x80, 0x20]);
  assert.deepEqual([...encodeVarlong(Number.MAX_SAFE_INTEGER)], [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f]);
  assert.deepEqual([...encodeVarlong(Number.MIN_SAFE_INTEGER)], [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f]);
});

test('varint round trip over int32', () => {
  fc.assert(fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (v) => {
    const b = encodeVarint(v);
    const cur = { pos: 0, end: b.length };
    assert.equal(readVarint(b, cur), v);
    assert.equal(cur.pos, b.length);
  }), { numRuns: 5000 });
});

test('varlong round trip over the safe-integer range', () => {
  fc.assert(fc.property(fc.maxSafeInteger(), (v) => {
    const b = encodeVarlong(v);
    const cur = { pos: 0, end: b.length };
    assert.equal(readVarlong(b, cur), v);
    assert.equal(cur.pos, b.length);
  }), { numRuns: 5000 });
});

test('truncated input returns NaN and leaves the cursor', () => {
  for (const v of [64, 1 << 20, -(2 ** 31)]) {
    const b = encodeVarint(v);
    for (let end = 0; end < b.length; end++) {
      const cur = { pos: 0, end };
      assert.ok(Number.isNaN(readVarint(b, cur)));
      assert.equal(cur.pos, 0);
    }
  }
  const big = encodeVarlong(2 ** 50);
  const cur = { pos: 0, end: big.length - 1 };
  assert.ok(Number.isNaN(readVarlong(big, cur)));
  assert.equal(cur.pos, 0);
});

test('over-long and too-wide encodings are rejected', () => {
  const six = new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
  assert.ok(Number.isNaN(readVarint(six, { pos: 0, end: 6 })));
  const wide = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x1f]); // 33 bits
  assert.ok(Number.isNaN(readVarint(wide, { pos: 0, end: 5 })));
  const eleven = new Uint8Array(11).fill(0x80);
  assert.ok(Number.isNaN(readVarlong(eleven, { pos: 0, end: 11 })));
  const unsafe = new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]); // 2^56 raw
  assert.ok(Number.isNaN(readVarlong(unsafe, { pos: 0, end: unsafe.length })));
});

test('never reads past cursor.end even when the array continues', () => {
  const b = new Uint8Array([0x80, 0x01]);
  assert.ok(Number.isNaN(readVarint(b, { pos: 0, end: 1 })));
  assert.ok(Number.isNaN(readVarlong(b, { pos: 0, end: 1 })));
});
