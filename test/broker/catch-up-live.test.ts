/**
 * Catch-up then live over real sockets: subscribers start from earliest (or
 * an offset) while producers keep appending; each receives every offset
 * exactly once and in order across the catch-up → live hand-over, with
 * credit small enough to bounce them between live and catch-up many times.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestClient, makeBatch, startTestServer, type TestServer } from './harness.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

test('no gap and no duplicate while producing concurrently', async () => {
  const producers = await Promise.all([0, 1, 2].map(() => TestClient.connect(server.wsUrl)));
  const batchesPerProducer = 300;
  const recordsPerBatch = 5;
  const total = producers.length * batchesPerProducer * recordsPerBatch;
  const batchBytes = makeBatch(Array.from({ length: recordsPerBatch }, () => 'x'.repeat(50))).length;
  // Seed some history so early subscribers start in catch-up.
  await producers[0].produce('handover', 0, makeBatch(['seed']));
  const producing = producers.map(async (p, i) => {
    for (let b = 0; b < batchesPerProducer; b++) {
      const ack = await p.produce('handover', 0, makeBatch(Array.from({ length: recordsPerBatch }, () => `p${i}-b${b}`.padEnd(50, '.'))));
      assert.equal(ack.errorCode, 0);
    }
  });
  const subscribers: TestClient[] = [];
  const subscribing = (async () => {
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 40));
      const c = await TestClient.connect(server.wsUrl);
      c.autoCredit = true;
      // Credit for ~3 batches: the subscriber leaves the live channel whenever it runs dry.
      const answer = await c.subscribe('handover', 0, { kind: 'earliest' }, batchBytes * 3);
      assert.equal(answer.errorCode, 0);
      subscribers.push(c);
    }
  })();
  await Promise.all([...producing, subscribing]);
  for (const c of subscribers) {
    const got = await c.waitForRecords('handover', 0, total + 1, 20_000);
    assert.equal(got.length, total + 1, 'exactly every record once');
    got.forEach((r, i) => assert.equal(r.offset, i, `offset ${i} in order`));
  }
  for (const c of [...producers, ...subscribers]) c.close();
});
