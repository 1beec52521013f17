/**
 * One outbox, one owner: where SharedWorker is missing (`dedicated` worker
 * per tab, or the client in the page), every tab runs its own client on the
 * same IndexedDB database. Each client must own a separate outbox (its own
 * records, producer id and sequences), or two tabs overwrite each other's
 * records and reuse each other's sequence numbers, and the broker acks one
 * tab's batch as a "duplicate" of the other's: silent loss.
 *
 * 1. Two dedicated-worker tabs on one database produce at once: every record
 *    of both is acknowledged and in the log exactly once.
 * 2. A tab that queued records while it could not reach the broker closes:
 *    the tab still open adopts the orphaned outbox and delivers its records,
 *    each exactly once, without a reload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { BrokerHttp } from './harness/broker-http.ts';
import { exactlyOnceProblems } from './harness/delivery-ledger.ts';
import { PageServer } from './harness/page-server.ts';
import { waitFor } from './harness/wait-for.ts';
import { useE2e } from './harness/e2e-setup.ts';

const PARTITIONS = 3;
/** Nothing listens here: a tab pointed at it keeps its records in the outbox. */
const DEAD_URL = 'ws://127.0.0.1:9/v1/ws';

const e2e = useE2e({ pages: () => PageServer.start({ bundles: { shared: 'test/e2e/pages/shared-page.ts', 'runnel-worker': 'worker/src/shared-worker.ts' }, pages: { shared: 'shared' } }) });

async function openTab(context: BrowserContext, options: { urls: string[]; db: string; mode: 'dedicated' | 'page'; orphanCheckMs?: number }): Promise<{ page: Page; log: string[] }> {
  const page = await context.newPage();
  const log: string[] = [];
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
  page.on('console', (message) => { if (message.type() === 'warning' || message.type() === 'error') log.push(`[${message.type()}] ${message.text()}`); });
  await page.goto(`${e2e.pages.url}/shared.html`);
  await page.waitForFunction(() => window.sharedPage !== undefined);
  assert.equal(await page.evaluate((o) => window.sharedPage.connect(o), options), options.mode);
  return { page, log };
}

async function logIds(http: BrokerHttp, topic: string): Promise<string[]> {
  const partitions = await http.partitions(topic);
  return (await Promise.all(partitions.map((p) => http.readLog(topic, p.partition)))).flat().map((r) => (r.value as { id: string }).id);
}

const ids = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, n) => `${prefix}${n}`);

test('two dedicated-worker tabs on one database: every record of both is acknowledged and in the log exactly once', { timeout: 90_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  const topic = 'owner-concurrent';
  await http.createTopic(topic, PARTITIONS);
  const context = await e2e.browser.newContext();
  try {
    const options = { urls: [e2e.broker.wsUrl], db: 'owner-concurrent', mode: 'dedicated' as const };
    const a = await openTab(context, options);
    const b = await openTab(context, options);
    const COUNT = 1500;
    const produce = (tab: Page, idPrefix: string) => tab.evaluate((o) => window.sharedPage.produce(o), { topic, count: COUNT, idPrefix });
    // Three rounds, so both tabs freeze and send many batches while the other does the same.
    for (const round of [0, 1, 2]) assert.deepEqual(await Promise.all([produce(a.page, `a${round}-`), produce(b.page, `b${round}-`)]), [COUNT, COUNT]);
    const expected = [0, 1, 2].flatMap((r) => [...ids(`a${r}-`, COUNT), ...ids(`b${r}-`, COUNT)]);
    const problems = exactlyOnceProblems(expected, await logIds(http, topic));
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} ids not exactly once in the log\n${a.log.join('\n')}\n${b.log.join('\n')}`);
    console.log(`# two dedicated tabs, one database: ${expected.length} records acknowledged, each exactly once in the log`);
  } finally {
    await context.close();
  }
});

test('a closed tab\'s queued records are adopted and delivered by a tab still open, each exactly once', { timeout: 90_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  const topic = 'owner-orphan';
  await http.createTopic(topic, PARTITIONS);
  const context = await e2e.browser.newContext();
  try {
    const a = await openTab(context, { urls: [e2e.broker.wsUrl], db: 'owner-orphan', mode: 'dedicated', orphanCheckMs: 300 });
    assert.equal(await a.page.evaluate((o) => window.sharedPage.produce(o), { topic, count: 200, idPrefix: 'a-' }), 200);
    const b = await openTab(context, { urls: [DEAD_URL], db: 'owner-orphan', mode: 'page' });
    assert.equal(await b.page.evaluate((o) => window.sharedPage.queue(o), { topic, count: 700, idPrefix: 'b-' }), 700);
    await new Promise((r) => setTimeout(r, 200)); // lingering records get frozen into batches too
    assert.equal(await b.page.evaluate(() => window.sharedPage.outboxRecords()), 700, 'tab B holds its records: it cannot reach the broker');
    assert.equal(await http.recordCount(topic), 200, 'tab A did not take tab B\'s records while B was alive');
    await b.page.close();

    const expected = [...ids('a-', 200), ...ids('b-', 700)];
    await waitFor('tab A to deliver the closed tab\'s records', async () => (await http.recordCount(topic)) >= expected.length, {
      timeoutMs: 30_000, context: () => `${e2e.broker.log()}\n--- tab A ---\n${a.log.join('\n')}`,
    });
    const problems = exactlyOnceProblems(expected, await logIds(http, topic));
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} ids not exactly once in the log`);
    // A later tab finds no orphan left: the adopted outbox was drained and released.
    assert.equal(await a.page.evaluate((o) => window.sharedPage.produce(o), { topic, count: 10, idPrefix: 'late-' }), 10);
    assert.equal(await http.recordCount(topic), expected.length + 10);
    console.log(`# orphaned outbox: 700 records queued by a closed tab delivered by the open one, each exactly once`);
  } finally {
    await context.close();
  }
});
