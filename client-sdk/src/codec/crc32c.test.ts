/**
 * CRC-32C: known vectors (RFC 3720 appendix B.4); the pure-JS loop (`crc32cUpdate`) equals the native
 * @node-rs/crc32; `crc32c`, which hands ranges of 256 B or more to the native one in Node (`#native-crc32c`),
 * equals the JS loop on every length and offset either side of that threshold.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { nativeCrc32c as loadedNative } from '#native-crc32c';
import { crc32c, crc32cUpdate } from './crc32c.ts';

const js = (b: Uint8Array, start = 0, end = b.length) => ~crc32cUpdate(-1, b, start, end) >>> 0;

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

test('the JS loop equals @node-rs/crc32 on random data of every length alignment', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(16), (data, cut) => {
      const start = Math.min(cut, data.length);
      const expected = nativeCrc32c(Buffer.from(data.buffer, data.byteOffset + start, data.length - start));
      assert.equal(js(data, start), expected >>> 0);
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
      assert.equal(js(view, start), nativeCrc32c(Buffer.from(data.subarray(start))) >>> 0);
    }),
    { numRuns: 2000 },
  );
});

test('the JS loop and crc32c equal @node-rs/crc32 on 1 MiB', () => {
  const data = new Uint8Array(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  assert.equal(js(data), nativeCrc32c(Buffer.from(data.buffer)) >>> 0);
  assert.equal(crc32c(data), js(data));
});

test('in Node with @node-rs/crc32 installed, #native-crc32c loads it; crc32c equals the JS loop on ranges of a view either side of 256 B', () => {
  assert.ok(loadedNative !== null, '#native-crc32c did not load @node-rs/crc32');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 200, max: 320 }), fc.nat(0xffffffff), (at, length, seed) => {
      const backing = new Uint8Array(at + length + 7);
      for (let i = 0, x = seed | 1; i < backing.length; i++) backing[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      const view = backing.subarray(3);
      assert.equal(crc32c(view, at, at + length), js(view, at, at + length));
      assert.equal(loadedNative!(view, at, at + length), js(view, at, at + length));
    }),
    { numRuns: 2000 },
  );
});
