/**
 * Must show 2 of issue 14 in real Chromium: @durable-streams/client bundled
 * into a page (esbuild, test/e2e/pages/ds-page.ts) on its own origin, against
 * a real broker process (CORS for the page's origin). The page writes
 * through an IdempotentProducer, reads, stores the offset in localStorage,
 * writes more and is closed; the broker is SIGKILLed and restarted on the
 * same port and data dir; a new page resumes from the stored offset and gets
 * exactly the records after it — no gap, no duplicate — and a live long-poll
 * reader in another page, running across the kill, ends with every record
 * once. A restarted writer bumps its epoch (protocol §5.2.1) and is accepted;
 * a zombie of the old epoch is fenced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { BrokerProcess } from '../e2e/harness/broker-process.ts';
import { launchChromium } from '../e2e/harness/chromium.ts';
import { PageServer } from '../e2e/harness/page-server.ts';
import { waitFor } from '../e2e/harness/wait-for.ts';
import type { DsPageApi } from '../e2e/pages/ds-page.ts';

declare global {
  interface Window { dsPage: DsPageApi }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test('Chromium + @durable-streams/client: write, read, stop, resume from the stored offset after a broker SIGKILL and restart', { timeout: 180_000 }, async () => {
  const pages = await PageServer.start({ bundles: { ds: 'test/e2e/pages/ds-page.ts' }, pages: { ds: 'ds' } });
  let broker: BrokerProcess | undefined;
  let browser: Browser | undefined;
  try {
    broker = await BrokerProcess.start({ args: ['--cors-origins', pages.url] });
    browser = await launchChromium();
    const url = `${broker.url}/v1/stream/browser/resume`;
    const context = await browser.newContext();
    const open = async (own = context) => {
      const page = await own.newPage();
      const log: string[] = [];
      page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
      page.on('requestfailed', (r) => log.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
      await page.goto(`${pages.url}/ds.html`);
      await page.waitForFunction(() => window.dsPage !== undefined);
      return { page, log };
    };

    const writer = await open();
    await writer.page.evaluate((u) => window.dsPage.create(u), url);
    const first = await writer.page.evaluate((u) => window.dsPage.write(u, 0, 30), url);
    assert.deepEqual(first.errors, [], writer.log.join('\n'));
    const read = await writer.page.evaluate((u) => window.dsPage.read(u, '-1'), url);
    assert.deepEqual(read.items, range(0, 30));
    assert.ok(read.upToDate);
    const stored = await writer.page.evaluate(() => window.dsPage.storedOffset());
    assert.equal(stored, read.offset);

    // A live reader in a second page, from the stored offset, that stays up across the crash.
    // Its own window: the client pauses a hidden document's streams, and one window shows one tab.
    const follower = await open(await browser.newContext());
    await follower.page.evaluate(({ u, o }) => window.dsPage.follow(u, o), { u: url, o: read.offset });

    // More acknowledged writes after the stored offset, then the page stops and the broker dies.
    assert.deepEqual((await writer.page.evaluate((u) => window.dsPage.write(u, 30, 60), url)).errors, []);
    await writer.page.close();
    let last: { items: number[]; errors: string[] } = { items: [], errors: [] };
    let visibility = '';
    const followed = async (n: number) => {
      visibility = await follower.page.evaluate(() => document.visibilityState);
      return (last = await follower.page.evaluate(() => window.dsPage.followed())).items.length >= n;
    };
    const followerState = () => `live reader (${visibility}): ${JSON.stringify(last)}\n${follower.log.join('\n')}`;
    await waitFor('the live reader has 30..59', () => followed(30), { context: followerState });
    await broker.kill();
    await broker.restart();

    const resumedPage = await open();
    assert.equal(await resumedPage.page.evaluate(() => window.dsPage.storedOffset()), stored, 'the offset survived in localStorage');
    const resumed = await resumedPage.page.evaluate((u) => window.dsPage.read(u), url);
    assert.deepEqual(resumed.items, range(30, 60), 'exactly the records after the stored offset');
    assert.ok(resumed.upToDate);
    assert.deepEqual((await resumedPage.page.evaluate((u) => window.dsPage.read(u), url)).items, [], 'nothing twice');

    // The restarted writer: the same Producer-Id at epoch 0 again would be taken for a duplicate of sequence 0..; it bumps its epoch.
    const epoch = await resumedPage.page.evaluate(() => window.dsPage.bumpEpoch());
    assert.equal(epoch, 1);
    assert.deepEqual((await resumedPage.page.evaluate((u) => window.dsPage.write(u, 60, 80), url)).errors, [], resumedPage.log.join('\n'));
    const zombie = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'producer-id': 'browser-tab', 'producer-epoch': '0', 'producer-seq': '99' }, body: '{"i":-1}' });
    assert.equal(zombie.status, 403);
    assert.equal(zombie.headers.get('producer-epoch'), '1');
    assert.deepEqual((await resumedPage.page.evaluate((u) => window.dsPage.read(u), url)).items, range(60, 80));

    await waitFor('the live reader has 30..79 across the restart', () => followed(50), { timeoutMs: 60_000, context: followerState });
    await new Promise((r) => setTimeout(r, 200));
    await followed(50);
    assert.deepEqual(last.items, range(30, 80), `live reader: no gap, no duplicate across the SIGKILL (errors seen: ${last.errors.length})`);
    const all = await (await fetch(`${url}?offset=-1`)).json() as { i: number }[];
    assert.deepEqual(all.map((m) => m.i), range(0, 80), broker.log());
  } finally {
    await browser?.close().catch(() => {});
    await broker?.stop();
    await pages.close();
  }
});
