/**
 * readUtf8Lenient (the consumer's value/key decoder) must equal TextDecoder on any bytes, on all of its paths: the
 * ASCII loop, TextDecoder, and Node's Buffer.utf8Slice for the Buffers `ws` hands the SDK in Node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readUtf8Lenient } from './utf8.ts';

const reference = new TextDecoder();

test('readUtf8Lenient equals TextDecoder.decode on ranges of arbitrary bytes (ASCII, UTF-8, invalid, BOM, long), in a Uint8Array and in a Buffer', () => {
  const ascii = fc.uint8Array({ maxLength: 400 }).map((b) => b.map((x) => x & 0x7f));
  const text = fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => new TextEncoder().encode(`\ufeff${s}`));
  fc.assert(fc.property(fc.oneof(ascii, text, fc.uint8Array({ maxLength: 400 })), fc.nat(), fc.nat(), (bytes, a, b) => {
    const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
    const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
    const expected = reference.decode(bytes.subarray(start, end));
    assert.equal(readUtf8Lenient(bytes, start, end), expected);
    assert.equal(readUtf8Lenient(Buffer.from(bytes), start, end), expected, 'Buffer');
  }), { numRuns: 4000 });
});
