/**
 * Must show #4 (issue 13): a page folding a topic with `materialize` while a
 * Node producer writes ~1,000 records/s is reloaded 10 times at random
 * moments (snapshots every 200 records or 250 ms, so most reloads lose
 * unsaved records that must be folded again, once); in the end the page's
 * state equals the fold of the whole log read back over HTTP. Real broker
 * process, real Chromium, real IndexedDB.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerHttp } from './harness/broker-http.ts';
import { PageServer } from './harness/page-server.ts';
import { RateProducer } from './harness/rate-producer.ts';
import { pause, waitFor } from './harness/wait-for.ts';
import { useE2e } from './harness/e2e-setup.ts';
import { foldRecord, initialFold, type FoldState } from './pages/materialize-page.ts';

const TOPIC = 'materialize-stream';
const PARTITIONS = 3;
const RECORDS_PER_SECOND = 1000;
const RELOADS = 10;
/** A reload lands 0.2–1.5 s after the page folds again: mid-stream, never at a fixed phase. */
const RELOAD_DELAY_MS = [200, 1500] as const;

const e2e = useE2e({ pages: () => PageServer.start({ bundles: { materialize: 'test/e2e/pages/materialize-page.ts' }, pages: { materialize: 'materialize' } }) });

test('materialize: a page reloaded 10 times during a 1,000 records/s stream ends with the state equal to the fold of the log', { timeout: 150_000 }, async () => {
  const http = new BrokerHttp(e2e.broker.url);
  await http.createTopic(TOPIC, PARTITIONS);
  const context = await e2e.browser.newContext();
  const page = await context.newPage();
  const log: string[] = [];
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
  page.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') log.push(`[${m.type()}] ${m.text()}`); });
  const open = async (): Promise<void> => {
    await page.waitForFunction(() => window.runnelMaterialize !== undefined);
    await page.evaluate((o) => window.runnelMaterialize.open(o), { urls: [e2e.broker.wsUrl], db: 'materialize-test', topic: TOPIC, snapshotRecords: 200, snapshotMs: 250 });
  };
  const count = async (): Promise<number> => (await page.evaluate(() => window.runnelMaterialize.state()))?.count ?? 0;
  const context_ = () => `${e2e.broker.log()}\n--- page log ---\n${log.slice(-20).join('\n')}`;
  const producer = new RateProducer(http, TOPIC, RECORDS_PER_SECOND);
  try {
    await page.goto(`${e2e.pages.url}/materialize.html`);
    await open();
    const lost: number[] = [];
    for (let i = 0; i < RELOADS; i++) {
      const before = await count();
      await waitFor(`folding after (re)load #${i}`, async () => (await count()) > before + 20, { context: context_ });
      await pause(RELOAD_DELAY_MS[0] + Math.random() * (RELOAD_DELAY_MS[1] - RELOAD_DELAY_MS[0]));
      const atReload = await count();
      await page.reload();
      await open();
      const loaded = await waitFor('the first fold after the reload', async () => (await page.evaluate(() => window.runnelMaterialize.loadedCount())) ?? undefined, { context: context_ });
      lost.push(atReload - loaded); // folded before the reload, not in the snapshot it loaded: folded again (< 0: it folded and stored more after the count was read)
    }
    const produced = await producer.stop();
    const highWatermarks = (await http.partitions(TOPIC)).map((p) => p.highWatermark);
    const total = highWatermarks.reduce((a, b) => a + b, 0);
    assert.ok(total >= produced, 'every acknowledged record is in the log');
    await waitFor('the state to cover the whole log', async () => (await count()) >= total, { context: context_ });
    await pause(300); // a duplicate would show as a count past the log
    const state = (await page.evaluate(() => window.runnelMaterialize.state()))!;
    let expected: FoldState = initialFold();
    for (let p = 0; p < PARTITIONS; p++) for (const r of await http.readLog(TOPIC, p)) expected = foldRecord(expected, { partition: p, ...r });
    assert.deepEqual(state.anomalies, [], 'no gap, no duplicate');
    assert.deepEqual(state, expected, 'the page state = the fold of the log');
    assert.deepEqual(await page.evaluate(() => window.runnelMaterialize.rebuilds()), [], 'no rebuild');
    console.log(`# materialize: ${RELOADS} reloads, ${state.count} records over ${PARTITIONS} partitions, producer ${produced} acked; records refolded after each reload: ${lost.join(' ')}`);
  } finally {
    await producer.stop();
    await context.close();
  }
});
