/**
 * The replication protocol codec: round trips of every frame kind (property
 * tests), stream cutting over any chunking, limits, and a fuzz of the decoder
 * (≥100,000 random and mutated inputs: never a throw, only INVALID_FRAME or
 * MESSAGE_TOO_LARGE, never a hang). Seeded: the seed is printed and
 * RUNNEL_FUZZ_SEED replays a run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, type ErrorName } from '@runnel/client/codec';
import {
  concatParts, decodeFrame, encodeFrame, EXTENSION_TYPE_MAX, EXTENSION_TYPE_MIN, FrameReader, FrameType, REPLICATION_PROTOCOL_VERSION, type RawFrame, type ReplicationFrame,
} from './protocol.ts';

const seed = Number(process.env.RUNNEL_FUZZ_SEED ?? Date.now() % 2 ** 31);
console.log(`# replication protocol fuzz seed ${seed} (replay: RUNNEL_FUZZ_SEED=${seed})`);

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const brokerId = fc.integer({ min: 0, max: 0x7fff_ffff });
const epoch = fc.integer({ min: 0, max: 0x7fff_ffff });
const offset = fc.maxSafeNat();
const errorNames = Object.keys(ErrorCode) as ErrorName[];

const fetchRequest = fc.record({
  topicId: fc.string({ maxLength: 60 }), partition: fc.integer({ min: 0, max: 0x7fff_ffff }), replicaId: brokerId,
  currentLeaderEpoch: epoch, lastFetchedEpoch: fc.integer({ min: -1, max: 0x7fff_ffff }), fetchOffset: offset,
  knownHighWatermark: offset, maxBytes: u32, maxWaitMs: u32,
});

const fetchResponse = fc.tuple(offset, offset, offset).chain(([a, b, c]) => {
  const [logStartOffset, highWatermark, logEndOffset] = [a, b, c].sort((x, y) => x - y);
  return fc.oneof(
    fc.record({ leaderEpoch: epoch, records: fc.uint8Array({ maxLength: 300 }) }).map((r) => ({ ...r, logStartOffset, highWatermark, logEndOffset, divergingEpoch: null })),
    fc.record({ leaderEpoch: epoch, divergingEpoch: fc.record({ epoch: fc.integer({ min: -1, max: 0x7fff_ffff }), endOffset: fc.integer({ min: -1, max: 2 ** 40 }) }) })
      .map((r) => ({ ...r, logStartOffset, highWatermark, logEndOffset, records: new Uint8Array(0) })),
  );
});

const correlationId = u32;
export const anyReplicationFrame: fc.Arbitrary<ReplicationFrame> = fc.oneof(
  fc.record({ kind: fc.constant('handshake' as const), correlationId, version: fc.constant(REPLICATION_PROTOCOL_VERSION), brokerId, nonce: fc.uint8Array({ minLength: 16, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('handshakeOk' as const), correlationId, version: fc.integer({ min: 0, max: 0xffff }), brokerId, nonce: fc.uint8Array({ minLength: 16, maxLength: 16 }), mac: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
  fc.record({ kind: fc.constant('handshakeProof' as const), correlationId, mac: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
  fc.record({ kind: fc.constantFrom('heartbeat' as const, 'heartbeatOk' as const), correlationId, brokerId, sentAtMs: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  fc.record({ kind: fc.constant('fetch' as const), correlationId, request: fetchRequest }),
  fc.record({ kind: fc.constant('fetchResponse' as const), correlationId, response: fetchResponse }),
  fc.record({ kind: fc.constant('error' as const), correlationId, code: fc.constantFrom(...errorNames), message: fc.string({ maxLength: 100 }) }),
  fc.record({
    kind: fc.constantFrom('extension' as const, 'extensionResponse' as const), correlationId,
    requestType: fc.integer({ min: EXTENSION_TYPE_MIN, max: EXTENSION_TYPE_MAX }), body: fc.uint8Array({ maxLength: 200 }),
  }),
);

/** All frames a reader yields for `chunks`, and its error if any. */
function readAll(chunks: Uint8Array[], maxFrameBytes = 1 << 20): { frames: RawFrame[]; error: string | null } {
  const reader = new FrameReader(maxFrameBytes);
  const frames: RawFrame[] = [];
  for (const c of chunks) {
    reader.push(c);
    for (let f = reader.next(); f !== null; f = reader.next()) {
      if (!f.ok) return { frames, error: f.code };
      frames.push(f.value);
    }
  }
  return { frames, error: null };
}

function decodeOne(bytes: Uint8Array): ReplicationFrame {
  const { frames, error } = readAll([bytes]);
  assert.equal(error, null);
  assert.equal(frames.length, 1);
  const d = decodeFrame(frames[0]);
  assert.ok(d.ok, d.ok ? '' : d.message);
  return d.value;
}

/** sentAtMs -0 decodes as -0; deepEqual tells them apart, so normalize both sides the same way. */
function normalize(f: ReplicationFrame): unknown {
  return JSON.parse(JSON.stringify(f, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v)));
}

test('every frame kind round-trips through encodeFrame, FrameReader and decodeFrame', () => {
  fc.assert(fc.property(anyReplicationFrame, (frame) => {
    const decoded = decodeOne(concatParts(encodeFrame(frame)));
    assert.deepEqual(normalize(decoded), normalize(frame));
  }), { numRuns: 2000, seed });
});

test('a fetch answer sends its batches as their own part (the stored bytes, not copied)', () => {
  const records = new Uint8Array(1000).fill(9);
  const parts = encodeFrame({ kind: 'fetchResponse', correlationId: 7, response: { leaderEpoch: 3, highWatermark: 5, logStartOffset: 0, logEndOffset: 9, divergingEpoch: null, records } });
  assert.equal(parts.length, 2);
  assert.equal(parts[1], records, 'the same Uint8Array');
  const d = decodeOne(concatParts(parts));
  assert.ok(d.kind === 'fetchResponse');
  assert.deepEqual(d.response.records, records);
});

test('FrameReader cuts the same frames out of any chunking; a frame inside one chunk is a view of it', () => {
  fc.assert(fc.property(fc.array(anyReplicationFrame, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (frames, cuts) => {
    const stream = concatParts(frames.flatMap(encodeFrame));
    const chunks: Uint8Array[] = [];
    let at = 0;
    for (let i = 0; at < stream.length; i++) {
      const n = cuts[i % cuts.length];
      chunks.push(stream.subarray(at, at + n));
      at += n;
    }
    const { frames: raws, error } = readAll(chunks);
    assert.equal(error, null);
    assert.deepEqual(raws.map((r) => normalize((decodeFrame(r) as { value: ReplicationFrame }).value)), frames.map(normalize));
  }), { numRuns: 300, seed });
  const one = concatParts(encodeFrame({ kind: 'extension', correlationId: 1, requestType: 0x20, body: new Uint8Array(50).fill(1) }));
  const { frames } = readAll([one]);
  assert.equal(frames[0].body.buffer, one.buffer, 'no copy');
});

test('FrameReader refuses a length over maxFrameBytes (MESSAGE_TOO_LARGE) and one below the header (INVALID_FRAME), and stays failed', () => {
  const big = new Uint8Array(9);
  new DataView(big.buffer).setUint32(0, 1001);
  assert.equal(readAll([big], 1000).error, 'MESSAGE_TOO_LARGE');
  assert.equal(readAll([new Uint8Array([0, 0, 0, 4, 1, 0, 0, 0])]).error, 'INVALID_FRAME');
  const reader = new FrameReader(100);
  reader.push(new Uint8Array([0, 0, 0, 0]));
  assert.equal(reader.next()?.ok, false);
  reader.push(concatParts(encodeFrame({ kind: 'heartbeat', correlationId: 1, brokerId: 1, sentAtMs: 1 })));
  assert.equal(reader.next()?.ok, false, 'a failed stream stays failed');
});

test('decodeFrame refuses bad fields with INVALID_FRAME: unknown type, trailing bytes, negative offsets, bad UTF-8, inconsistent answers', () => {
  const raw = (type: number, body: number[]): RawFrame => ({ type, correlationId: 1, body: new Uint8Array(body) });
  const heartbeat = concatParts(encodeFrame({ kind: 'heartbeat', correlationId: 1, brokerId: 2, sentAtMs: 5 })).subarray(9);
  const fetch = (patch: (v: DataView) => void): RawFrame => {
    const b = concatParts(encodeFrame({ kind: 'fetch', correlationId: 1, request: { topicId: 'abc', partition: 0, replicaId: 1, currentLeaderEpoch: 1, lastFetchedEpoch: 0, fetchOffset: 5, knownHighWatermark: 0, maxBytes: 10, maxWaitMs: 10 } })).slice(9);
    patch(new DataView(b.buffer));
    return { type: FrameType.fetch, correlationId: 1, body: b };
  };
  const cases: [string, RawFrame][] = [
    ['unknown type 0x05', raw(0x05, [])],
    ['unknown answer type 0x8f', raw(0x8f, [])],
    ['truncated heartbeat', raw(FrameType.heartbeat, [0, 0, 0])],
    ['trailing byte', { type: FrameType.heartbeat, correlationId: 1, body: new Uint8Array([...heartbeat, 0]) }],
    ['negative broker id', raw(FrameType.handshake, [0, 1, 0xff, 0xff, 0xff, 0xff])],
    ['bad UTF-8 topic id', fetch((v) => v.setUint8(2, 0xff))],
    ['fetchOffset -1', fetch((v) => v.setFloat64(2 + 3 + 16, -1))],
    ['fetchOffset 0.5', fetch((v) => v.setFloat64(2 + 3 + 16, 0.5))],
    ['lastFetchedEpoch -2', fetch((v) => v.setInt32(2 + 3 + 12, -2))],
  ];
  // Another version's handshake is typed (so it can be answered UNSUPPORTED_VERSION), whatever its body holds past the version.
  const v1 = decodeFrame(raw(FrameType.handshake, [0, 1, 0, 0, 0, 2]));
  assert.ok(v1.ok && v1.value.kind === 'handshake' && v1.value.version === 1 && v1.value.brokerId === 2, JSON.stringify(v1));
  cases.push(['v2 handshake without its nonce', raw(FrameType.handshake, [0, REPLICATION_PROTOCOL_VERSION, 0, 0, 0, 2])]);
  cases.push(['handshake proof of 31 bytes', raw(FrameType.handshakeProof, new Array(31).fill(1))]);
  for (const [name, r] of cases) {
    const d = decodeFrame(r);
    assert.ok(!d.ok && d.code === 'INVALID_FRAME', `${name}: ${JSON.stringify(d)}`);
  }
  const answer = (response: object) => decodeOne(concatParts(encodeFrame({ kind: 'fetchResponse', correlationId: 1, response: { leaderEpoch: 1, highWatermark: 5, logStartOffset: 0, logEndOffset: 9, divergingEpoch: null, records: new Uint8Array(0), ...response } })));
  assert.throws(() => answer({ highWatermark: 10 }), /offsets out of order/);
  assert.throws(() => answer({ divergingEpoch: { epoch: 1, endOffset: 3 }, records: new Uint8Array(1) }), /no records/);
});

/** xorshift32: deterministic, fast. */
function rng(s: number): () => number {
  let x = s | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

test('fuzz: any bytes give frames or a typed error, never a throw or a hang; accepted frames re-encode', () => {
  const random = rng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const valid = fc.sample(anyReplicationFrame, { numRuns: 400, seed }).map((f) => concatParts(encodeFrame(f)));
  const mutate = (a: Uint8Array): Uint8Array => {
    switch (int(5)) {
      case 0: { const b = a.slice(); for (let n = 1 + int(4); n > 0; n--) b[int(b.length)] ^= 1 << int(8); return b; }
      case 1: return a.subarray(0, int(a.length + 1));
      case 2: { const b = valid[int(valid.length)]; const x = int(a.length + 1); const y = int(b.length + 1); return concatParts([a.subarray(0, x), b.subarray(y)]); }
      case 3: { const b = a.slice(); const at = int(b.length); b.fill(int(2) ? 0xff : 0x80, at, at + 1 + int(6)); return b; }
      default: return concatParts([a, Uint8Array.from({ length: int(12) }, () => int(256))]);
    }
  };
  let accepted = 0;
  for (let i = 0; i < 120_000; i++) {
    const input = i % 4 === 0 ? Uint8Array.from({ length: int(80) }, () => int(256)) : mutate(valid[int(valid.length)]);
    // Cut into 1-3 chunks: the stream path, not just whole buffers.
    const cut = int(input.length + 1);
    const { frames, error } = readAll(i % 2 ? [input] : [input.subarray(0, cut), input.subarray(cut)], 4096);
    if (error !== null) assert.ok(error === 'INVALID_FRAME' || error === 'MESSAGE_TOO_LARGE', error);
    for (const raw of frames) {
      const d = decodeFrame(raw);
      if (!d.ok) {
        assert.equal(d.code, 'INVALID_FRAME');
        continue;
      }
      accepted++;
      // Canonical: the same bytes again (error frames excepted: an unknown code reads as UNKNOWN_SERVER_ERROR).
      if (d.value.kind === 'error') continue;
      const again = concatParts(encodeFrame(d.value)).subarray(4);
      const expected = new Uint8Array(5 + raw.body.length);
      expected[0] = raw.type;
      new DataView(expected.buffer).setUint32(1, raw.correlationId);
      expected.set(raw.body, 5);
      assert.deepEqual(again, expected);
    }
  }
  assert.ok(accepted > 1000, `${accepted} accepted inputs (the mutations keep many valid)`);
});

test('docs/replication-protocol.md lists every frame type and every limit with its default', async () => {
  const { readFile } = await import('node:fs/promises');
  const { defaultReplicationLimits } = await import('./limits.ts');
  const doc = await readFile(new URL('../../../docs/replication-protocol.md', import.meta.url), 'utf8');
  for (const [name, type] of Object.entries(FrameType)) {
    const hex = `\`0x${type.toString(16).padStart(2, '0')}\``;
    assert.ok(doc.includes(hex), `frame ${name} (${hex}) is documented`);
  }
  for (const [name, value] of Object.entries(defaultReplicationLimits)) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${name}\``) || l.startsWith(`| \`${name}\` /`) || (l.startsWith('| `') && l.includes(` / \`${name}\``)));
    assert.ok(row, `limit ${name} has a row`);
    if (!/ MiB| \/ /.test(row)) assert.ok(row.includes(`| ${value} |`), `limit ${name}: the row says ${value}: ${row}`);
  }
});
