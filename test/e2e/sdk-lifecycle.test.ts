/**
 * Must show #4 (issue 13), "bfcache/offline resume", and the broker-restart lag, in real Chromium against a
 * real broker. One page (lifecycle-page.ts: the SDK test page with an IndexedDB outbox and a transactional
 * journal, plus a record of lifecycle events and connection states) produces and consumes its own topic:
 *  1. offline: every proxied connection cut, then `context.setOffline(true)` for a few seconds; back online
 *     the page is connected again right after `online` (figure printed);
 *  2. back/forward cache: the page navigates away and back (`page.goBack`) twice; it is restored from the
 *     cache (`pageshow` with `persisted`, no `Page.backForwardCacheNotUsed`), it closed its WebSocket on
 *     `pagehide` and reconnects on `pageshow`;
 *  3. broker SIGKILLed and restarted: time from `/readyz` answering OK to the page connected (figure printed).
 * Each run ends with the log holding every produced id exactly once and the journal every offset exactly
 * once, in order (no gap, no duplicate).
 *
 * NB bfcache: playwright launches Chromium with `--disable-back-forward-cache`, and the test page server
 * answers `Cache-Control: no-store`, which keeps a page with a WebSocket out of the cache
 * (`WebSocketUsedWithCCNS`). The bfcache case launches its own Chromium without that switch and loads the
 * pages through a pass-through server that drops `no-store` (a playwright `route` would not do: a fulfilled
 * document counts as public and its connection to 127.0.0.1 is refused by the local network access checks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { chromium, type BrowserContext } from 'playwright-core';
import { BrokerHttp } from './harness/broker-http.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './harness/chromium.ts';
import { exactlyOnceProblems } from './harness/delivery-ledger.ts';
import { useE2e } from './harness/e2e-setup.ts';
import { PageServer } from './harness/page-server.ts';
import { pause, waitFor } from './harness/wait-for.ts';
import type { LifecycleEntry } from './pages/lifecycle-page.ts';
import { ledgerOf, openSdkPage, type SdkPage } from './pages/sdk-page-driver.ts';

const PARTITIONS = 3;
const RECORDS_PER_SECOND = 200;
const OFFLINE_MS = 3000;
const BFCACHE_ROUNDS = 2;
/** Generous bounds (a loaded 2-core machine): the plain backoff would lag by seconds; the figures are printed. */
const ONLINE_TO_CONNECTED_BOUND_MS = 1500;
const READY_TO_CONNECTED_BOUND_MS = 2500;

// NB: `/away.html` loads the same bundle but opens no client: a page to navigate to.
const e2e = useE2e({ pages: () => PageServer.start({ bundles: { sdk: 'test/e2e/pages/lifecycle-page.ts' }, pages: { sdk: 'sdk', away: 'sdk' } }), proxy: true });

const entriesOf = (sdk: SdkPage): Promise<LifecycleEntry[]> => sdk.page.evaluate(() => window.runnelLifecycle.entries);
const describe = (entries: LifecycleEntry[]): string => entries.map((e) => `${e.what}${e.persisted === undefined ? '' : `(${e.persisted})`}@${e.atMs.toFixed(0)}`).join(' ');

/** The first `state:connected` after the last `what` entry, minus that entry's time (ms), or undefined. */
function connectedAfter(entries: LifecycleEntry[], what: string): number | undefined {
  let from = -1;
  entries.forEach((e, i) => { if (e.what === what) from = i; });
  const connected = entries.slice(from + 1).find((e) => e.what === 'state:connected');
  return from < 0 || connected === undefined ? undefined : connected.atMs - entries[from]!.atMs;
}

/** Stops producing and checks the log and the journal: every id once, every offset once in order. */
async function assertExactlyOnce(sdk: SdkPage, topic: string, context: () => string): Promise<string> {
  const http = new BrokerHttp(e2e.broker.url);
  const stats = await sdk.stopProducing();
  assert.deepEqual(stats.errors, [], 'every send was queued and acknowledged');
  await waitFor('every queued record to be acknowledged', async () => {
    const s = await sdk.produceStats();
    return s.outboxRecords === 0 && s.acked === stats.queued.length;
  }, { context });
  const partitions = await http.partitions(topic);
  const highWatermarks = partitions.map((p) => p.highWatermark);
  const logIds = (await Promise.all(partitions.map((p) => http.readLog(topic, p.partition)))).flat().map((r) => (r.value as { id: string }).id);
  const logProblems = exactlyOnceProblems(stats.queued, logIds);
  assert.deepEqual(logProblems.slice(0, 20), [], `${logProblems.length} produced ids not exactly once in the log`);
  const journal = await waitFor('the journal to reach every high watermark', async () => {
    const rows = await sdk.journal();
    return ledgerOf(rows).reached(highWatermarks) && rows;
  }, { context });
  const problems = ledgerOf(journal).problems(highWatermarks);
  assert.deepEqual(problems, [], `deliveries vs log (high watermarks ${highWatermarks}):\n${problems.join('\n')}`);
  return `${stats.queued.length} produced, ${logIds.length} in the log, ${journal.length} consumed`;
}

async function startPage(context: BrowserContext, pagesUrl: string, wsUrl: string, topic: string): Promise<{ sdk: SdkPage; context_: () => string }> {
  await new BrokerHttp(e2e.broker.url).createTopic(topic, PARTITIONS);
  const sdk = await openSdkPage(context, pagesUrl, wsUrl, `lifecycle-${topic}`);
  const context_ = (): string => `${e2e.broker.log()}\n--- page log ---\n${sdk.log.slice(-20).join('\n')}`;
  await sdk.consume(topic, 'lifecycle-consumer');
  await sdk.startProducing(topic, RECORDS_PER_SECOND, `${topic}-`);
  await waitFor('the page to consume its own records', () => sdk.progress.count > 50, { context: context_ });
  return { sdk, context_ };
}

test('offline (connections cut, setOffline) then online: reconnected right after `online`, no gap, no duplicate', { timeout: 90_000 }, async () => {
  const context = await e2e.browser.newContext();
  try {
    const { sdk, context_ } = await startPage(context, e2e.pages.url, `ws://127.0.0.1:${e2e.proxy.port}/v1/ws`, 'lifecycle-offline');
    e2e.proxy.setAccepting(false);
    e2e.proxy.cut();
    await waitFor('the page to notice the cut', async () => (await sdk.state()) !== 'connected', { context: context_ });
    await context.setOffline(true);
    await pause(OFFLINE_MS);
    assert.ok((await sdk.produceStats()).outboxRecords > 0, 'records produced while offline wait in the outbox');
    e2e.proxy.setAccepting(true);
    await context.setOffline(false);
    await waitFor('the page to reconnect', async () => (await sdk.state()) === 'connected', { context: context_ });
    await pause(300); // the state sampler's next turns
    const entries = await entriesOf(sdk);
    const ms = connectedAfter(entries, 'online');
    assert.ok(ms !== undefined, `an online event and a connected state after it: ${describe(entries.slice(-12))}`);
    assert.ok(ms <= ONLINE_TO_CONNECTED_BOUND_MS, `connected ${ms.toFixed(0)} ms after online`);
    await pause(300);
    const summary = await assertExactlyOnce(sdk, 'lifecycle-offline', context_);
    console.log(`# offline → online: connected ${ms.toFixed(0)} ms after the online event; ${summary}`);
  } finally {
    await context.close();
  }
});

/** Serves `target`'s files without `Cache-Control: no-store` (see the NB at the top). */
async function cacheablePages(target: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    fetch(target + req.url).then(async (r) => {
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' }).end(Buffer.from(await r.arrayBuffer()));
    }, () => res.writeHead(502).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

test('back/forward cache: away and back twice, restored from the cache (pageshow persisted), resumes with no gap, no duplicate', { timeout: 120_000 }, async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, ignoreDefaultArgs: ['--disable-back-forward-cache'] });
  const pages = await cacheablePages(e2e.pages.url);
  try {
    const context = await browser.newContext();
    const { sdk, context_ } = await startPage(context, pages.url, e2e.broker.wsUrl, 'lifecycle-bfcache');
    const cdp = await context.newCDPSession(sdk.page);
    await cdp.send('Page.enable');
    const notUsed: string[] = [];
    cdp.on('Page.backForwardCacheNotUsed', (e) => notUsed.push(JSON.stringify(e.notRestoredExplanations)));
    const reconnectMs: number[] = [];
    for (let round = 0; round < BFCACHE_ROUNDS; round++) {
      const before = sdk.progress.count;
      await waitFor(`records before leaving (round ${round})`, () => sdk.progress.count > before + 50, { context: context_ });
      await sdk.page.goto(`${pages.url}/away.html`);
      await pause(1000); // in the cache: frozen, the page produces and consumes nothing meanwhile
      // NB: a page restored from the cache fires no `load`.
      await sdk.page.goBack({ waitUntil: 'commit' });
      await waitFor('the page to reconnect', async () => (await sdk.state()) === 'connected', { context: context_ });
      await pause(100);
      const entries = await entriesOf(sdk);
      const shows = entries.filter((e) => e.what === 'pageshow');
      assert.deepEqual(notUsed, [], 'Chromium says why the cache was not used');
      assert.equal(shows.length, round + 2, `one pageshow per load or restore: ${describe(entries)}`);
      assert.equal(shows.at(-1)!.persisted, true, `restored from the back/forward cache: ${describe(entries)}`);
      const hide = entries.filter((e) => e.what === 'pagehide').at(-1)!;
      assert.equal(hide.persisted, true);
      // Closed on pagehide: the sampler's first state after it (the next one it ran in the page) is not 'connected'
      // — 'reconnecting' if it ran before the freeze, else 'connecting' (it ran again only after the restore; CI).
      const afterHide = entries.find((e) => e.atMs > hide.atMs && e.what.startsWith('state:'));
      assert.ok(afterHide !== undefined && ['state:reconnecting', 'state:connecting'].includes(afterHide.what), `the link was closed on pagehide: ${describe(entries)}`);
      const ms = connectedAfter(entries, 'pageshow');
      assert.ok(ms !== undefined && ms <= ONLINE_TO_CONNECTED_BOUND_MS, `connected ${ms} ms after pageshow`);
      reconnectMs.push(ms);
    }
    const before = sdk.progress.count;
    await waitFor('records after the last restore', () => sdk.progress.count > before + 50, { context: context_ });
    const summary = await assertExactlyOnce(sdk, 'lifecycle-bfcache', context_);
    console.log(`# bfcache: ${BFCACHE_ROUNDS} restores (pageshow persisted), connected ${reconnectMs.map((m) => m.toFixed(0)).join(', ')} ms after pageshow; ${summary}`);
    await context.close();
  } finally {
    await browser.close();
    pages.server.close();
  }
});

test('broker SIGKILLed and restarted: the page is connected right after /readyz answers OK, no gap, no duplicate', { timeout: 150_000 }, async () => {
  const context = await e2e.browser.newContext();
  try {
    const { sdk, context_ } = await startPage(context, e2e.pages.url, e2e.broker.wsUrl, 'lifecycle-restart');
    await pause(1500); // a stable session (reconnect-policy.ts STABLE_SESSION_MS)
    await e2e.broker.kill();
    await waitFor('the page to notice the broker is gone', async () => (await sdk.state()) !== 'connected', { context: context_ });
    await pause(4000); // the plain backoff's ceiling would be past 3 s by now
    const restarted = e2e.broker.restart();
    const readyAt = await waitFor('/readyz OK', async () => (await fetch(`${e2e.broker.url}/readyz`).then((r) => r.ok, () => false)) && Date.now(), { timeoutMs: 90_000, intervalMs: 5, context: context_ });
    const connectedAt = await waitFor('the page to reconnect', async () => (await sdk.state()) === 'connected' && Date.now(), { intervalMs: 5, context: context_ });
    await restarted;
    const ms = connectedAt - readyAt;
    assert.ok(ms <= READY_TO_CONNECTED_BOUND_MS, `connected ${ms} ms after /readyz OK`);
    const before = sdk.progress.count;
    await waitFor('records after the restart', () => sdk.progress.count > before + 50, { context: context_ });
    const summary = await assertExactlyOnce(sdk, 'lifecycle-restart', context_);
    console.log(`# broker restart: connected ${ms} ms after /readyz OK; ${summary}`);
  } finally {
    await context.close();
  }
});
