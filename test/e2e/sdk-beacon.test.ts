/**
 * Issue 5, outbox: "on pagehide the SDK flushes what it can with
 * navigator.sendBeacon to the HTTP produce route, carrying producer id and
 * sequence so a later WebSocket resend is still de-duplicated" — in real
 * Chromium against a real broker.
 *
 * Setup: the page (its own origin) talks to the broker through a TCP proxy;
 * the SDK derives the beacon URL from the WebSocket URL, so the beacon goes
 * through the same proxy. `holdWebSockets()` freezes the page's open
 * WebSocket (its produce frames never reach the broker, no ack comes back)
 * and refuses new WebSocket handshakes, while plain HTTP still passes.
 *  (a) the page holds durable, unacknowledged batches (several per
 *      partition) and navigates away (pagehide): the oldest batch of each
 *      partition reaches the log through the HTTP produce route (the SDK
 *      beacons only that one: parallel requests arrive in any order, see
 *      BEACON_BATCHES_PER_PARTITION);
 *  (b) the same origin reopens the page (same IndexedDB) with a working
 *      WebSocket: the outbox resends those very batches, the broker answers
 *      the beaconed ones as duplicates and appends the rest in order (each id
 *      exactly once in the log), the outbox drains.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { BrokerHttp } from './harness/broker-http.ts';
import { exactlyOnceProblems } from './harness/delivery-ledger.ts';
import { PageServer } from './harness/page-server.ts';
import { waitFor } from './harness/wait-for.ts';
import { useE2e } from './harness/e2e-setup.ts';

const TOPIC = 'beacon-exit';
const PARTITIONS = 2;
/** More than one: only the oldest batch of a partition may be beaconed, the rest must wait for the resend. */
const BATCHES_PER_PARTITION = 4;
const RECORDS_PER_BATCH = 3;
const WAIT_MS = 20_000;

const e2e = useE2e({ pages: () => PageServer.start({ bundles: { beacon: 'test/e2e/pages/beacon-page.ts' }, pages: { beacon: 'beacon' } }), proxy: true });

/** Successful `POST /v1/topics/:topic/records` requests so far (from `/metrics`). */
async function produceRequests(): Promise<number> {
  const text = await (await fetch(`${e2e.broker.url}/metrics`)).text();
  return text.split('\n')
    .filter((l) => l.startsWith('runnel_http_requests_total{') && l.includes('route="/v1/topics/:topic/records"') && l.includes('status="200"'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function logIds(http: BrokerHttp): Promise<string[]> {
  const logs = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => http.readLog(TOPIC, p)));
  return logs.flat().map((r) => (r.value as { id: string }).id);
}

/** Loads the page and opens a client on `db` (resolves once the stored outbox is loaded). */
async function openPage(page: Page, db: string): Promise<void> {
  await page.goto(`${e2e.pages.url}/beacon.html`);
  await page.waitForFunction(() => window.runnelBeaconPage !== undefined);
  await page.evaluate((o) => window.runnelBeaconPage.open(o), { urls: [`ws://127.0.0.1:${e2e.proxy.port}/v1/ws`], db });
}

test('page exit: the beacon writes the held outbox batches; the resend after reopening is de-duplicated and drains the outbox', { timeout: 60_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  await http.createTopic(TOPIC, PARTITIONS);
  const context = await e2e.browser.newContext();
  const page = await context.newPage();
  const log: string[] = [];
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
  page.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') log.push(`[${m.type()}] ${m.text()}`); });
  const context_ = () => `${e2e.broker.log()}\n--- page log ---\n${log.slice(-20).join('\n')}`;
  try {
    await openPage(page, 'beacon-db');
    // One acknowledged record per partition over the WebSocket: the producer has its id and epoch.
    const warm = Array.from({ length: PARTITIONS }, (_, p) => `warm-${p}`);
    for (const [p, id] of warm.entries()) await page.evaluate((o) => window.runnelBeaconPage.sendAcked(o), { topic: TOPIC, partition: p, id });

    e2e.proxy.holdWebSockets();
    const ids: string[] = [];
    const oldestBatchIds: string[] = [];
    for (let b = 0; b < BATCHES_PER_PARTITION; b++) {
      for (let p = 0; p < PARTITIONS; p++) {
        const batch = Array.from({ length: RECORDS_PER_BATCH }, (_, r) => `p${p}-b${b}-r${r}`);
        ids.push(...batch);
        if (b === 0) oldestBatchIds.push(...batch);
        await page.evaluate((o) => window.runnelBeaconPage.sendBatch(o), { topic: TOPIC, partition: p, ids: batch });
      }
    }
    const held = await page.evaluate(() => window.runnelBeaconPage.outbox());
    assert.equal(held.records, ids.length, 'every record waits unacknowledged in the outbox');
    assert.equal(held.frozen.length, PARTITIONS * BATCHES_PER_PARTITION, `one persisted batch per sendBatch: ${JSON.stringify(held.frozen)}`);
    assert.deepEqual((await logIds(http)).sort(), [...warm].sort(), 'the held WebSocket delivered nothing');

    // (a) pagehide: the page leaves; only the beacon (plain HTTP) can reach the broker.
    const postsBefore = await produceRequests();
    await page.goto('about:blank');
    await waitFor('the beaconed records in the log', async () => (await http.recordCount(TOPIC)) >= warm.length + oldestBatchIds.length, { timeoutMs: WAIT_MS, context: context_ });
    await waitFor('one successful HTTP produce per partition', async () => (await produceRequests()) - postsBefore >= PARTITIONS, { timeoutMs: WAIT_MS, context: context_ });
    const afterBeacon = await logIds(http);
    assert.deepEqual(exactlyOnceProblems([...warm, ...oldestBatchIds], afterBeacon), [], 'after the beacon: the oldest batch of each partition, each id exactly once');
    assert.equal(await produceRequests() - postsBefore, PARTITIONS, 'one HTTP produce per partition');
    const highWatermarks = (await http.partitions(TOPIC)).map((p) => p.highWatermark);

    // (b) the same origin reopens the page: the outbox still holds the batches (no ack ever came) ...
    await openPage(page, 'beacon-db');
    const reopened = await page.evaluate(() => window.runnelBeaconPage.outbox());
    assert.equal(reopened.records, ids.length, 'the reopened page loads the unacknowledged batches from IndexedDB');
    assert.deepEqual(reopened.frozen, held.frozen, 'the same batches (partition, base sequence, size) as were beaconed');
    // ... and resends them over a working WebSocket: answered as duplicates, the outbox drains.
    e2e.proxy.releaseWebSockets();
    await waitFor('the outbox to drain', async () => (await page.evaluate(() => window.runnelBeaconPage.outbox())).records === 0, { timeoutMs: WAIT_MS, context: context_ });
    assert.equal(await page.evaluate(() => window.runnelBeaconPage.state()), 'connected');
    const final = await logIds(http);
    assert.deepEqual(exactlyOnceProblems([...warm, ...ids], final), [], 'after the resend: each id still exactly once in the log');
    const highWatermarksAfter = (await http.partitions(TOPIC)).map((p) => p.highWatermark);
    assert.deepEqual(highWatermarksAfter, highWatermarks.map((hw) => hw + (BATCHES_PER_PARTITION - 1) * RECORDS_PER_BATCH), 'the resend appended only the batches the beacon did not carry');
    assert.deepEqual(log.filter((l) => l.includes('[runnel')), [], 'no producer error (e.g. a re-initialized producer id)');
    console.log(`# beacon: ${PARTITIONS} of ${held.frozen.length} held batches (${oldestBatchIds.length} of ${ids.length} records) written by the page-exit beacon; after reopening the resend drained the outbox, each id once (high watermarks ${highWatermarksAfter})`);
  } finally {
    await context.close();
  }
});
