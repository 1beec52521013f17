/**
 * @runnel/worker in Node against a real broker: the host exposed with
 * comlink over a MessageChannel (the same path a SharedWorker port takes:
 * structured-cloned records, proxied callbacks, errors rebuilt as
 * RunnelError), two "tabs" on one host/connection with their own
 * consumerIds, a tab's release, and the in-page fallback.
 */
import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expose } from 'comlink';
import { WebSocket } from 'ws';
import { connectShared, createHost } from '@runnel/worker';
import { BrokerProcess } from '../e2e/harness/broker-process.ts';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

const until = async (cond: () => boolean, what: string, ms = 30_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('two tabs share one host over comlink: each gets everything it subscribed to, with its own offsets', { timeout: 120_000 }, async () => {
  const broker = await BrokerProcess.start();
  const host = await createHost();
  const channels = [new MessageChannel(), new MessageChannel()];
  for (const c of channels) expose(host, c.port1 as any);
  try {
    const [tabA, tabB] = await Promise.all(channels.map((c) => connectShared({ workerUrl: 'unused', endpoint: c.port2 as any, urls: broker.wsUrl, databaseName: 'worker-test' })));
    const a: number[] = [], b: number[] = [];
    await tabA.subscribe<{ n: number }>('shared', (r) => { a.push(r.value.n); }, { consumerId: 'tab-a', from: 'earliest' });
    await tabB.subscribe<{ n: number }>('shared', (r) => { b.push(r.value.n); }, { consumerId: 'tab-b', from: 'earliest' });
    const acks = await Promise.all(Array.from({ length: 200 }, (_, n) => (n % 2 ? tabA : tabB).send('shared', { n }, { key: `u${n % 5}` })));
    assert.equal(new Set(acks.map((x) => `${x.partition}/${x.offset}`)).size, 200);
    await until(() => a.length === 200 && b.length === 200, 'both tabs');
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i));
    assert.deepEqual([...b].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i));
    const metrics = await (await fetch(`${broker.url}/metrics`)).text();
    const connections = Number(/^runnel_connections\S*\s+(\d+)/m.exec(metrics)?.[1] ?? NaN);
    assert.equal(connections, 1, 'one WebSocket for both tabs');
    await assert.rejects(tabA.send({ name: 'shared', schema: { parse: () => { throw new Error('no'); } }, onInvalid: 'error' }, { n: 1 }), (e: any) => e.errorName === 'SCHEMA_VALIDATION_FAILED');
    await tabA.close(); // releases tab A's subscription only
    await tabB.send('shared', { n: 200 }, { key: 'x' });
    await until(() => b.length === 201, 'tab B keeps receiving');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a.length, 200);
    await tabB.close();
  } finally {
    for (const c of channels) { c.port1.close(); c.port2.close(); }
    await host.shutdown(); // else its client keeps reconnecting and the test process never exits
    await broker.stop();
  }
});

test('in-page fallback has the same API', { timeout: 60_000 }, async () => {
  const broker = await BrokerProcess.start();
  try {
    const tab = await connectShared({ workerUrl: 'unused', mode: 'page', urls: broker.wsUrl, databaseName: 'page-test' });
    assert.equal(tab.mode, 'page');
    const got: unknown[] = [];
    await tab.subscribe('page', (r) => { got.push(r.value); }, { from: 'earliest' });
    const sent = tab.send('page', { hello: 'world' });
    await sent.queued;
    await sent;
    await until(() => got.length === 1, 'record');
    assert.deepEqual(got, [{ hello: 'world' }]);
    assert.equal(await tab.state(), 'connected');
    await tab.close();
  } finally {
    await broker.stop();
  }
});
