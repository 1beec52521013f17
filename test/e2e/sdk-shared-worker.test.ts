/**
 * Must show #4 (issue 5): two tabs (pages of one browser context, so one
 * origin) use `@runnel/worker`'s `connectShared`; the broker counts ONE
 * WebSocket connection (`runnel_connections` on /metrics) while both are
 * connected and subscribed, and each tab receives every record of what it
 * subscribed to, exactly once and in order per partition. Tab A subscribes
 * to topic X; tab B to X and Y; X is written by a Node producer over HTTP,
 * Y by tab A through the shared client. Then tab A closes and tab B keeps
 * receiving over the same connection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { BrokerHttp } from './harness/broker-http.ts';
import { DeliveryLedger } from './harness/delivery-ledger.ts';
import { PageServer } from './harness/page-server.ts';
import { waitFor } from './harness/wait-for.ts';
import { useE2e } from './harness/e2e-setup.ts';

const X = 'shared-x';
const Y = 'shared-y';
const PARTITIONS = 2;
const X_RECORDS = 3000;
const Y_RECORDS = 500;

const e2e = useE2e({ pages: () => PageServer.start({ bundles: { shared: 'test/e2e/pages/shared-page.ts', 'runnel-worker': 'worker/src/shared-worker.ts' }, pages: { shared: 'shared' } }) });

interface Tab { page: Page; ledgers: Map<string, DeliveryLedger>; log: string[] }

async function openTab(context: BrowserContext): Promise<Tab> {
  const page = await context.newPage();
  const ledgers = new Map<string, DeliveryLedger>([[X, new DeliveryLedger()], [Y, new DeliveryLedger()]]);
  const log: string[] = [];
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
  page.on('console', (message) => { if (message.type() === 'warning' || message.type() === 'error') log.push(`[${message.type()}] ${message.text()}`); });
  await page.exposeFunction('runnelSharedDelivered', (rows: [string, number, number][]) => {
    for (const [topic, partition, offset] of rows) ledgers.get(topic)!.record([{ partition, offset }]);
  });
  await page.goto(`${e2e.pages.url}/shared.html`);
  await page.waitForFunction(() => window.sharedPage !== undefined);
  const mode = await page.evaluate((o) => window.sharedPage.connect(o), { urls: [e2e.broker.wsUrl], db: 'shared-test' });
  assert.equal(mode, 'shared', 'this Chromium has SharedWorker');
  return { page, ledgers, log };
}

test('two tabs share one WebSocket through the SharedWorker and each receives all it subscribed to', { timeout: 90_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  await Promise.all([http.createTopic(X, PARTITIONS), http.createTopic(Y, PARTITIONS)]);
  assert.equal(await http.metric('runnel_connections'), 0, 'no connection before the tabs open');
  const context = await e2e.browser.newContext();
  try {
    const a = await openTab(context);
    const b = await openTab(context);
    const context_ = () => `${e2e.broker.log()}\n--- tab A ---\n${a.log.slice(-10).join('\n')}\n--- tab B ---\n${b.log.slice(-10).join('\n')}`;
    await a.page.evaluate((o) => window.sharedPage.subscribe(o), { topic: X, consumerId: 'tab-a' });
    await b.page.evaluate((o) => window.sharedPage.subscribe(o), { topic: X, consumerId: 'tab-b' });
    await b.page.evaluate((o) => window.sharedPage.subscribe(o), { topic: Y, consumerId: 'tab-b' });
    await waitFor('both tabs connected', async () => (await a.page.evaluate(() => window.sharedPage.state())) === 'connected'
      && (await b.page.evaluate(() => window.sharedPage.state())) === 'connected', { context: context_ });
    assert.equal(await http.metric('runnel_connections'), 1, 'two tabs, one WebSocket at the broker');

    for (let sent = 0; sent < X_RECORDS; sent += 500) {
      await http.produce(X, Array.from({ length: 500 }, (_, i) => ({ value: { id: `x${sent + i}` } })));
    }
    assert.equal(await a.page.evaluate((o) => window.sharedPage.produce(o), { topic: Y, count: Y_RECORDS, idPrefix: 'y' }), Y_RECORDS);

    const hw = async (topic: string): Promise<number[]> => (await http.partitions(topic)).map((p) => p.highWatermark);
    const [xHw, yHw] = [await hw(X), await hw(Y)];
    assert.equal(xHw.reduce((s, n) => s + n, 0), X_RECORDS);
    assert.equal(yHw.reduce((s, n) => s + n, 0), Y_RECORDS);
    await waitFor('both tabs to receive everything they subscribed to', () =>
      a.ledgers.get(X)!.reached(xHw) && b.ledgers.get(X)!.reached(xHw) && b.ledgers.get(Y)!.reached(yHw), { context: context_ });
    assert.deepEqual(a.ledgers.get(X)!.problems(xHw), [], 'tab A, topic X');
    assert.deepEqual(b.ledgers.get(X)!.problems(xHw), [], 'tab B, topic X');
    assert.deepEqual(b.ledgers.get(Y)!.problems(yHw), [], 'tab B, topic Y');
    assert.equal(a.ledgers.get(Y)!.count, 0, 'tab A did not subscribe to Y and got none of it');
    assert.equal(await http.metric('runnel_connections'), 1, 'still one WebSocket after the traffic');

    // Closing tab A releases its subscriptions; tab B keeps the shared connection and keeps receiving.
    await a.page.close();
    await http.produce(X, Array.from({ length: 200 }, (_, i) => ({ value: { id: `x-after-${i}` } })));
    const xHwAfter = await hw(X);
    await waitFor('tab B to receive what was produced after tab A closed', () => b.ledgers.get(X)!.reached(xHwAfter), { context: context_ });
    assert.deepEqual(b.ledgers.get(X)!.problems(xHwAfter), [], 'tab B, topic X, after tab A closed');
    assert.equal(await http.metric('runnel_connections'), 1, 'the shared connection outlives the closed tab');
    console.log(`# shared worker: 1 connection for 2 tabs; tab A ${a.ledgers.get(X)!.count} records, tab B ${b.ledgers.get(X)!.count + b.ledgers.get(Y)!.count}`);
  } finally {
    await context.close();
  }
});
