/**
 * Fuzzes a LIVE broker with ≥100,000 random and mutated frames (fast-check,
 * seeded; the seed is printed) on a few connections, while a well-behaved
 * client keeps producing and consuming. The broker must not crash, must keep
 * answering the good client, and its log must stay intact (every stored
 * batch passes its CRC; the good client's records are all there, in order).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameKind, encodeFrame, iterateBatches, type ClientFrame } from '@runnel/client/codec';
import { TestClient, makeBatch, startTestServer, type TestServer } from './harness.ts';

const FRAMES = 100_000;
const CONNECTIONS = 4;
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

let server: TestServer;
before(async () => {
  server = await startTestServer({ autoCreateTopics: false, limits: { maxInvalidFramesPerConnection: 1_000_000 } });
  await server.broker.createTopic({ name: 'fuzz', partitions: 2, replicationFactor: 1 });
  await server.broker.createTopic({ name: 'good', partitions: 1, replicationFactor: 1 });
});
after(async () => {
  await server.stop();
});

const topic = fc.constantFrom('fuzz', 'nope', '', 'x'.repeat(300), 'bad name');
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const smallOffset = fc.integer({ min: -1, max: 1000 });
const validBatch = fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 5 }).map((v) => makeBatch(v));
const start = fc.oneof(
  fc.constant({ kind: 'earliest' as const }), fc.constant({ kind: 'latest' as const }),
  smallOffset.map((offset) => ({ kind: 'offset' as const, offset: Math.max(0, offset) })),
  fc.integer({ min: 0, max: 2 ** 41 }).map((timestampMs) => ({ kind: 'timestamp' as const, timestampMs })),
);

/** Structurally valid client frames with hostile field values. */
const clientFrame: fc.Arbitrary<ClientFrame> = fc.oneof(
  fc.record({ type: fc.constant('hello' as const), minVersion: fc.integer({ min: 0, max: 3 }), maxVersion: fc.integer({ min: 0, max: 3 }), clientId: fc.string({ maxLength: 20 }), token: fc.string({ maxLength: 5 }) }),
  fc.record({ type: fc.constant('metadataRequest' as const), requestId: u32, topics: fc.array(topic, { maxLength: 3 }), allowAutoTopicCreation: fc.integer({ min: -1, max: 2 }) }),
  fc.record({ type: fc.constant('initProducer' as const), requestId: u32, producerId: fc.integer({ min: -1, max: 5000 }), producerEpoch: fc.integer({ min: -1, max: 5 }), producerSecret: fc.string({ maxLength: 30 }) }),
  fc.record({ type: fc.constant('authenticate' as const), requestId: u32, token: fc.string({ maxLength: 40 }) }),
  fc.record({ type: fc.constant('produce' as const), requestId: u32, topic, partition: fc.integer({ min: -1, max: 3 }), acks: fc.constantFrom(-1 as const, 0 as const, 1 as const), batch: fc.oneof(validBatch, fc.uint8Array({ maxLength: 200 })) }),
  fc.record({ type: fc.constant('subscribe' as const), requestId: u32, topic, partition: fc.integer({ min: -1, max: 3 }), topicId: fc.constantFrom('', 'AAAA'), from: start, creditBytes: u32 }),
  fc.record({ type: fc.constant('unsubscribe' as const), requestId: u32, topic, partition: fc.integer({ min: -1, max: 3 }) }),
  fc.record({ type: fc.constant('credit' as const), topic, partition: fc.integer({ min: 0, max: 2 }), bytes: u32 }),
  fc.record({ type: fc.constant('offsetCommit' as const), requestId: u32, group: fc.constantFrom('g', '', 'h'), generationId: fc.integer({ min: -1, max: 3 }), memberId: fc.constantFrom('', 'm'), offsets: fc.array(fc.record({ topic, partition: fc.integer({ min: -1, max: 3 }), offset: smallOffset, metadata: fc.string({ maxLength: 5 }) }), { maxLength: 3 }) }),
  fc.record({ type: fc.constant('offsetFetch' as const), requestId: u32, group: fc.constantFrom('g', '', 'h'), topics: fc.array(topic, { maxLength: 2 }) }),
  fc.record({ type: fc.constant('groupJoin' as const), requestId: u32, group: fc.constantFrom('g', 'h'), memberId: fc.constantFrom('', 'm'), topics: fc.array(topic, { maxLength: 2 }), sessionTimeoutMs: fc.integer({ min: 0, max: 10_000 }) }),
  fc.record({ type: fc.constant('groupHeartbeat' as const), group: fc.constantFrom('g', 'h'), memberId: fc.constantFrom('', 'm'), generationId: int32 }),
  fc.record({ type: fc.constant('groupLeave' as const), group: fc.constantFrom('g', 'h'), memberId: fc.constantFrom('', 'm') }),
  fc.record({ type: fc.constant('ping' as const), nonce: u32 }),
) as fc.Arbitrary<ClientFrame>;

/** Mutations of encoded valid frames: bit flips, truncation, extension, kind swaps. */
const mutated = fc.tuple(clientFrame, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 3 })).map(([frame, flips, cut, how]) => {
  let bytes = encodeFrame(frame);
  if (how === 0) bytes = bytes.subarray(0, cut % (bytes.length + 1));
  else if (how === 1) { const longer = new Uint8Array(bytes.length + (cut % 16)); longer.set(bytes); bytes = longer; }
  else if (how === 2) { bytes = bytes.slice(); bytes[0] = (cut % 30) as number; }
  else bytes = bytes.slice();
  for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] ^= value;
  return bytes;
});

const anyFrame = fc.oneof(
  { weight: 3, arbitrary: mutated },
  { weight: 2, arbitrary: clientFrame.map((f) => encodeFrame(f)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom(...Object.values(FrameKind)).chain((k) => fc.uint8Array({ maxLength: 40 }).map((rest) => Uint8Array.of(k, ...rest))) },
);

test(`broker survives ${FRAMES} fuzzed frames on a live socket while serving a good client (seed ${seed})`, { timeout: 300_000 }, async () => {
  console.log(`# fuzz seed ${seed} (FUZZ_SEED=${seed} to replay)`);
  const good = await TestClient.connect(server.wsUrl);
  good.decodeRecords = true;
  await good.subscribe('good', 0, { kind: 'earliest' }, 64 * 1024 * 1024);
  let goodSent = 0;
  let stop = false;
  const goodLoop = (async () => {
    while (!stop) {
      const ack = await good.produce('good', 0, makeBatch([`good-${goodSent}`]));
      assert.equal(ack.errorCode, 0, 'the well-behaved client is served throughout');
      goodSent++;
    }
  })();

  const frames = fc.sample(anyFrame, { numRuns: FRAMES, seed });
  let reconnects = 0;
  const perConnection = Math.ceil(FRAMES / CONNECTIONS);
  await Promise.all(Array.from({ length: CONNECTIONS }, async (_, k) => {
    let client = await TestClient.connect(server.wsUrl, { hello: k % 2 === 0 });
    const mine = frames.slice(k * perConnection, (k + 1) * perConnection);
    for (let i = 0; i < mine.length; i++) {
      if (client.closeCode !== null || client.ws.readyState !== client.ws.OPEN) {
        reconnects++;
        client = await TestClient.connect(server.wsUrl, { hello: i % 2 === 0 });
      }
      client.decodeRecords = false;
      client.sendRaw(mine[i]);
      // Let the broker and the good client breathe; bound what the ws client buffers.
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
      while (client.ws.bufferedAmount > 1024 * 1024) await new Promise((r) => setTimeout(r, 1));
    }
    client.close();
  }));
  stop = true;
  await goodLoop;
  console.log(`# fuzz: ${FRAMES} frames, ${reconnects} reconnects, good client produced ${goodSent} batches meanwhile`);
  assert.ok(goodSent > 0);

  // The good client got every record it produced, in order.
  const got = await good.waitForRecords('good', 0, goodSent, 20_000);
  assert.deepEqual(got.map((r) => r.value), Array.from({ length: goodSent }, (_, i) => `good-${i}`));
  // Every stored batch of every partition passes its CRC and offsets are contiguous.
  for (const [name, partitions] of [['good', 1], ['fuzz', 2]] as const) {
    for (let p = 0; p < partitions; p++) {
      let offset = server.broker.describeTopic(name).partitions[p].logStartOffset;
      const hw = server.broker.describeTopic(name).partitions[p].highWatermark;
      while (offset < hw) {
        const read = await server.broker.fetch(name, p, offset, 1024 * 1024);
        for (const b of iterateBatches(read.batches)) {
          assert.ok(b.ok, `${name}/${p}: ${!b.ok && b.message}`);
          assert.equal(b.value.header.baseOffset, offset, 'contiguous offsets');
          offset = b.value.header.baseOffset + b.value.header.lastOffsetDelta + 1;
        }
      }
    }
  }
  good.close();
});
