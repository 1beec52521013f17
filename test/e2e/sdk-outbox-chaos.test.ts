/**
 * Issue 11, finding 6 (must show #2): records written twice after a reload
 * or a crash. A page produces through the SDK's IndexedDB outbox (steadily,
 * and in bursts of many small batches so that the outbox is draining most
 * of the time) while, for at least 20 cycles chosen by a seeded random
 * source, it is reloaded (`page.reload()`) or its renderer crashed (CDP
 * `Page.crash`, then a new page on the same origin and database), and the
 * broker is SIGKILLed and restarted at random moments (before the reload,
 * or while the page drains what it queued during the outage). In the end
 * every id whose `queued` resolved (reported at once through a binding) is
 * in the log exactly once, and no id is in the log twice.
 *
 * Before the fix, seed 995345976: against today's broker (46 for a resend
 * below its window) 1,162 queued ids were missing from the log (`queued`
 * resolved before the write that held the record when a full batch had
 * issued it early; a crash or reload then lost it), 0 twice; against a
 * broker answering 45 there (as before commit 7033109) 7,208 ids were in the
 * log more than once (9,475 extra records: acknowledged batches whose
 * deletes had not committed were resent below the broker's window, taken
 * for lost state and re-stamped under a new producer id) and 2,768 missing.
 * After it, 0 and 0 against both (with 45, no 45 was ever answered: every
 * resend stayed within the window).
 * Replay a run with RUNNEL_CHAOS_SEED=<printed seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { BrokerHttp } from './harness/broker-http.ts';
import { PageServer } from './harness/page-server.ts';
import { pause, waitFor } from './harness/wait-for.ts';
import { useE2e } from './harness/e2e-setup.ts';
import { seededRandom } from '../../client-sdk/src/reconnect-policy.ts';
import type { ChaosStats } from './pages/outbox-chaos-page.ts';

const TOPIC = 'outbox-chaos';
const PARTITIONS = 3;
const CYCLES = 22;
const RECORDS_PER_SECOND = 400;
/** Small batches: a burst becomes dozens of batches per partition, acknowledged and deleted one by one. */
const MAX_BATCH_RECORDS = 20;
const BURST_RECORDS = [200, 1500] as const;
/** A cycle produces this long before its fault. */
const RUN_MS = [150, 1200] as const;
/** The broker stays down this long (the page keeps queueing). */
const DOWN_MS = [200, 1200] as const;
/** After the broker is back, the reload or crash lands this long after the page reconnected: mid-drain. */
const DRAIN_MS = [0, 400] as const;
const SEED = Number(process.env.RUNNEL_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));


const e2e = useE2e({ pages: () => PageServer.start({ bundles: { chaos: 'test/e2e/pages/outbox-chaos-page.ts' }, pages: { chaos: 'chaos' } }) });

interface ChaosTab { page: Page; incarnation: number }

test(`outbox chaos: ${CYCLES} cycles of reloads, renderer crashes and broker SIGKILLs; every queued record in the log exactly once (seed ${SEED})`, { timeout: 300_000 }, async () => {
  console.log(`# outbox chaos seed ${SEED} (replay: RUNNEL_CHAOS_SEED=${SEED})`);
  const random = seededRandom(SEED);
  const between = ([lo, hi]: readonly [number, number]): number => Math.round(lo + random() * (hi - lo));
  const http = new BrokerHttp(e2e.broker.url);
  await http.createTopic(TOPIC, PARTITIONS);
  const context: BrowserContext = await e2e.browser.newContext();
  const queued = new Set<string>();
  const log: string[] = [];
  const warnings = new Map<string, number>();
  await context.exposeBinding('runnelQueued', (_source, ids: string[]) => { for (const id of ids) queued.add(id); });
  let incarnations = 0;
  const events: string[] = [];
  const counts = { reloads: 0, crashes: 0, brokerKills: 0, bursts: 0 };
  const watch = (page: Page): void => {
    page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
    page.on('console', (message) => {
      if (message.type() !== 'warning' && message.type() !== 'error') return;
      if (message.text().includes('ERR_CONNECTION_REFUSED') || message.text().includes('404 (Not Found)')) return; // the broker is down; favicon
      const text = message.text();
      log.push(`[${message.type()}] ${text}`);
      const code = /^\[runnel error\] (\S+)/.exec(text)?.[1] ?? 'other';
      warnings.set(code, (warnings.get(code) ?? 0) + 1);
    });
  };
  const boot = async (page: Page): Promise<void> => {
    await page.waitForFunction(() => window.chaosPage !== undefined);
    await page.evaluate((o) => window.chaosPage.open(o), { urls: [e2e.broker.wsUrl], db: 'chaos', maxBatchRecords: MAX_BATCH_RECORDS, orphanCheckMs: 500 });
    const prefix = `s${SEED}-i${incarnations++}-`;
    await page.evaluate((o) => window.chaosPage.start(o), { topic: TOPIC, ratePerSecond: RECORDS_PER_SECOND, prefix });
  };
  const openTab = async (): Promise<ChaosTab> => {
    const page = await context.newPage();
    watch(page);
    await page.goto(`${e2e.pages.url}/chaos.html`);
    await boot(page);
    return { page, incarnation: incarnations - 1 };
  };
  const state = (tab: ChaosTab): Promise<string> => tab.page.evaluate(() => window.chaosPage.state()).catch(() => 'gone');
  const context_ = (): string => `seed ${SEED}\n${e2e.broker.log()}\n--- page log (tail) ---\n${log.slice(-30).join('\n')}`;

  let tab = await openTab();
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      if (random() < 0.6) {
        counts.bursts++;
        await tab.page.evaluate((n) => window.chaosPage.burst(n), between(BURST_RECORDS));
      }
      await pause(between(RUN_MS));
      if (random() < 0.35) {
        counts.brokerKills++;
        events.push(`kill@i${incarnations - 1}`);
        await e2e.broker.kill();
        await pause(between(DOWN_MS));
        if (random() < 0.3) {
          counts.bursts++; // queued while the broker is down: the drain after the restart is long
          await tab.page.evaluate((n) => window.chaosPage.burst(n), between(BURST_RECORDS));
        }
        await e2e.broker.restart();
        await waitFor('the page to reconnect after the broker restart', async () => (await state(tab)) === 'connected', { context: context_ });
        await pause(between(DRAIN_MS));
      }
      if (random() < 0.5) {
        counts.reloads++;
        events.push(`reload@i${incarnations - 1}`);
        await tab.page.reload();
        await boot(tab.page);
      } else {
        counts.crashes++;
        events.push(`crash@i${incarnations - 1}`);
        const crashed = new Promise<void>((resolve) => tab.page.once('crash', () => resolve()));
        const cdp = await context.newCDPSession(tab.page);
        void cdp.send('Page.crash').catch(() => {}); // never answers: the renderer is gone
        await Promise.race([crashed, pause(10_000).then(() => { throw new Error('the renderer did not crash'); })]);
        await tab.page.close().catch(() => {});
        tab = await openTab();
      }
    }

    // The last page produces too, so its own sends are checked (queued, acknowledged, no error).
    await tab.page.evaluate((n) => window.chaosPage.burst(n), between(BURST_RECORDS));
    await pause(between(RUN_MS));
    await tab.page.evaluate(() => window.chaosPage.stop());
    await waitFor('the outbox to drain', async () => (await tab.page.evaluate(() => window.chaosPage.outboxRecords())) === 0, { timeoutMs: 60_000, context: context_ });
    const stats: ChaosStats = await tab.page.evaluate(() => window.chaosPage.stop());
    // Orphaned outbox slots (a page that took a second slot while the old one was still locked) drain within orphanCheckMs.
    const readIds = async (): Promise<string[]> => (await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => http.readLog(TOPIC, p)))).flat().map((r) => (r.value as { id: string }).id);
    let inLog: string[] = [];
    await waitFor('every queued id in the log, and the log still', async () => {
      const ids = await readIds();
      const stable = ids.length === inLog.length;
      inLog = ids;
      const present = new Set(ids);
      return stable && [...queued].every((id) => present.has(id));
    }, { timeoutMs: 60_000, intervalMs: 1500 }).catch(() => console.log('# not every queued id reached the log within 60 s'));

    const times = new Map<string, number>();
    for (const id of inLog) times.set(id, (times.get(id) ?? 0) + 1);
    const twice = [...times].filter(([, n]) => n > 1);
    const extra = twice.reduce((sum, [, n]) => sum + n - 1, 0);
    const missing = [...queued].filter((id) => !times.has(id));
    if (missing.length > 0) {
      const byIncarnation = new Map<string, number>();
      for (const id of missing) { const k = id.split('-')[1]; byIncarnation.set(k, (byIncarnation.get(k) ?? 0) + 1); }
      console.log(`# missing by page load: ${JSON.stringify(Object.fromEntries(byIncarnation))}; events: ${events.join(' ')}`);
      console.log(`# databases: ${JSON.stringify(await tab.page.evaluate(() => window.chaosPage.storedCounts()))}`);
    }
    if (twice.length + missing.length > 0) console.log(`# e.g. twice: ${twice.slice(0, 5).map(([id, n]) => `${id} x${n}`).join(', ')}; missing: ${missing.slice(0, 10).join(', ')}`);
    console.log(`# outbox chaos (seed ${SEED}): ${CYCLES} cycles (${counts.reloads} reloads, ${counts.crashes} renderer crashes, ${counts.brokerKills} broker SIGKILLs, ${counts.bursts} bursts), ` +
      `${incarnations} page loads; ${queued.size} ids reported queued, ${inLog.length} records in the log, ${times.size} distinct ids; ` +
      `${twice.length} ids written more than once (${extra} extra records), ${missing.length} queued ids missing`);
    console.log(`# page errors by code: ${JSON.stringify(Object.fromEntries(warnings))}; last page's stats: ${stats.queued} queued, ${stats.acked} acked, ${stats.errors.length} errors`);
    assert.deepEqual(twice.slice(0, 10), [], `${twice.length} ids in the log more than once (${extra} extra records)`);
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} queued ids are not in the log`);
    assert.deepEqual(stats.errors.slice(0, 10), [], 'the last page queued and acknowledged every record');
    assert.equal(stats.acked, stats.sent, 'every send of the last page acknowledged');
  } catch (error) {
    console.log(context_());
    throw error;
  } finally {
    await context.close();
  }
});
