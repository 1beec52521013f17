/**
 * Real sockets against an in-process broker: produce over WS (idempotent
 * resend de-duplicated), consume from earliest / offset / timestamp /
 * latest, metadata, topic id checks and out-of-range answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorTable, PROTOCOL_VERSION, type BrokerFrame } from '@runnel/client/codec';
import { TestClient, dedupe, makeBatch, startTestServer, type TestServer } from './harness.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

test('hello negotiates the version and advertises limits', async () => {
  const c = await TestClient.connect(server.wsUrl, { hello: false });
  c.send({ type: 'hello', minVersion: 1, maxVersion: 7, clientId: 't', token: '' });
  const ok = await c.waitFor((f) => f.type === 'helloOk');
  assert.equal(ok.type === 'helloOk' && ok.version, PROTOCOL_VERSION);
  assert.equal(ok.type === 'helloOk' && ok.maxBatchBytes, server.broker.config.limits.maxBatchBytes);
  c.close();
});

test('no common version → UNSUPPORTED_VERSION and close', async () => {
  const c = await TestClient.connect(server.wsUrl, { hello: false });
  c.send({ type: 'hello', minVersion: 5, maxVersion: 9, clientId: 't', token: '' });
  const err = await c.waitFor((f) => f.type === 'error');
  assert.equal(err.type === 'error' && err.errorCode, ErrorTable.UNSUPPORTED_VERSION.code);
  await c.waitClosed();
  assert.equal(c.closeCode, 4035);
  assert.equal(c.closeReason, 'UNSUPPORTED_VERSION');
});

test('produce is acked with offsets; an idempotent resend after reconnect is de-duplicated', async () => {
  const c1 = await TestClient.connect(server.wsUrl);
  const init = await c1.request<Extract<BrokerFrame, { type: 'initProducerOk' }>>({ type: 'initProducer', requestId: 0, producerId: -1, producerEpoch: -1, producerSecret: '' });
  assert.equal(init.errorCode, 0);
  assert.ok(init.producerId >= 0);
  const pid = { producerId: init.producerId, producerEpoch: init.producerEpoch };
  const proof = { producerSecret: init.producerSecret };
  const a1 = await c1.produce('idem', 0, makeBatch(['a', 'b', 'c'], { ...pid, baseSequence: 0 }));
  assert.equal(a1.errorCode, 0);
  assert.equal(a1.baseOffset, 0);
  c1.close();
  // A reloaded browser presents its persisted id with its secret and resends the same batch.
  const c2 = await TestClient.connect(server.wsUrl);
  const again = await c2.request<Extract<BrokerFrame, { type: 'initProducerOk' }>>({ type: 'initProducer', requestId: 0, ...pid, ...proof });
  assert.deepEqual([again.producerId, again.producerEpoch], [pid.producerId, pid.producerEpoch]);
  const dup = await c2.produce('idem', 0, makeBatch(['a', 'b', 'c'], { ...pid, baseSequence: 0 }));
  assert.equal(dup.errorCode, 0);
  assert.equal(dup.baseOffset, 0, 'duplicate answers the original offsets');
  const next = await c2.produce('idem', 0, makeBatch(['d'], { ...pid, baseSequence: 3 }));
  assert.equal(next.baseOffset, 3);
  const gap = await c2.produce('idem', 0, makeBatch(['z'], { ...pid, baseSequence: 10 }));
  assert.equal(gap.errorCode, ErrorTable.OUT_OF_ORDER_SEQUENCE_NUMBER.code);
  assert.equal(server.broker.describeTopic('idem').partitions[0].highWatermark, 4);
  c2.close();
});

test('consume from earliest, offset, timestamp and latest', async () => {
  const p = await TestClient.connect(server.wsUrl);
  const t0 = Date.now() - 10_000;
  for (let i = 0; i < 5; i++) {
    const ack = await p.produce('positions', 0, makeBatch([`v${2 * i}`, `v${2 * i + 1}`], { timestampMs: t0 + i * 1000 }));
    assert.equal(ack.errorCode, 0);
  }
  const c = await TestClient.connect(server.wsUrl);
  const earliest = await c.subscribe('positions', 0, { kind: 'earliest' });
  assert.equal(earliest.errorCode, 0);
  assert.equal(earliest.startOffset, 0);
  assert.ok(earliest.topicId.length > 0);
  const got = dedupe(await c.waitForRecords('positions', 0, 10), 0);
  assert.deepEqual(got.map((r) => r.value), Array.from({ length: 10 }, (_, i) => `v${i}`));

  const c2 = await TestClient.connect(server.wsUrl);
  const fromOffset = await c2.subscribe('positions', 0, { kind: 'offset', offset: 5 });
  assert.equal(fromOffset.startOffset, 5);
  const got2 = dedupe(await c2.waitForRecords('positions', 0, 5), 5);
  assert.deepEqual(got2.map((r) => r.offset), [5, 6, 7, 8, 9]);

  const c3 = await TestClient.connect(server.wsUrl);
  const fromTs = await c3.subscribe('positions', 0, { kind: 'timestamp', timestampMs: t0 + 3000 });
  assert.equal(fromTs.startOffset, 6, 'first batch with timestamp >= t0+3s starts at offset 6');

  const c4 = await TestClient.connect(server.wsUrl);
  const latest = await c4.subscribe('positions', 0, { kind: 'latest' });
  assert.equal(latest.startOffset, 10);
  await p.produce('positions', 0, makeBatch(['new']));
  const got4 = await c4.waitForRecords('positions', 0, 1);
  assert.deepEqual(got4.map((r) => [r.offset, r.value]), [[10, 'new']]);
  for (const x of [p, c, c2, c3, c4]) x.close();
});

test('out-of-range offset and a different topic id are answered with codes and bounds', async () => {
  const c = await TestClient.connect(server.wsUrl);
  await c.produce('bounds', 0, makeBatch(['x', 'y']));
  const tooFar = await c.subscribe('bounds', 0, { kind: 'offset', offset: 99 });
  assert.equal(tooFar.errorCode, ErrorTable.OFFSET_OUT_OF_RANGE.code);
  assert.deepEqual([tooFar.logStartOffset, tooFar.highWatermark], [0, 2]);
  const wrongId = await c.subscribe('bounds', 0, { kind: 'earliest' }, 1024, 'AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(wrongId.errorCode, ErrorTable.INCONSISTENT_TOPIC_ID.code);
  const info = server.broker.describeTopic('bounds').topic;
  assert.equal(wrongId.topicId, info.topicId);
  const noPartition = await c.subscribe('bounds', 7, { kind: 'earliest' });
  assert.equal(noPartition.errorCode, ErrorTable.UNKNOWN_TOPIC_OR_PARTITION.code);
  c.close();
});

test('metadata lists topics with partitions and auto-creates requested ones', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const md = await c.request<Extract<BrokerFrame, { type: 'metadata' }>>({ type: 'metadataRequest', requestId: 0, topics: ['meta-new'], allowAutoTopicCreation: 1 });
  assert.equal(md.topics.length, 1);
  assert.equal(md.topics[0].errorCode, 0);
  assert.equal(md.topics[0].partitions.length, 1);
  assert.deepEqual(md.topics[0].partitions[0].isr, [0]);
  assert.equal(md.brokers[0].id, 0);
  const bad = await c.request<Extract<BrokerFrame, { type: 'metadata' }>>({ type: 'metadataRequest', requestId: 0, topics: ['bad name!'], allowAutoTopicCreation: 1 });
  assert.equal(bad.topics[0].errorCode, ErrorTable.INVALID_TOPIC_EXCEPTION.code);
  c.close();
});

test('credit: a subscriber never receives more payload than granted, resumes on new credit', async () => {
  const p = await TestClient.connect(server.wsUrl);
  const batches = Array.from({ length: 10 }, (_, i) => makeBatch([`c${i}`.padEnd(100, '.')]));
  for (const b of batches) await p.produce('credit', 0, b);
  const size = batches[0].length;
  const c = await TestClient.connect(server.wsUrl);
  await c.subscribe('credit', 0, { kind: 'earliest' }, size * 3 + 10);
  await c.waitForRecords('credit', 0, 3);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.records.get('credit/0')?.length, 3, 'only 3 batches fit the credit');
  c.send({ type: 'credit', topic: 'credit', partition: 0, bytes: size * 4 });
  await c.waitForRecords('credit', 0, 7);
  // live: now at 7 of 10 in log with ~10 bytes of credit; grant enough for the rest and one live batch
  c.send({ type: 'credit', topic: 'credit', partition: 0, bytes: size * 4 });
  await c.waitForRecords('credit', 0, 10);
  await p.produce('credit', 0, makeBatch(['live'.padEnd(100, '.')]));
  const all = await c.waitForRecords('credit', 0, 11);
  assert.deepEqual(all.map((r) => r.offset), Array.from({ length: 11 }, (_, i) => i));
  await p.produce('credit', 0, makeBatch(['over'.padEnd(100, '.')]));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.records.get('credit/0')?.length, 11, 'no credit left for the 12th batch');
  p.close();
  c.close();
});
