/**
 * Failover in real Chromium (issue 12, must show 3): two pages — one
 * producing through the IndexedDB outbox, one consuming transactionally
 * into a journal — are given two broker URLs. The broker they are connected
 * to is SIGKILLed mid-stream and the other one takes over the same log
 * (today: a second broker process on the same data dir, which to the SDK
 * is what the next broker of a cluster is: same topics, topic ids,
 * producer-id key and producer state); then the same back. Afterwards every
 * queued id is in the log exactly once (no outbox record lost, in-flight
 * batches de-duplicated), the journal holds every offset exactly once, in
 * order, and no send failed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { BrokerHttp } from './harness/broker-http.ts';
import { freePort } from './harness/broker-process.ts';
import { launchChromium } from './harness/chromium.ts';
import { DeliveryLedger, exactlyOnceProblems } from './harness/delivery-ledger.ts';
import { DirBroker } from './harness/dir-broker.ts';
import type { PageServer } from './harness/page-server.ts';
import { waitFor } from './harness/wait-for.ts';
import { ledgerOf, serveSdkPage } from './pages/sdk-page-driver.ts';

const TOPIC = 'failover-stream';
const PARTITIONS = 3;
const RECORDS_PER_SECOND = 300;

let dir: string, pages: PageServer, browser: Browser, brokers: [DirBroker, DirBroker];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnel-e2e-failover-'));
  brokers = [new DirBroker(await freePort(), join(dir, 'data')), new DirBroker(await freePort(), join(dir, 'data'))];
  [pages, browser] = await Promise.all([serveSdkPage(), launchChromium(), brokers[0].start()]);
});
after(async () => {
  await browser?.close().catch(() => {});
  await pages?.close();
  for (const b of brokers ?? []) await b.kill();
  await rm(dir, { recursive: true, force: true });
});

/** sdk-page.ts opened on several URLs (the shared driver opens one). */
async function openPage(context: BrowserContext, urls: string[], db: string) {
  const page = await context.newPage();
  const progress = new DeliveryLedger();
  const log: string[] = [];
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
  page.on('console', (message) => { if (message.type() === 'warning' || message.type() === 'error') log.push(`[${message.type()}] ${message.text()}`); });
  await page.exposeFunction('runnelDelivered', (rows: [number, number, string][]) => progress.record(rows.map(([partition, offset]) => ({ partition, offset }))));
  await page.goto(`${pages.url}/sdk.html`);
  await page.waitForFunction(() => window.runnelPage !== undefined);
  // NB: ping every second: a page notices a dead link within 2 s even without a close (not needed for SIGKILL).
  await page.evaluate((o) => window.runnelPage.open(o), { urls, db, pingIntervalMs: 1_000 });
  return {
    page, progress, log,
    consume: (topic: string, consumerId: string) => page.evaluate((o) => window.runnelPage.consume(o), { topic, consumerId }),
    journal: () => page.evaluate(() => window.runnelPage.journal()),
    startProducing: (topic: string, ratePerSecond: number, idPrefix: string) => page.evaluate((o) => window.runnelPage.startProducing(o), { topic, ratePerSecond, idPrefix }),
    stopProducing: () => page.evaluate(() => window.runnelPage.stopProducing()),
    produceStats: () => page.evaluate(() => window.runnelPage.produceStats()),
    state: () => page.evaluate(() => window.runnelPage.state()),
  };
}

test('SIGKILL of the connected broker mid-stream, both ways: the pages resume on the other URL, no loss, no duplicate, no lost outbox record', { timeout: 180_000 }, async () => {
  let http = new BrokerHttp(brokers[0].url);
  await http.createTopic(TOPIC, PARTITIONS);
  const context = await browser.newContext();
  const urls = brokers.map((b) => b.wsUrl);
  const producer = await openPage(context, urls, 'failover-producer');
  const consumer = await openPage(context, urls, 'failover-consumer');
  const context_ = () => `${brokers.map((b) => b.log()).join('\n')}\n--- producer page ---\n${producer.log.slice(-10).join('\n')}\n--- consumer page ---\n${consumer.log.slice(-10).join('\n')}`;
  const resumedMs: number[] = [];
  try {
    await consumer.consume(TOPIC, 'failover-consumer');
    await producer.startProducing(TOPIC, RECORDS_PER_SECOND, 'f-');
    for (const [from, to] of [[brokers[0], brokers[1]], [brokers[1], brokers[0]]] as const) {
      const before = consumer.progress.count;
      await waitFor(`the consumer to receive records through ${from.port}`, () => consumer.progress.count > before + 200, { context: context_ });
      const killedAt = Date.now();
      await from.kill();
      await to.start();
      http = new BrokerHttp(to.url);
      const after = consumer.progress.count;
      await waitFor(`records through ${to.port}`, () => consumer.progress.count > after + 200, { context: context_ });
      resumedMs.push(Date.now() - killedAt);
    }
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
    assert.deepEqual(logProblems.slice(0, 20), [], `${logProblems.length} queued ids not exactly once in the log`);
    const journal = await waitFor('the journal to reach every high watermark', async () => {
      const rows = await consumer.journal();
      return ledgerOf(rows).reached(highWatermarks) && rows;
    }, { context: context_ });
    const problems = ledgerOf(journal).problems(highWatermarks);
    assert.deepEqual(problems, [], `deliveries vs log (high watermarks ${highWatermarks}):\n${problems.join('\n')}`);
    console.log(`# failover: 2 SIGKILLs, kill to records flowing again ${resumedMs.join(' / ')} ms (includes starting the other broker), ${stats.queued.length} produced, ${logIds.length} in the log, ${journal.length} consumed`);
  } finally {
    await context.close();
  }
});
