/** The opt-in page-exit flush (`@runnel/client/beacon`): which frozen batches go, where, and how the client installs it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type BeaconPlugin } from './index.ts';
import { BEACON_BATCHES_PER_PARTITION, beaconUrl, flushByBeacon, pageExitBeacon, RECORD_BATCH_CONTENT_TYPE } from './beacon.ts';
import { FakeBroker } from './fake-broker.ts';
import type { FrozenBatch } from './storage.ts';

const batch = (id: number, topic: string, partition: number, size: number): FrozenBatch =>
  ({ id, topic, partition, baseSequence: 0, recordIds: [id], bytes: new Uint8Array(size).fill(id) });

test('beaconUrl maps ws(s) bootstrap URLs to the HTTP produce route', () => {
  assert.equal(beaconUrl('wss://h.example/v1/ws', { topic: 'a b', partition: 2 }), 'https://h.example/v1/topics/a%20b/records?partition=2');
  assert.equal(beaconUrl('ws://localhost:8080/v1/ws', { topic: 't', partition: 0 }), 'http://localhost:8080/v1/topics/t/records?partition=0');
});

test('flushByBeacon posts the oldest batch of each partition within the byte budget, keepalive without credentials', () => {
  const sent: { url: string; init: RequestInit }[] = [];
  const io = { fetch: async (url: string, init: RequestInit) => { sent.push({ url, init }); } };
  const batches = [batch(1, 't', 0, 40), batch(2, 't', 1, 50), batch(3, 't', 0, 10), batch(4, 't', 2, 5), batch(5, 't', 2, 5)];
  assert.equal(flushByBeacon(batches, 'ws://b/v1/ws', 60, io), 2); // p0: 40 fits; p1: 50 does not; p2: 5 fits; later batches of a partition never go
  assert.deepEqual(sent.map((s) => [s.url.slice(-11), (s.init.body as Uint8Array)[0]]), [['partition=0', 1], ['partition=2', 4]]);
  // No credentials: a credentialed cross-origin request would need the broker to echo the origin.
  assert.deepEqual({ ...sent[0].init, body: undefined }, { method: 'POST', body: undefined, keepalive: true, credentials: 'omit', headers: { 'content-type': RECORD_BATCH_CONTENT_TYPE } });
  assert.equal(flushByBeacon(batches, 'ws://b/v1/ws', 1000, {}), 0);
});

test('flushByBeacon falls back to sendBeacon without keepalive fetch; a refused beacon sends nothing for its partition', () => {
  const sent: { url: string; type: string }[] = [];
  const batches = [batch(1, 't', 0, 4), batch(2, 't', 1, 4), batch(3, 't', 0, 4), batch(4, 't', 2, 4)];
  const nav = { sendBeacon: (url: string, data: BodyInit) => { sent.push({ url, type: (data as Blob).type }); return !url.endsWith('partition=1'); } };
  assert.equal(flushByBeacon(batches, 'ws://b/v1/ws', 1000, nav), 2);
  assert.deepEqual(sent.map((s) => [s.url.slice(-11), s.type]), [['partition=0', RECORD_BATCH_CONTENT_TYPE], ['partition=1', RECORD_BATCH_CONTENT_TYPE], ['partition=2', RECORD_BATCH_CONTENT_TYPE]]);
  assert.equal(flushByBeacon(batches, 'ws://b/v1/ws', 1000, { sendBeacon: () => { throw new TypeError('refused type'); } }), 0);
  assert.equal(BEACON_BATCHES_PER_PARTITION, 1);
});

test('the beacon is opt-in: createClient installs the given plugin with the producer and removes it on close', async () => {
  const broker = new FakeBroker(1);
  const calls: string[] = [];
  const plugin: BeaconPlugin = (producer, wsUrl, maxBytes) => {
    calls.push(`install ${typeof producer.frozenBatches} ${wsUrl()} ${maxBytes}`);
    return () => calls.push('remove');
  };
  const client = createClient({ urls: 'fake://x', transport: broker.transport, beacon: plugin });
  await client.close();
  assert.deepEqual(calls, ['install function fake://x 65536', 'remove']);
  assert.equal(typeof pageExitBeacon, 'function');
  const off = pageExitBeacon({ freezeNow: async () => {}, frozenBatches: () => [], producerSecret: () => '' }, () => 'ws://b', 1); // no document in Node: a no-op
  off();
});
