/**
 * Must show #1 (issue 5): a page consuming a topic that a Node producer
 * writes at ~1,000 records/s is reloaded 10 times at random moments; in the
 * end the handler's committed effects (the page's IndexedDB journal,
 * written in the same transaction as the stored offset) hold every offset
 * of the log exactly once, in order per partition: no gap, no duplicate.
 * Real broker process, real Chromium, real IndexedDB.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerHttp } from './harness/broker-http.ts';
import { RateProducer } from './harness/rate-producer.ts';
import { pause, waitFor } from './harness/wait-for.ts';
import { useE2e } from './harness/e2e-setup.ts';
import { ledgerOf, openSdkPage, serveSdkPage } from './pages/sdk-page-driver.ts';

const TOPIC = 'reload-stream';
const PARTITIONS = 3;
const RECORDS_PER_SECOND = 1000;
const RELOADS = 10;
/** A reload lands 0.2–1.5 s after the page delivers again: mid-stream, never at a fixed phase. */
const RELOAD_DELAY_MS = [200, 1500] as const;

const e2e = useE2e({ pages: serveSdkPage });

test('a consuming page reloaded 10 times mid-stream saw every offset exactly once, in order', { timeout: 120_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  await http.createTopic(TOPIC, PARTITIONS);
  const context = await e2e.browser.newContext();
  const producer = new RateProducer(http, TOPIC, RECORDS_PER_SECOND);
  const sdk = await openSdkPage(context, e2e.pages.url, e2e.broker.wsUrl, 'reload-test');
  const context_ = () => `${e2e.broker.log()}\n--- page log ---\n${sdk.log.slice(-20).join('\n')}`;
  try {
    await sdk.consume(TOPIC, 'reload-consumer');
    for (let i = 0; i < RELOADS; i++) {
      const before = sdk.progress.count;
      await waitFor(`deliveries after (re)load #${i}`, () => sdk.progress.count > before + 20, { context: context_ });
      await pause(RELOAD_DELAY_MS[0] + Math.random() * (RELOAD_DELAY_MS[1] - RELOAD_DELAY_MS[0]));
      await sdk.reload();
      await sdk.consume(TOPIC, 'reload-consumer');
    }
    const produced = await producer.stop();
    const partitions = await http.partitions(TOPIC);
    const highWatermarks = partitions.map((p) => p.highWatermark);
    assert.ok(highWatermarks.reduce((a, b) => a + b, 0) >= produced, 'every acknowledged record is in the log');

    const journal = await waitFor('the journal to reach every high watermark', async () => {
      const rows = await sdk.journal();
      return ledgerOf(rows).reached(highWatermarks) && rows;
    }, { context: context_ });
    const problems = ledgerOf(journal).problems(highWatermarks);
    assert.deepEqual(problems, [], `deliveries vs log (${journal.length} journal rows, high watermarks ${highWatermarks}):\n${problems.join('\n')}`);
    assert.equal(journal.length, highWatermarks.reduce((a, b) => a + b, 0));

    // The values the handler saw are the log's, offset for offset.
    for (let p = 0; p < PARTITIONS; p++) {
      const log = await http.readLog(TOPIC, p);
      const seen = journal.filter((r) => r.partition === p).map((r) => r.id);
      assert.deepEqual(seen, log.map((r) => (r.value as { id: string }).id), `partition ${p}: handler values = log values`);
    }
    // The SDK's socket setup asks nothing of the platform WebSocket that Chromium warns about (a 'nodebuffer' binaryType once logged a warning per socket).
    assert.deepEqual(sdk.log.filter((line) => line.includes('binaryType') || line.includes('nodebuffer')), [], 'no console warning about the socket setup');
    console.log(`# reload: ${RELOADS} reloads, ${journal.length} records over ${PARTITIONS} partitions, producer ${produced} acked`);
  } finally {
    await producer.stop();
    await context.close();
  }
});
