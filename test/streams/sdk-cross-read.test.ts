/**
 * Must show 2 of issue 14, the WebSocket half: a Durable Streams stream is a
 * Runnel topic to the Runnel SDK (@runnel/client over WebSocket, Node).
 * Messages appended through Durable Streams (plain appends and an
 * @durable-streams/client IdempotentProducer's batches, which carry the
 * stream's derived producer id) are delivered to an SDK subscriber, once each,
 * in order, at the positions the Durable Streams offsets name; records the
 * SDK's idempotent producer sends to that topic are read by a Durable Streams
 * catch-up from the stored offset and by a live SSE reader already waiting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createClient, type ConsumerRecord, type WebSocketConstructor } from '@runnel/client';
import { DurableStream, IdempotentProducer, stream } from '@durable-streams/client';
import { BrokerProcess } from '../e2e/harness/broker-process.ts';
import { waitFor } from '../e2e/harness/wait-for.ts';

const WS = WebSocket as unknown as WebSocketConstructor;
type Msg = { from: string; i: number };
/** The position part of an offset (`<position>_<generation>`, docs/durable-streams.md). */
const positionOf = (offset: string): number => Number(offset.split('_')[0]);

test('Durable Streams ↔ Runnel SDK: DS appends reach an SDK subscriber, SDK sends reach DS catch-up and SSE readers', { timeout: 120_000 }, async () => {
  const broker = await BrokerProcess.start();
  const client = createClient({ urls: broker.wsUrl, WebSocket: WS, clientId: 'ds-cross-read' });
  try {
    const url = `${broker.url}/v1/stream/cross/sdk-${process.pid}`;
    const handle = await DurableStream.create({ url, contentType: 'application/json' });
    const topic = (await fetch(url, { method: 'HEAD' })).headers.get('runnel-topic');
    assert.ok(topic, 'HEAD names the stream\'s topic');

    for (let i = 0; i < 5; i++) await handle.append(JSON.stringify({ from: 'ds', i }));
    const producer = new IdempotentProducer(handle, 'cross-reader-test', { lingerMs: 5 });
    for (let i = 5; i < 25; i++) producer.append(JSON.stringify({ from: 'ds', i }));
    await producer.flush();
    await producer.detach();
    const written = await stream<Msg>({ url, offset: '-1', live: false, json: true });
    const dsItems = await written.json();
    assert.deepEqual(dsItems.map((m) => m.i), Array.from({ length: 25 }, (_, i) => i));
    const stored = written.offset;
    assert.equal(positionOf(stored), 25, 'one record per JSON message');

    // The SDK subscriber sees exactly the Durable Streams messages, at their positions.
    const seen: ConsumerRecord[] = [];
    const sub = client.subscribe(topic, (r) => { seen.push(r); }, { from: 'earliest' });
    await waitFor('the SDK subscriber has the 25 Durable Streams messages', () => seen.length >= 25);
    assert.deepEqual(seen.map((r) => r.offset), Array.from({ length: 25 }, (_, i) => i));
    assert.deepEqual(seen.map((r) => r.value), dsItems);

    // A live Durable Streams SSE reader from the stored offset, waiting before the SDK writes.
    const live = await stream<Msg>({ url, offset: stored, live: 'sse', json: true });
    const liveItems: Msg[] = [];
    const unsubscribe = live.subscribeJson((batch) => { liveItems.push(...batch.items); });

    const acks = [];
    for (let i = 0; i < 10; i++) acks.push(await client.producer.send(topic, { from: 'sdk', i }));
    assert.deepEqual(acks.map((a) => a.offset), Array.from({ length: 10 }, (_, i) => 25 + i));

    const resumed = await stream<Msg>({ url, offset: stored, live: false, json: true });
    assert.deepEqual(await resumed.json(), Array.from({ length: 10 }, (_, i) => ({ from: 'sdk', i })), 'catch-up from the stored offset: the SDK records, once each');
    assert.equal(positionOf(resumed.offset), 35);
    await waitFor('the SSE reader has the SDK records', () => liveItems.length >= 10);
    assert.deepEqual(liveItems, Array.from({ length: 10 }, (_, i) => ({ from: 'sdk', i })));
    await waitFor('the SDK subscriber sees its own records too', () => seen.length >= 35);
    assert.deepEqual(seen.map((r) => r.offset), Array.from({ length: 35 }, (_, i) => i), 'no gap, no duplicate');
    unsubscribe();
    live.cancel();
    await sub.unsubscribe();

    // A Durable Streams append after the SDK's: the positions stay one sequence for both.
    await handle.append(JSON.stringify({ from: 'ds', i: 25 }));
    const tail = await stream<Msg>({ url, offset: resumed.offset, live: false, json: true });
    assert.deepEqual(await tail.json(), [{ from: 'ds', i: 25 }]);
  } finally {
    await client.close();
    await broker.stop();
  }
});
