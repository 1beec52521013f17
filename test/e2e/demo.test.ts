/**
 * The demo, end to end, in real Chromium against a real broker process:
 * the shop produces activity through the SDK's SharedWorker, the dashboard's
 * traffic button and the `demo:traffic` CLI produce known numbers of
 * simulated events, and the
 * dashboard must count exactly what the log holds (sum of the partitions'
 * high watermarks from the HTTP API), draw it on the chart, survive a reload
 * without counting anything twice, and rebuild the same numbers on replay.
 * Screenshots go to test/artifacts/ (git-ignored); the dashboard's is
 * copied to docs/screenshot-dashboard.png for the README when
 * RUNNEL_UPDATE_SCREENSHOT=1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { BrokerHttp } from './harness/broker-http.ts';
import { BrokerProcess } from './harness/broker-process.ts';
import { launchChromium } from './harness/chromium.ts';
import { waitFor as waitForCondition } from './harness/wait-for.ts';

const root = new URL('../..', import.meta.url).pathname;
const artifacts = join(root, 'test/artifacts');
const TOPIC = 'activity';
const PARTITIONS = 3;
const TRAFFIC_EVENTS = 300;
const CLI_EVENTS = 120;
const MORE_TRAFFIC_EVENTS = 40;
/** Generous: a 2-core CI machine runs other suites beside this one. */
const WAIT_MS = 60_000;

let broker: BrokerProcess | undefined;
let api: BrokerHttp;
let baseUrl = '';
let browser: Browser | undefined;

const waitFor = <T>(what: string, probe: () => Promise<T | undefined | false>): Promise<T> =>
  waitForCondition(what, probe, { timeoutMs: WAIT_MS, intervalMs: 200, context: () => broker?.log() ?? '' });

/** Records in the log: the sum of the partitions' high watermarks (the topic starts empty). */
const logRecordCount = (): Promise<number> => api.recordCount(TOPIC);

/** For failure messages: records whose values appear more than once in the log (a shop event is unique by session and ms). */
async function describeDuplicates(): Promise<string> {
  const seen = new Map<string, string[]>();
  for (let partition = 0; partition < PARTITIONS; partition++) {
    for (const record of await api.readLog(TOPIC, partition)) {
      const value = JSON.stringify(record.value);
      seen.set(value, [...(seen.get(value) ?? []), `${partition}@${record.offset}`]);
    }
  }
  const duplicates = [...seen].filter(([, at]) => at.length > 1).map(([value, at]) => `${at.join(', ')}: ${value}`);
  return duplicates.length === 0 ? '; no duplicate values in the log' : `; duplicate values in the log:\n${duplicates.join('\n')}`;
}

async function dashboardCount(page: Page): Promise<number> {
  return Number(await page.getAttribute('#total-events', 'data-count'));
}

/** Waits until the dashboard has counted exactly `expected` and the log holds exactly that. */
async function expectCounted(page: Page, expected: number): Promise<void> {
  await waitFor(`log = dashboard = ${expected}`, async () => {
    const [inLog, counted] = [await logRecordCount(), await dashboardCount(page)];
    if (counted > expected || inLog > expected) throw new Error(`over-counted: log ${inLog}, dashboard ${counted}, expected ${expected}${await describeDuplicates()}`);
    return inLog === expected && counted === expected;
  });
}

/** `npm run demo:traffic -- …` as a child process; resolves with its exit code and output. */
function runTrafficCli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/src/traffic-cli.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function openShopPage(context: BrowserContext, path: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('[shop pageerror]', error));
  await page.goto(`${baseUrl}${path}`);
  await page.waitForSelector('[data-testid="runnel-badge"][data-mode="shared"]', { timeout: WAIT_MS });
  return page;
}

/**
 * Events this shop tab session handed to the SDK: the badge's count, read at
 * its source (sessionStorage, updated synchronously by each tracked action;
 * the badge element itself refreshes asynchronously).
 */
async function trackedEvents(shop: Page): Promise<number> {
  return shop.evaluate(() => Number(sessionStorage.getItem('runnel-demo:tracked') ?? 0));
}

async function openDashboard(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('[dashboard pageerror]', error));
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector('#connection[data-state="connected"]', { timeout: WAIT_MS });
  return page;
}

before(async () => {
  const build = spawnSync(process.execPath, [join(root, 'demo/build.mjs')], { cwd: root, encoding: 'utf8' });
  assert.equal(build.status, 0, `demo build failed:\n${build.stdout}\n${build.stderr}`);
  broker = await BrokerProcess.start({ env: { RUNNEL_STATIC_DIR: join(root, 'demo/dist') } });
  baseUrl = broker.url;
  api = new BrokerHttp(baseUrl);
  await api.createTopic(TOPIC, PARTITIONS);
  browser = await launchChromium();
  mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  await browser?.close().catch(() => {});
  await broker?.stop();
});

/**
 * A shopper: home → product list → a product → add to cart ×3 → the broker is
 * SIGKILLed → add to cart ×2 (the outbox holds them) → the tab is closed → the
 * broker restarts → a new tab (product page → cart) sends the stored events.
 * Returns the open shop tab and how many events the shopper produced.
 */
async function shopThroughAnOutage(context: BrowserContext): Promise<{ shop: Page; shopEvents: number }> {
  let shop = await openShopPage(context, '/shop/index.html');
  await Promise.all([shop.waitForURL('**/shop/products.html'), shop.click('[data-track="hero:shop-now"]')]);
  await Promise.all([shop.waitForURL('**/shop/product-lamp.html'), shop.click('[data-track="product-card:lamp"]')]);
  for (let i = 0; i < 3; i++) await shop.click('[data-add-to-cart="lamp"]');
  await shop.mouse.wheel(0, 5000); // scroll depth events

  await broker!.kill();
  await shop.waitForSelector('[data-testid="runnel-badge"]:not([data-state="connected"])', { timeout: WAIT_MS });
  await shop.mouse.wheel(0, -5000);
  for (let i = 0; i < 2; i++) await shop.click('[data-add-to-cart="lamp"]');
  await waitFor('the outbox to hold the offline events', async () => Number(await shop.getAttribute('[data-testid="outbox-size"]', 'data-size')) >= 4);
  let shopEvents = await trackedEvents(shop);
  await shop.close({ runBeforeUnload: true });
  await broker!.restart();

  // A new tab: its SharedWorker restores the outbox from IndexedDB and sends it, each event once.
  shop = await openShopPage(context, '/shop/product-lamp.html');
  await Promise.all([shop.waitForURL('**/shop/cart.html'), shop.click('[data-track="nav:cart"]')]);
  await waitFor('the shop to reconnect and drain its outbox', async () =>
    (await shop.getAttribute('[data-testid="runnel-badge"]', 'data-state')) === 'connected' && (await shop.getAttribute('[data-testid="outbox-size"]', 'data-size')) === '0');
  shopEvents += await trackedEvents(shop);
  assert.ok(shopEvents >= 1 + 2 + 2 + 6 + 4 + 1 + 2, `expected at least 18 shop events (views, clicks, add-to-cart), the badges say ${shopEvents}`);
  return { shop, shopEvents };
}

/** Known numbers of simulated events: the dashboard's traffic button and, at the same time, the CLI generator. */
async function produceSimulatedTraffic(dashboard: Page): Promise<void> {
  const cli = runTrafficCli(['--users', '7', '--events', String(CLI_EVENTS), '--rate', '40', '--url', baseUrl]);
  await dashboard.fill('[data-testid="traffic-events"]', String(TRAFFIC_EVENTS));
  await dashboard.fill('#traffic-rate', '75');
  await dashboard.click('[data-testid="traffic-button"]');
  await dashboard.waitForSelector('[data-testid="traffic-status"][data-state="done"]', { timeout: WAIT_MS });
  assert.equal(await dashboard.getAttribute('[data-testid="traffic-status"]', 'data-acked'), String(TRAFFIC_EVENTS));
  const cliResult = await cli;
  assert.equal(cliResult.code, 0, `traffic CLI failed:\n${cliResult.output}`);
  assert.match(cliResult.output, new RegExp(`done: ${CLI_EVENTS} of ${CLI_EVENTS} events acknowledged`));
}

/** The chart drew data: uPlot's series holds seconds with events, as many events as counted. */
async function assertChartHolds(dashboard: Page, events: number): Promise<void> {
  const points = await dashboard.evaluate(() => {
    const data = (window as any).runnelDashboard.chart.data as number[][];
    return { xs: data[0].length, nonZero: data[1].filter((y) => y > 0).length, sum: data[1].reduce((a, b) => a + b, 0) };
  });
  assert.ok(points.xs > 0 && points.nonZero > 0, `chart has no data: ${JSON.stringify(points)}`);
  assert.equal(points.sum, events, 'the chart shows every counted event');
}

test('the dashboard counts exactly what the shop and the traffic generator produced, and a reload does not count twice', { timeout: 180_000 }, async () => {
  const context = await browser!.newContext({ viewport: { width: 1440, height: 1100 } });
  try {
    const dashboard = await openDashboard(context);

    const { shop, shopEvents } = await shopThroughAnOutage(context);
    await produceSimulatedTraffic(dashboard);

    // The dashboard counts exactly what is in the log, which is exactly what was produced.
    const produced = shopEvents + TRAFFIC_EVENTS + CLI_EVENTS;
    await expectCounted(dashboard, produced);
    const addToCart = Number(await dashboard.textContent('#event-types li[data-type="add_to_cart"] .count'));
    assert.ok(addToCart >= 3, `add-to-cart count ${addToCart}`);
    await waitFor('consumer lag 0 on the dashboard', async () => (await dashboard.textContent('#total-lag')) === '0');

    await assertChartHolds(dashboard, produced);
    const topPages = await dashboard.locator('#top-pages li').count();
    assert.ok(topPages >= 3, 'top pages lists the visited pages');

    await dashboard.waitForTimeout(1200); // let the chart's last second settle for the picture
    await dashboard.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
    const trackedBeforeShot = await trackedEvents(shop);
    await shop.goto(`${baseUrl}/shop/product-headphones.html`);
    await shop.waitForSelector('[data-testid="runnel-badge"][data-state="connected"]', { timeout: WAIT_MS });
    await shop.screenshot({ path: join(artifacts, 'shop.png') });
    // Only on request, so a test run never edits tracked files: RUNNEL_UPDATE_SCREENSHOT=1 npm test -- demo
    if (process.env.RUNNEL_UPDATE_SCREENSHOT === '1') copyFileSync(join(artifacts, 'dashboard.png'), join(root, 'docs/screenshot-dashboard.png'));
    const shotPageEvents = (await trackedEvents(shop)) - trackedBeforeShot;

    // Reload: the dashboard resumes from its stored aggregates and offsets, without counting twice.
    const expectedNow = produced + shotPageEvents;
    await dashboard.reload();
    await dashboard.waitForSelector('#connection[data-state="connected"]', { timeout: WAIT_MS });
    await expectCounted(dashboard, expectedNow);
    await dashboard.waitForTimeout(1500); // anything redelivered after resuming would show up here
    assert.equal(await dashboardCount(dashboard), expectedNow, 'no double counting after reload');

    // …and keeps counting new events exactly once.
    await dashboard.fill('[data-testid="traffic-events"]', String(MORE_TRAFFIC_EVENTS));
    await dashboard.click('[data-testid="traffic-button"]');
    await dashboard.waitForSelector(`[data-testid="traffic-status"][data-acked="${MORE_TRAFFIC_EVENTS}"][data-state="done"]`, { timeout: WAIT_MS });
    await expectCounted(dashboard, expectedNow + MORE_TRAFFIC_EVENTS);

    // Replay from the beginning rebuilds the same numbers from the log.
    await dashboard.selectOption('#replay-from', '0');
    await dashboard.click('[data-testid="replay-button"]');
    await dashboard.waitForSelector('#replay-status[data-state="done"]', { timeout: WAIT_MS });
    await expectCounted(dashboard, expectedNow + MORE_TRAFFIC_EVENTS);
  } finally {
    await context.close();
  }
});
