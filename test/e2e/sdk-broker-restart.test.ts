/**
 * Must show #3 (issue 5): the broker is killed with SIGKILL mid-stream and
 * restarted on the same port and data dir, twice, while one page produces
 * (durable outbox) and another consumes. Afterwards the log holds every
 * produced id exactly once (acknowledged records survived the kill; batches
 * whose ack was lost were resent and de-duplicated by the recovered
 * producer state) and the consumer's journal holds every offset exactly
 * once, in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerHttp } from './harness/broker-http.ts';
import { exactlyOnceProblems } from './harness/delivery-ledger.ts';
import { pause, waitFor } from './harness/wait-for.ts';
import { useE2e } from './harness/e2e-setup.ts';
import { ledgerOf, openSdkPage, serveSdkPage } from './pages/sdk-page-driver.ts';

const TOPIC = 'restart-stream';
const PARTITIONS = 3;
const RECORDS_PER_SECOND = 300;
const KILLS = 2;
/** How long the broker stays down (pacing: the pages keep producing meanwhile). */
const DOWN_MS = 1500;

const e2e = useE2e({ pages: serveSdkPage });

test('SIGKILL + restart of the broker mid-stream: no loss or duplicate in the log, none at the handler', { timeout: 120_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  await http.createTopic(TOPIC, PARTITIONS);
  const context = await e2e.browser.newContext();
  const producer = await openSdkPage(context, e2e.pages.url, e2e.broker.wsUrl, 'restart-producer');
  const consumer = await openSdkPage(context, e2e.pages.url, e2e.broker.wsUrl, 'restart-consumer');
  const context_ = () => `${e2e.broker.log()}\n--- producer page ---\n${producer.log.slice(-10).join('\n')}\n--- consumer page ---\n${consumer.log.slice(-10).join('\n')}`;
  try {
    await consumer.consume(TOPIC, 'restart-consumer');
    await producer.startProducing(TOPIC, RECORDS_PER_SECOND, 'r-');
    for (let i = 0; i < KILLS; i++) {
      const before = consumer.progress.count;
      await waitFor(`the consumer to receive records (round ${i})`, () => consumer.progress.count > before + 100, { context: context_ });
      await e2e.broker.kill();
      await waitFor('both pages to notice the broker is gone', async () => (await producer.state()) !== 'connected' && (await consumer.state()) !== 'connected', { context: context_ });
      await pause(DOWN_MS);
      assert.ok((await producer.produceStats()).outboxRecords > 0, 'records produced while the broker is down wait in the outbox');
      await e2e.broker.restart();
      await waitFor('both pages to reconnect', async () => (await producer.state()) === 'connected' && (await consumer.state()) === 'connected', { context: context_ });
    }
    const before = consumer.progress.count;
    await waitFor('the consumer to receive records after the last restart', () => consumer.progress.count > before + 100, { context: context_ });
    const stats = await producer.stopProducing();
    assert.deepEqual(stats.errors, [], 'every send was queued and acknowledged');
    await waitFor('every queued record to be acknowledged', async () => {
      const s = await producer.produceStats();
      return s.outboxRecords === 0 && s.acked === stats.queued.length;
    }, { context: context_ });

    const partitions = await http.partitions(TOPIC);
    const highWatermarks = partitions.map((p) => p.highWatermark);
    const logIds = (await Promise.all(partitions.map((p) => http.readLog(TOPIC, p.partition)))).flat().map((r) => (r.value as { id: string }).id);
    const logProblems = exactlyOnceProblems(stats.queued, logIds);
    assert.deepEqual(logProblems.slice(0, 20), [], `${logProblems.length} produced ids not exactly once in the log`);

    const journal = await waitFor('the journal to reach every high watermark', async () => {
      const rows = await consumer.journal();
      return ledgerOf(rows).reached(highWatermarks) && rows;
    }, { context: context_ });
    const problems = ledgerOf(journal).problems(highWatermarks);
    assert.deepEqual(problems, [], `deliveries vs log (high watermarks ${highWatermarks}):\n${problems.join('\n')}`);
    console.log(`# broker restart: ${KILLS} SIGKILLs, ${stats.queued.length} produced, ${logIds.length} in the log, ${journal.length} consumed`);
  } finally {
    await context.close();
  }
});
