/** CRC-32C: known vectors (RFC 3720 appendix B.4) and equality with the native @node-rs/crc32. */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32c, crc32cUpdate } from './crc32c.ts';

const ascii = (s: string) => new TextEncoder().encode(s);

test('known vectors', () => {
  assert.equal(crc32c(ascii('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720: 32 bytes of zeros
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43); // RFC 3720: 32 bytes of 0xff
  const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(crc32c(ascending), 0x46dd794e); // RFC 3720: 0x00..0x1f
});

test('start/end select a range; the streaming form composes', () => {
  const data = ascii('xx123456789yy');
  assert.equal(crc32c(data, 2, 11), 0xe3069283);
  const state = crc32cUpdate(crc32cUpdate(-1, data, 2, 6), data, 6, 11);
  assert.equal(~state >>> 0, 0xe3069283);
});

test('equals @node-rs/crc32 on random data of every length alignment', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(16), (data, cut) => {
      const start = Math.min(cut, data.length);
      const expected = nativeCrc32c(Buffer.from(data.buffer, data.byteOffset + start, data.length - start));
      assert.equal(crc32c(data, start), expected >>> 0);
    }),
    { numRuns: 2000 },
  );
});

test('a view into a larger buffer (at least two 16-byte words): the words are read at the view\'s own offset', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 33, maxLength: 300 }), fc.nat(7), fc.nat(16), (data, pad, cut) => {
      const backing = new Uint8Array(pad + data.length + 5).fill(0xa5);
      backing.set(data, pad);
      const view = backing.subarray(pad, pad + data.length);
      const start = Math.min(cut, data.length);
      assert.equal(crc32c(view, start), nativeCrc32c(Buffer.from(data.subarray(start))) >>> 0);
    }),
    { numRuns: 2000 },
  );
});

test('equals @node-rs/crc32 on 1 MiB', () => {
  const data = new Uint8Array(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  assert.equal(crc32c(data), nativeCrc32c(Buffer.from(data.buffer)) >>> 0);
});
