/**
 * The Cluster panel in real Chromium: given polled `/v1/cluster` answers, it
 * draws the nodes (controller badge, up / not answering / down) and the
 * partitions (health, ISR against replicas, high watermark, follower lag).
 * A screenshot goes to test/artifacts/cluster-panel.png (git-ignored).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../../../test/e2e/harness/chromium.ts';
import { PageServer } from '../../../test/e2e/harness/page-server.ts';
import { peerView, selfView, SINGLE_NODE } from './cluster-fixtures.ts';
import type { ClusterViewJson } from './cluster-overview.ts';

const root = new URL('../../..', import.meta.url).pathname;
const ORIGIN = 'http://127.0.0.1:8081';
let pages: PageServer;
let browser: Browser;
let page: Page;

type Peers = [number, ClusterViewJson | { error: string }][];
const render = (self: ClusterViewJson, peers: Peers, maxRows?: number) =>
  page.evaluate(([s, p, o, m]) => (window as any).clusterPanelPage.render(s, p, o, m), [self, peers, ORIGIN, maxRows] as const);
const texts = (selector: string) => page.locator(selector).allTextContents();

before(async () => {
  pages = await PageServer.start({ bundles: { panel: 'demo/src/dashboard/cluster-panel.test-page.ts' }, pages: { panel: 'panel' } });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1300, height: 700 } });
  const errors: Error[] = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`${pages.url}/panel.html`);
  await page.waitForFunction(() => (window as any).clusterPanelPage !== undefined, undefined, { timeout: 30_000 });
  await page.addStyleTag({ path: join(root, 'demo/public/assets/dashboard.css') });
  assert.deepEqual(errors, []);
});

after(async () => {
  await browser?.close();
  await pages?.close();
});

test('three brokers: nodes with the controller badge and up / not answering / down; partitions with health, ISR vs replicas and lag', { timeout: 60_000 }, async () => {
  const withUnreachable: Peers = [[2, peerView()]];
  await render({ ...selfView(), brokers: [...selfView().brokers, { id: 4, clientUrl: 'http://127.0.0.1:8084', startedAtMs: 0 }] },
    [...withUnreachable, [4, { error: 'http://127.0.0.1:8084/v1/cluster: no answer within 1500 ms (timeout)' }]]);

  const nodes = page.locator('[data-testid="cluster-nodes"] li');
  assert.equal(await nodes.count(), 4);
  const node = (id: number) => page.locator(`[data-testid="cluster-nodes"] li[data-broker-id="${id}"]`);
  assert.equal(await node(1).getAttribute('data-state'), 'up');
  assert.equal(await node(1).getAttribute('data-controller'), 'true');
  assert.deepEqual(await node(1).locator('.badge').allTextContents(), ['controller', 'this page']);
  assert.match(await node(1).textContent() ?? '', /broker #1.*up · leads 1 · hosts 2.*http:\/\/127\.0\.0\.1:8081/);
  assert.equal(await node(2).getAttribute('data-controller'), 'false');
  assert.equal(await node(2).locator('.badge').count(), 0);
  assert.equal(await node(3).getAttribute('data-state'), 'down');
  assert.match(await node(3).textContent() ?? '', /down · leads 0 · hosts 2.*URL not registered/);
  assert.equal(await node(4).getAttribute('data-state'), 'unreachable');
  assert.match(await node(4).getAttribute('title') ?? '', /timeout/);

  assert.equal(await page.textContent('[data-testid="cluster-summary"]'),
    '2 of 4 nodes up · controller #1 · etcd connected · 3 partitions · 1 under-replicated · 1 offline');

  const rows = page.locator('[data-testid="cluster-partitions"] tr');
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => `${(tr as HTMLElement).dataset.partition}:${(tr as HTMLElement).dataset.health}`)),
    ['0:under-replicated', '1:ok', '2:offline']);
  const cells = (partition: number) => page.locator(`[data-testid="cluster-partitions"] tr[data-partition="${partition}"] td`).allTextContents();
  assert.deepEqual(await cells(0), ['orders', '0', '#1', '4', '#1 #2 #3', '#1 #2', '1,200', '1,250', '900', '45.0 s']);
  assert.deepEqual(await cells(1), ['orders', '1', '#2', '2', '#2 #1', '#2 #1', '800', '800', '0', '0 ms']);
  assert.deepEqual(await cells(2), ['orders', '2', 'offline', '7', '#3', '#3', '10', '10', '—', '—']);
  assert.deepEqual(await texts('tr[data-partition="0"] .out-of-isr'), ['#3'], 'the replica out of the ISR is marked');
  assert.match(await page.locator('tr[data-partition="0"] td').nth(8).getAttribute('title') ?? '', /#3: 900 records, 45\.0 s \(out of ISR\)/);
  assert.equal(await page.locator('tr[data-partition="2"]').evaluate((tr) => getComputedStyle(tr.querySelector('td')!).backgroundColor !== 'rgba(0, 0, 0, 0)'), true, 'offline rows are highlighted');

  mkdirSync(join(root, 'test/artifacts'), { recursive: true });
  await page.locator('#cluster-panel').screenshot({ path: join(root, 'test/artifacts/cluster-panel.png') });
});

test('live refresh: the next render replaces the last (a failover), and an unanswered poll keeps the drawing and says so', { timeout: 60_000 }, async () => {
  await render(selfView(), [[2, peerView()]]);
  // Broker 2 took over partition 0 and the controllership; broker 1 is still the page's broker.
  const after = selfView();
  after.controller = 2;
  after.partitions[0] = { ...after.partitions[0], leader: 2, leaderEpoch: 5, isr: [2], role: 'follower', followers: undefined };
  await render(after, [[2, { ...peerView(), controller: 2 }]]);
  assert.equal(await page.getAttribute('[data-testid="cluster-nodes"] li[data-broker-id="2"]', 'data-controller'), 'true');
  assert.equal(await page.getAttribute('[data-testid="cluster-nodes"] li[data-broker-id="1"]', 'data-controller'), 'false');
  assert.deepEqual((await texts('[data-testid="cluster-partitions"] tr[data-partition="0"] td')).slice(2, 6), ['#2', '5', '#1 #2 #3', '#2']);
  assert.equal(await page.locator('[data-testid="cluster-partitions"] tr').count(), 3);

  await page.evaluate(() => (window as any).clusterPanelPage.renderError('http://127.0.0.1:8081/v1/cluster answered 503'));
  assert.equal(await page.getAttribute('#cluster-panel', 'data-state'), 'error');
  assert.match(await page.textContent('[data-testid="cluster-summary"]') ?? '', /unavailable: .*503/);
  assert.equal(await page.locator('[data-testid="cluster-partitions"] tr').count(), 3, 'the last drawing stays');
});

test('single node and a cut list: one node at the page\'s origin; rows past maxRows are counted, unhealthy ones kept', { timeout: 60_000 }, async () => {
  await render(SINGLE_NODE, []);
  assert.match(await page.textContent('[data-testid="cluster-summary"]') ?? '', /^single node \(no etcd\) · 1 partition · 0 under-replicated · 0 offline$/);
  assert.match(await page.textContent('[data-testid="cluster-nodes"] li[data-broker-id="0"]') ?? '', /controller.*this page.*up.*http:\/\/127\.0\.0\.1:8081/);
  assert.deepEqual((await texts('[data-testid="cluster-partitions"] tr[data-partition="0"] td')).slice(8), ['—', '—'], 'one replica: no followers, no lag to show');
  assert.equal(await page.getAttribute('[data-testid="cluster-partitions"] tr[data-partition="0"] td:nth-child(9)', 'title'), 'no followers');

  const view = selfView();
  view.partitions = [...Array.from({ length: 30 }, (_, i) => ({ ...view.partitions[1], topic: 'a', partition: i })), ...view.partitions];
  await render(view, [], 5);
  assert.equal(await page.locator('[data-testid="cluster-partitions"] tr').count(), 5);
  assert.equal(await page.locator('[data-testid="cluster-partitions"] tr[data-health="offline"]').count(), 1);
  assert.match(await page.textContent('#cluster-panel > p.sub') ?? '', /^28 more partitions not shown/);

  await render({ ...SINGLE_NODE, partitions: [] }, []);
  assert.deepEqual(await texts('[data-testid="cluster-partitions"] td'), ['no partitions yet']);
});
