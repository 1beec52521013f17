/**
 * Issue 11 findings 4 and 5 over real sockets against a default broker (each
 * failed on the code before the fix): a WebSocket from a foreign Origin, an
 * offset-space grab, client-set control bits and timestamps, a metadata
 * request that auto-created every topic it named, a subscribe that created
 * its topic, and unbounded credit grants.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { BatchField, ErrorTable, crc32c, encodeRecordBatch, type BrokerFrame } from '@runnel/client/codec';
import { TestClient, makeBatch, startTestServer, type TestServer } from '../broker/harness.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
  await server.broker.createTopic({ name: 'space', partitions: 1, replicationFactor: 1 });
});
after(async () => {
  await server.stop();
});

/** Rewrites header fields of an encoded batch and fixes its CRC (so only the policy can refuse it). */
function patched(batch: Uint8Array, edit: (view: DataView) => void): Uint8Array {
  const out = batch.slice();
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  edit(view);
  view.setUint32(BatchField.crc, crc32c(out.subarray(BatchField.attributes)));
  return out;
}

const upgradeStatus = (origin: string | undefined): Promise<number> => new Promise((resolve) => {
  const ws = new WebSocket(server.wsUrl, origin ? { origin } : {});
  ws.on('open', () => { ws.close(); resolve(101); });
  ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
  ws.on('error', () => {});
});

test('finding 4: a WebSocket from a foreign Origin is refused at the upgrade; loopback, same-origin and non-browser clients are not', async () => {
  assert.equal(await upgradeStatus('https://evil.example'), 403);
  assert.equal(await upgradeStatus('http://localhost:5173'), 101);
  assert.equal(await upgradeStatus(undefined), 101);
  assert.equal(await upgradeStatus(server.url), 101, 'same origin');
});

test('finding 5: a 70-byte batch claiming lastOffsetDelta 2^31-1 is refused and the log end does not move', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const grab = patched(makeBatch(['x']), (v) => v.setInt32(BatchField.lastOffsetDelta, 2 ** 31 - 1));
  const ack = await c.produce('space', 0, grab);
  assert.equal(ack.errorCode, ErrorTable.INVALID_RECORD.code);
  assert.equal(server.broker.describeTopic('space').partitions[0].logEndOffset, 0);
  const control = patched(makeBatch(['x']), (v) => v.setInt16(BatchField.attributes, 0x30));
  assert.equal((await c.produce('space', 0, control)).errorCode, ErrorTable.INVALID_RECORD.code, 'transactional/control bits');
  const old = encodeRecordBatch({ baseTimestamp: 0, records: [{ value: new Uint8Array([1]), timestampMs: 0 }] });
  assert.equal((await c.produce('space', 0, old)).errorCode, ErrorTable.INVALID_TIMESTAMP.code, 'year 1970');
  const future = encodeRecordBatch({ baseTimestamp: 255_000 * 365 * 86_400_000, records: [{ value: new Uint8Array([1]) }] });
  assert.equal((await c.produce('space', 0, future)).errorCode, ErrorTable.INVALID_TIMESTAMP.code, 'year 255,000');
  assert.equal((await c.produce('space', 0, makeBatch(['ok']))).errorCode, 0, 'a good batch still goes through');
  c.close();
});

test('finding 5: metadata creates no topic unless asked, and at most maxTopicsAutoCreatedPerRequest when asked; subscribe creates none', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const before = server.broker.listTopics().length;
  const names = Array.from({ length: 2000 }, (_, i) => `flood-${i}`);
  const md = await c.request<Extract<BrokerFrame, { type: 'metadata' }>>({ type: 'metadataRequest', requestId: 0, topics: names, allowAutoTopicCreation: 0 });
  assert.ok(md.topics.every((t) => t.errorCode === ErrorTable.UNKNOWN_TOPIC_OR_PARTITION.code));
  assert.equal(server.broker.listTopics().length, before, 'a consumer metadata request creates nothing');
  const asked = await c.request<Extract<BrokerFrame, { type: 'metadata' }>>({ type: 'metadataRequest', requestId: 0, topics: names, allowAutoTopicCreation: 1 });
  const created = server.broker.listTopics().length - before;
  assert.equal(created, server.broker.config.limits.maxTopicsAutoCreatedPerRequest, `one request created ${created} topics`);
  assert.equal(asked.topics.filter((t) => t.errorCode === 0).length, created);
  const sub = await c.subscribe('never-created', 0, { kind: 'earliest' }, 1024);
  assert.equal(sub.errorCode, ErrorTable.UNKNOWN_TOPIC_OR_PARTITION.code);
  assert.equal(server.broker.listTopics().some((t) => t.name === 'never-created'), false, 'subscribe does not create its topic');
  c.close();
});

test('finding 5: credit a subscription has not used is capped at maxCreditBytes (3,000 grants of 64 MiB were all accepted)', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const max = server.broker.config.limits.maxCreditBytes;
  assert.equal((await c.subscribe('space', 0, { kind: 'latest' }, max - 1024)).errorCode, 0);
  c.send({ type: 'credit', topic: 'space', partition: 0, bytes: 1024 });
  c.send({ type: 'credit', topic: 'space', partition: 0, bytes: max });
  const refused = await c.waitFor((f) => f.type === 'error');
  assert.equal(refused.type === 'error' && refused.errorCode, ErrorTable.LIMIT_EXCEEDED.code);
  for (let i = 0; i < 50; i++) c.send({ type: 'credit', topic: 'space', partition: 0, bytes: max });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.frames.filter((f) => f.type === 'error').length, 50, 'every grant past the cap is refused');
  assert.equal(c.closeCode, null, 'refused grants are not protocol errors: the connection stays');
  c.close();
});
