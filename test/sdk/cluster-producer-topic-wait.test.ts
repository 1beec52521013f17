/**
 * The SDK producer on a real 3-broker cluster (LocalCluster) with topic
 * auto-creation off (issue 12 item 3, issue 13's finding):
 * - sends to a topic that does not exist yet wait for it (Kafka's
 *   max.block.ms, here unknownTopicWaitMs) and are acknowledged once it is
 *   created through another broker, explicit partitions too;
 * - 50 sends waiting for a topic share one metadata request, and when their
 *   broker is SIGKILLed under them nothing escapes as an unhandled rejection:
 *   the client moves to another broker and they are acknowledged once the
 *   topic is created;
 * - a topic that never appears fails its sends after unknownTopicWaitMs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createClient, type RunnelClient, type WebSocketConstructor, type RunnelError } from '@runnel/client';
import { LocalCluster } from '../../server/src/cluster/local-cluster.ts';
import { BrokerHttp } from '../e2e/harness/broker-http.ts';

const WS = WebSocket as unknown as WebSocketConstructor;

test('auto-creation off: sends wait for a topic created later through another broker; their broker SIGKILLed meanwhile: no unhandled rejection; a topic that never appears fails after unknownTopicWaitMs', { timeout: 180_000 }, async () => {
  const escaped: unknown[] = [];
  const onRejection = (reason: unknown): void => { escaped.push(reason); };
  process.on('unhandledRejection', onRejection);
  const cluster = await LocalCluster.start({ nodes: 3, minInsyncReplicas: 2, env: { RUNNEL_AUTO_CREATE_TOPICS: 'false' } });
  const clients: RunnelClient[] = [];
  try {
    const [b1, b2, b3] = cluster.brokers;
    const create = async (name: string, replicationFactor = 3): Promise<void> => {
      const res = await new BrokerHttp(b2.url).request('POST', '/v1/topics', { name, partitions: 3, replicationFactor });
      assert.equal(res.status, 201, JSON.stringify(res.json));
    };
    const client = createClient({ urls: [b1.wsUrl, b3.wsUrl], WebSocket: WS, beacon: false, limits: { unknownTopicWaitMs: 30_000 } });
    clients.push(client);
    await client.metadata([]);
    await client.producer.ready;

    // 1. A topic created 500 ms after the sends, through another broker than the producer's.
    const early = [
      ...Array.from({ length: 20 }, (_, n) => client.producer.send('appears-later', { n })),
      ...Array.from({ length: 5 }, (_, n) => client.producer.send('appears-later', { n }, { partition: 1 })),
    ];
    const settled = early.map(() => false);
    early.forEach((p, i) => p.then(() => (settled[i] = true), () => (settled[i] = true)));
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(settled.every((s) => !s), 'no send settled before its topic existed');
    await create('appears-later');
    const acked = await Promise.all(early);
    assert.deepEqual(acked.slice(20).map((m) => m.partition), [1, 1, 1, 1, 1]);

    // 2. 50 sends waiting for a topic; the producer's broker SIGKILLed under them.
    const waiting = Array.from({ length: 50 }, (_, n) => client.producer.send('after-kill', { n }));
    await new Promise((r) => setTimeout(r, 300));
    await b1.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    await create('after-kill', 2); // one broker is down
    assert.equal((await Promise.all(waiting)).length, 50);

    // 3. Never created: fails after unknownTopicWaitMs.
    const short = createClient({ urls: [b3.wsUrl], WebSocket: WS, beacon: false, limits: { unknownTopicWaitMs: 1500 } });
    clients.push(short);
    const at = Date.now();
    await assert.rejects(short.producer.send('never', { n: 1 }), (e: RunnelError) => e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION');
    assert.ok(Date.now() - at >= 1500, `failed after ${Date.now() - at} ms`);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(escaped.map(String), [], 'unhandled rejections escaped the SDK');
  } catch (e) {
    console.log('BODY FAILED', e);
    throw e;
  } finally {
    process.off('unhandledRejection', onRejection);
    for (const c of clients) await c.close().catch(() => {});
    await cluster.stop();
  }
});
