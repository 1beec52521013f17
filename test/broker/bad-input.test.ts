/**
 * Bad input over real sockets: every refusal comes with a documented code
 * (error frame, answer frame errorCode or WebSocket close code) and the
 * broker keeps serving.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { BATCH_HEADER_BYTES, ErrorTable, RunnelError, crc32c, encodeFrame, type BrokerFrame } from '@runnel/client/codec';
import { TestClient, makeBatch, startTestServer, type TestServer } from './harness.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer({
    limits: { maxSubscriptionsPerConnection: 2, maxInflightProducePerConnection: 2, maxConnections: 20, maxInvalidFramesPerConnection: 5 },
  });
});
after(async () => {
  await server.stop();
});

test('produce before hello is answered INVALID_REQUEST with its requestId', async () => {
  const c = await TestClient.connect(server.wsUrl, { hello: false });
  c.send({ type: 'produce', requestId: 77, topic: 't', partition: 0, acks: -1, batch: makeBatch(['x']) });
  const err = await c.waitFor((f) => f.type === 'error');
  assert.equal(err.type === 'error' && err.errorCode, ErrorTable.INVALID_REQUEST.code);
  assert.equal(err.type === 'error' && err.requestId, 77);
  c.close();
});

test('a frame above maxFrameBytes is answered MESSAGE_TOO_LARGE; one above 2x is cut by uWS', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const max = server.broker.config.limits.maxFrameBytes;
  c.sendRaw(new Uint8Array(max + 1).fill(7));
  const err = await c.waitFor((f) => f.type === 'error');
  assert.equal(err.type === 'error' && err.errorCode, ErrorTable.MESSAGE_TOO_LARGE.code);
  c.send({ type: 'ping', nonce: 1 });
  assert.ok(await c.waitFor((f) => f.type === 'pong'), 'still served');
  c.sendRaw(new Uint8Array(2 * max + 1));
  await c.waitClosed();
  assert.notEqual(c.closeCode, 1000);
});

test('a batch above maxBatchBytes or with a bad CRC is refused per request', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const big = makeBatch(['x'.repeat(server.broker.config.limits.maxBatchBytes + 10)]);
  const tooBig = await c.produce('limits', 0, big);
  assert.equal(tooBig.errorCode, ErrorTable.MESSAGE_TOO_LARGE.code);
  const corrupt = makeBatch(['hello']);
  corrupt[corrupt.length - 1] ^= 0xff;
  const bad = await c.produce('limits', 0, corrupt);
  assert.equal(bad.errorCode, ErrorTable.CORRUPT_MESSAGE.code);
  const ok = await c.produce('limits', 0, makeBatch(['fine']));
  assert.equal(ok.errorCode, 0);
  c.close();
});

test('a batch whose CRC is valid but whose records are malformed is refused, never stored', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const batch = makeBatch(['hello world']);
  batch[BATCH_HEADER_BYTES] = 0x7f; // first record's length varint now claims more bytes than exist
  new DataView(batch.buffer, batch.byteOffset).setUint32(17, crc32c(batch, 21, batch.length)); // re-seal the CRC
  const bad = await c.produce('forged', 0, batch);
  assert.equal(bad.errorCode, ErrorTable.CORRUPT_MESSAGE.code);
  const ok = await c.produce('forged', 0, makeBatch(['fine']));
  assert.equal(ok.errorCode, 0);
  assert.equal(ok.baseOffset, 0, 'the forged batch took no offset');
  c.close();
});

test('too many subscriptions, in-flight produces and credit are LIMIT_EXCEEDED', async () => {
  // Subscribing never creates a topic (issue 11 finding 5).
  for (const name of ['subs', 'subs2', 'subs3']) await server.broker.createTopic({ name, partitions: 1, replicationFactor: 1 });
  const c = await TestClient.connect(server.wsUrl);
  assert.equal((await c.subscribe('subs', 0, { kind: 'latest' })).errorCode, 0);
  assert.equal((await c.subscribe('subs2', 0, { kind: 'latest' })).errorCode, 0);
  assert.equal((await c.subscribe('subs3', 0, { kind: 'latest' })).errorCode, ErrorTable.LIMIT_EXCEEDED.code);
  assert.equal((await c.subscribe('subs', 0, { kind: 'earliest' })).errorCode, 0, 're-subscribing moves, it does not count twice');
  assert.equal((await c.subscribe('subs2', 0, { kind: 'latest' }, server.broker.config.limits.maxCreditBytes + 1)).errorCode, ErrorTable.LIMIT_EXCEEDED.code);
  const acks = await Promise.all(Array.from({ length: 6 }, () => c.produce('inflight', 0, makeBatch(['x']))));
  const codes = acks.map((a) => a.errorCode);
  assert.ok(codes.includes(ErrorTable.LIMIT_EXCEEDED.code), `some produce over the in-flight limit: ${codes}`);
  assert.ok(codes.includes(0));
  c.close();
});

test('garbage frames get INVALID_FRAME; repeated garbage closes with 4900', async () => {
  const c = await TestClient.connect(server.wsUrl);
  c.sendRaw(new Uint8Array([250, 1, 2, 3]));
  const err = await c.waitFor((f) => f.type === 'error');
  assert.equal(err.type === 'error' && err.errorCode, ErrorTable.INVALID_FRAME.code);
  c.ws.send('a text message');
  const err2 = await c.waitFor((f) => f.type === 'error');
  assert.equal(err2.type === 'error' && err2.errorCode, ErrorTable.INVALID_FRAME.code);
  for (let i = 0; i < 5; i++) c.sendRaw(new Uint8Array([FrameKindProduce, 0, 0]));
  await c.waitClosed();
  assert.equal(c.closeCode, 4900);
  assert.equal(c.closeReason, 'INVALID_FRAME');
  // The broker still serves others.
  const d = await TestClient.connect(server.wsUrl);
  d.send({ type: 'ping', nonce: 5 });
  const pong = await d.waitFor((f) => f.type === 'pong');
  assert.equal(pong.type === 'pong' && pong.nonce, 5);
  d.close();
});
const FrameKindProduce = 7;

test('connections above maxConnections are closed with LIMIT_EXCEEDED (4901)', async () => {
  const url = server.wsUrl;
  const open: WebSocket[] = [];
  const closes: number[] = [];
  for (let i = 0; i < 22; i++) {
    const ws = new WebSocket(url);
    ws.on('close', (code) => closes.push(code));
    ws.on('error', () => {});
    open.push(ws);
  }
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(closes.filter((code) => code === 4901).length >= 2, `closes: ${closes}`);
  for (const ws of open) ws.close();
  await new Promise((r) => setTimeout(r, 100));
  const c = await TestClient.connect(url);
  const md = await c.request<Extract<BrokerFrame, { type: 'metadata' }>>({ type: 'metadataRequest', requestId: 0, topics: [], allowAutoTopicCreation: 0 });
  assert.ok(md.topics.length > 0);
  c.close();
});

test('broker-to-client frames sent by a client are refused', async () => {
  const c = await TestClient.connect(server.wsUrl);
  c.sendRaw(encodeFrame({ type: 'offsetCommitAck', requestId: 3, errorCode: 0 }));
  const err = await c.waitFor((f) => f.type === 'error');
  assert.equal(err.type === 'error' && err.errorCode, ErrorTable.INVALID_REQUEST.code);
  c.close();
});

test('the broker-wide produce budget: over it LIMIT_EXCEEDED (retryable), freed when appends complete, too large stays final', async () => {
  const kib = 1024;
  const small = await startTestServer({ limits: { maxBatchBytes: 256 * kib, maxFrameBytes: 320 * kib, maxPendingProduceBytes: 300 * kib } });
  try {
    const batch = (): Uint8Array => makeBatch(['x'.repeat(200 * kib)]);
    const first = small.broker.produce('budget', 0, batch(), -1);
    // Called while the first is pending (its reservation holds until its append is durable): 400 KiB > 300 KiB.
    await assert.rejects(small.broker.produce('budget', 0, batch(), -1), (e: unknown) => {
      assert.ok(e instanceof RunnelError);
      assert.equal(e.errorName, 'LIMIT_EXCEEDED');
      assert.equal(e.retryable, true);
      return true;
    });
    assert.equal((await first).baseOffset, 0);
    assert.equal((await small.broker.produce('budget', 0, batch(), -1)).baseOffset, 1, 'the budget is free again');
    await assert.rejects(small.broker.produce('budget', 0, makeBatch(['x'.repeat(300 * kib)]), -1), { errorName: 'MESSAGE_TOO_LARGE' } as object);
    const metrics = await small.metrics.registry.metrics();
    assert.match(metrics, /^runnel_pending_produce_bytes 0$/m);
    assert.match(metrics, /^runnel_backpressure_drops_total\{reason="produce_budget"\} 1$/m);
    const c = await TestClient.connect(small.wsUrl);
    assert.equal((await c.produce('budget', 0, batch())).errorCode, 0, 'WebSocket produces pass again');
    c.close();
  } finally {
    await small.stop();
  }
});
