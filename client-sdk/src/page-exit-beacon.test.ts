/** The opt-in page-exit flush (`@runnel/client/beacon`): which frozen batches go, where, and how the client installs it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type BeaconPlugin } from './index.ts';
import { beaconUrl, flushByBeacon, pageExitBeacon, RECORD_BATCH_CONTENT_TYPE } from './beacon.ts';
import { FakeBroker } from './fake-broker.ts';
import type { FrozenBatch } from './storage.ts';

const batch = (id: number, topic: string, partition: number, size: number): FrozenBatch =>
  ({ id, topic, partition, baseSequence: 0, recordIds: [id], bytes: new Uint8Array(size).fill(id) });

test('beaconUrl maps ws(s) bootstrap URLs to the HTTP produce route', () => {
  assert.equal(beaconUrl('wss://h.example/v1/ws', { topic: 'a b', partition: 2 }), 'https://h.example/v1/topics/a%20b/records?partition=2');
  assert.equal(beaconUrl('ws://localhost:8080/v1/ws', { topic: 't', partition: 0 }), 'http://localhost:8080/v1/topics/t/records?partition=0');
});

test('flushByBeacon sends in order within the byte budget; a partition stops at its first batch that cannot go', async () => {
  const sent: { url: string; type: string; size: number }[] = [];
  const nav = { sendBeacon: (url: string, data: BodyInit) => { sent.push({ url, type: (data as Blob).type, size: (data as Blob).size }); return true; } };
  const batches = [batch(1, 't', 0, 40), batch(2, 't', 1, 50), batch(3, 't', 0, 10), batch(4, 't', 1, 5)];
  assert.equal(flushByBeacon(batches, 'ws://b/v1/ws', 60, nav), 2); // 40 fits; 50 does not (blocks p1); 10 fits; p1 stays blocked
  assert.deepEqual(sent.map((s) => [s.url.endsWith('partition=0'), s.size, s.type]), [[true, 40, RECORD_BATCH_CONTENT_TYPE], [true, 10, RECORD_BATCH_CONTENT_TYPE]]);
  const refused = { sendBeacon: () => false };
  const realFetch = globalThis.fetch;
  try {
    (globalThis as { fetch?: unknown }).fetch = undefined;
    assert.equal(flushByBeacon(batches, 'ws://b/v1/ws', 1000, refused), 0);
  } finally {
    globalThis.fetch = realFetch;
  }
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
  const off = pageExitBeacon({ freezeNow: async () => {}, frozenBatches: () => [] }, () => 'ws://b', 1); // no document in Node: a no-op
  off();
});
