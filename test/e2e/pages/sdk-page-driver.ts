/**
 * Node-side driver of sdk-page.ts: builds and serves the page, opens it in a
 * browser context with the progress binding installed, and wraps the
 * `window.runnelPage` calls the SDK browser tests make.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { PageServer } from '../harness/page-server.ts';
import { DeliveryLedger } from '../harness/delivery-ledger.ts';
import type { JournalRow, ProduceStats } from './sdk-page.ts';

/** Builds sdk-page.ts and serves it as `/sdk.html`. */
export function serveSdkPage(): Promise<PageServer> {
  return PageServer.start({ bundles: { sdk: 'test/e2e/pages/sdk-page.ts' }, pages: { sdk: 'sdk' } });
}

export interface SdkPage {
  page: Page;
  /** Deliveries reported by the handler (progress only: the journal is the authority). */
  progress: DeliveryLedger;
  /** Page errors and console warnings, for failure messages. */
  log: string[];
  /** Reloads the page (`page.reload()`) and opens a client on the same db (same stored offsets and outbox). */
  reload(): Promise<void>;
  consume(topic: string, consumerId: string): Promise<void>;
  journal(): Promise<JournalRow[]>;
  startProducing(topic: string, ratePerSecond: number, idPrefix: string): Promise<void>;
  stopProducing(): Promise<ProduceStats>;
  produceStats(): Promise<ProduceStats>;
  state(): Promise<string>;
}

/**
 * @example const sdk = await openSdkPage(context, pages.url, broker.wsUrl, 'db1'); await sdk.consume('t', 'c1');
 */
export async function openSdkPage(context: BrowserContext, pagesUrl: string, wsUrl: string, db: string, options: { pingIntervalMs?: number } = {}): Promise<SdkPage> {
  const page = await context.newPage();
  const progress = new DeliveryLedger();
  const log: string[] = [];
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
  page.on('console', (message) => { if (message.type() === 'warning' || message.type() === 'error') log.push(`[${message.type()}] ${message.text()}`); });
  await page.exposeFunction('runnelDelivered', (rows: [number, number, string][]) => {
    progress.record(rows.map(([partition, offset]) => ({ partition, offset })));
  });
  const openClient = async (): Promise<void> => {
    await page.waitForFunction(() => window.runnelPage !== undefined);
    await page.evaluate((o) => window.runnelPage.open(o), { urls: [wsUrl], db, pingIntervalMs: options.pingIntervalMs });
  };
  const sdk: SdkPage = {
    page, progress, log,
    async reload() {
      await page.reload();
      await openClient();
    },
    consume: (topic, consumerId) => page.evaluate((o) => window.runnelPage.consume(o), { topic, consumerId }),
    journal: () => page.evaluate(() => window.runnelPage.journal()),
    startProducing: (topic, ratePerSecond, idPrefix) => page.evaluate((o) => window.runnelPage.startProducing(o), { topic, ratePerSecond, idPrefix }),
    stopProducing: () => page.evaluate(() => window.runnelPage.stopProducing()),
    produceStats: () => page.evaluate(() => window.runnelPage.produceStats()),
    state: () => page.evaluate(() => window.runnelPage.state()),
  };
  await page.goto(`${pagesUrl}/sdk.html`);
  await openClient();
  return sdk;
}

/** A ledger of what the journal says the handler committed, for `problems()`. */
export function ledgerOf(rows: readonly JournalRow[]): DeliveryLedger {
  const ledger = new DeliveryLedger();
  ledger.record(rows);
  return ledger;
}
