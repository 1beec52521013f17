/**
 * `pauseWhenHidden` in real Chromium against a real broker: while the page
 * is hidden the SDK grants no credit, so the broker delivers at most the
 * window granted before, then nothing, even as records keep arriving; when
 * the page is visible again delivery continues with no gap and no
 * duplicate. Without the option a hidden page keeps consuming (the control,
 * so the pause is the option's doing). The broker runs with a 16 KiB
 * maxBatchBytes so that the window (2 × maxBatchBytes = 32 KiB) is small
 * against the topic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { BrokerHttp } from './harness/broker-http.ts';
import { useE2e } from './harness/e2e-setup.ts';
import { PageServer } from './harness/page-server.ts';
import { pause, waitFor } from './harness/wait-for.ts';
import type { HiddenCreditStats } from './pages/hidden-credit-page.ts';

const MAX_BATCH_BYTES = 16 * 1024;
/** The page's credit window: its creditWindowBytes (1 KiB) is below two of the broker's largest batches. */
const WINDOW_BYTES = 2 * MAX_BATCH_BYTES;
/** Every stored record is at least its value: WINDOW_BYTES / VALUE_BYTES bounds the records one window holds. */
const VALUE_BYTES = 100;
const PER_POST = 100;

const e2e = useE2e({
  pages: () => PageServer.start({ bundles: { hidden: 'test/e2e/pages/hidden-credit-page.ts' }, pages: { hidden: 'hidden' } }),
  broker: { args: ['--limit', `maxBatchBytes=${MAX_BATCH_BYTES}`] },
});

async function produce(http: BrokerHttp, topic: string, from: number, count: number): Promise<void> {
  for (let at = from; at < from + count; at += PER_POST) {
    const n = Math.min(PER_POST, from + count - at);
    await http.produce(topic, Array.from({ length: n }, (_, i) => ({ value: { i: at + i, pad: 'x'.repeat(VALUE_BYTES - 20) }, partition: 0 })));
  }
}

async function openPage(topic: string, pauseWhenHidden: boolean, hiddenFirst: boolean): Promise<{ page: Page; stats: () => Promise<HiddenCreditStats>; setHidden: (h: boolean) => Promise<void> }> {
  const page = await e2e.browser.newPage();
  page.on('pageerror', (e) => console.error('[pageerror]', e.message));
  await page.goto(`${e2e.pages.url}/hidden.html`);
  await page.waitForFunction(() => window.runnelHiddenCredit !== undefined);
  const setHidden = (hidden: boolean) => page.evaluate((h) => window.runnelHiddenCredit.setHidden(h), hidden);
  if (hiddenFirst) await setHidden(true);
  await page.evaluate((o) => window.runnelHiddenCredit.start(o), { urls: [e2e.broker.wsUrl], topic, pauseWhenHidden });
  return { page, setHidden, stats: () => page.evaluate(() => window.runnelHiddenCredit.stats()) };
}

/** Waits until the delivered count has not moved for `quietMs`; returns it. */
async function settled(stats: () => Promise<HiddenCreditStats>, quietMs = 1500): Promise<number> {
  let last = -1;
  for (;;) {
    const now = (await stats()).delivered;
    if (now === last) return now;
    last = now;
    await pause(quietMs);
  }
}

const exactly = (offsets: number[], count: number): void =>
  assert.deepEqual(offsets, Array.from({ length: count }, (_, i) => i), 'every offset once, in order: no gap, no duplicate');

test('pauseWhenHidden: hidden → at most the granted window, then nothing; visible → the rest, no gap, no duplicate', { timeout: 120_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  const topic = 'hidden-credit';
  await http.createTopic(topic, 1);
  await produce(http, topic, 0, 3000);
  const { page, stats, setHidden } = await openPage(topic, true, true);
  try {
    // Hidden from the start: only the subscribe's own credit.
    const first = await settled(stats);
    assert.ok(first > 0 && first <= WINDOW_BYTES / VALUE_BYTES, `hidden: ${first} records, at most one window (${WINDOW_BYTES / VALUE_BYTES})`);
    await produce(http, topic, 3000, 500); // records keep arriving; still hidden, none delivered
    await pause(1000);
    assert.equal((await stats()).delivered, first, 'nothing more while hidden');

    await setHidden(false);
    await waitFor('every record after the page is visible', async () => (await stats()).delivered === 3500);

    // Hidden again mid-stream: whatever was granted, then nothing.
    await setHidden(true);
    await produce(http, topic, 3500, 3000);
    const second = await settled(stats);
    assert.ok(second - 3500 <= WINDOW_BYTES / VALUE_BYTES && second < 6500, `hidden again: ${second - 3500} more records, at most one window`);
    await setHidden(false);
    await waitFor('the rest once visible again', async () => (await stats()).delivered === 6500);
    await pause(300);
    exactly((await stats()).offsets, 6500);
  } finally {
    await page.evaluate(() => window.runnelHiddenCredit.close()).catch(() => {});
    await page.close();
  }
});

test('without pauseWhenHidden a hidden page keeps consuming (control)', { timeout: 60_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  const topic = 'hidden-credit-off';
  await http.createTopic(topic, 1);
  await produce(http, topic, 0, 3000);
  const { page, stats } = await openPage(topic, false, true);
  try {
    await waitFor('every record while hidden', async () => (await stats()).delivered === 3000);
    exactly((await stats()).offsets, 3000);
  } finally {
    await page.evaluate(() => window.runnelHiddenCredit.close()).catch(() => {});
    await page.close();
  }
});
