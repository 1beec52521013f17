import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  checkProducer, etagOf, formatOffset, generationFrom, ifNoneMatchHits, isTrueHeader, jsonMessages, nextCursor, parseExpiry, parseOffset,
  parseProducer, sseDataLines,
} from './protocol.ts';

const gen = generationFrom(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));

test('offsets: string order is position order, and they parse back', () => {
  fc.assert(fc.property(fc.nat(2 ** 40), fc.nat(2 ** 40), (a, b) => {
    const [x, y] = [formatOffset(gen, a), formatOffset(gen, b)];
    assert.equal(Math.sign(x < y ? -1 : x > y ? 1 : 0), Math.sign(a - b));
    assert.deepEqual(parseOffset(x), { kind: 'position', generation: gen, position: a });
  }));
  assert.equal(gen.length, 16);
  assert.deepEqual(parseOffset('-1'), { kind: 'start' });
  assert.deepEqual(parseOffset(undefined), { kind: 'start' });
  assert.deepEqual(parseOffset('now'), { kind: 'now' });
  for (const bad of ['', '12', 'abc_def', '0000000000000000_000000000000000', '0000000000000000,0000000000000000']) assert.equal(parseOffset(bad).kind, 'invalid', bad);
});

test('Stream-Closed counts only as true (any case)', () => {
  assert.equal(isTrueHeader('TRUE'), true);
  assert.equal(isTrueHeader(' true '), true);
  for (const v of ['false', 'yes', '1', '', null]) assert.equal(isTrueHeader(v), false);
});

test('TTL is a plain decimal; TTL and Expires-At are exclusive', () => {
  assert.deepEqual(parseExpiry('3600', null), { ok: true, value: { ttlSeconds: 3600 } });
  for (const bad of ['+3600', '03600', '3600.0', '3.6e3', '-1', '']) assert.equal(parseExpiry(bad, null).ok, false, bad);
  assert.equal(parseExpiry('1', '2030-01-01T00:00:00Z').ok, false);
  assert.deepEqual(parseExpiry(null, '2030-01-01T00:00:00Z'), { ok: true, value: { expiresAtMs: Date.UTC(2030, 0, 1) } });
  assert.equal(parseExpiry(null, 'tomorrow').ok, false);
});

test('producer headers come together; validation fences epochs and finds gaps', () => {
  assert.equal(parseProducer('p', '0', null).ok, false);
  assert.equal(parseProducer('', '0', '0').ok, false);
  assert.equal(parseProducer('p', '-1', '0').ok, false);
  assert.deepEqual(parseProducer(null, null, null), { ok: true, value: null });
  const st = { epoch: 2, lastSeq: 4 };
  assert.deepEqual(checkProducer(undefined, { id: 'p', epoch: 0, seq: 0 }), { kind: 'accept' });
  assert.deepEqual(checkProducer(st, { id: 'p', epoch: 1, seq: 9 }), { kind: 'stale-epoch', currentEpoch: 2 });
  assert.deepEqual(checkProducer(st, { id: 'p', epoch: 3, seq: 1 }), { kind: 'bad-epoch-start' });
  assert.deepEqual(checkProducer(st, { id: 'p', epoch: 3, seq: 0 }), { kind: 'accept' });
  assert.deepEqual(checkProducer(st, { id: 'p', epoch: 2, seq: 4 }), { kind: 'duplicate', lastSeq: 4 });
  assert.deepEqual(checkProducer(st, { id: 'p', epoch: 2, seq: 5 }), { kind: 'accept' });
  assert.deepEqual(checkProducer(st, { id: 'p', epoch: 2, seq: 7 }), { kind: 'gap', expected: 5, received: 7 });
});

test('JSON mode flattens one array level and refuses an empty append', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual(jsonMessages(enc('[[1,2],[3,4]]'), false), { ok: true, value: ['[1,2]', '[3,4]'] });
  assert.deepEqual(jsonMessages(enc('[[[1]]]'), false), { ok: true, value: ['[[1]]'] });
  assert.deepEqual(jsonMessages(enc('{"a":1}'), false), { ok: true, value: ['{"a":1}'] });
  assert.equal(jsonMessages(enc('[]'), false).ok, false);
  assert.deepEqual(jsonMessages(enc('[]'), true), { ok: true, value: [] });
  assert.equal(jsonMessages(enc('{nope'), false).ok, false);
});

test('cursors never go backwards, even when the client is ahead', () => {
  const now = Date.UTC(2026, 0, 1);
  const c = Number(nextCursor(now, undefined, () => 0));
  assert.ok(Number(nextCursor(now, String(c), () => 0)) > c);
  assert.ok(Number(nextCursor(now, String(c + 500), () => 0.999)) > c + 500);
  assert.equal(nextCursor(now, '1', () => 0), String(c));
});

test('SSE data lines: no line break of a payload can end the event', () => {
  const out = sseDataLines('a\r\rb\r\nc\n event: control');
  assert.equal(out, 'data:a\ndata:\ndata:b\ndata:c\ndata:  event: control\n');
  assert.ok(!/\n\n/.test(out));
});

test('ETags change when the stream closes; If-None-Match matches lists and weak tags', () => {
  const open = etagOf('s', 'a', 'b', false);
  const closed = etagOf('s', 'a', 'b', true);
  assert.notEqual(open, closed);
  assert.equal(ifNoneMatchHits(`"x", ${open}`, open), true);
  assert.equal(ifNoneMatchHits(`W/${open}`, open), true);
  assert.equal(ifNoneMatchHits(closed, open), false);
  assert.equal(ifNoneMatchHits(null, open), false);
});
