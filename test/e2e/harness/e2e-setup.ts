/**
 * The common frame of a browser test file: a real broker process, the test
 * pages' server and Chromium (plus, when asked, a TCP proxy in front of the
 * broker), started in `before` and stopped in `after`. Startup uses
 * allSettled so that when one part fails the others are still stopped;
 * otherwise a live broker or browser would keep the test process from exiting.
 */
import { before, after } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from './chromium.ts';
import { BrokerProcess, type BrokerProcessOptions } from './broker-process.ts';
import type { PageServer } from './page-server.ts';
import { TcpProxy } from './tcp-proxy.ts';

export interface E2e {
  broker: BrokerProcess;
  pages: PageServer;
  browser: Browser;
  /** Only with `{ proxy: true }`: forwards to the broker's port. */
  proxy: TcpProxy;
}

/**
 * Registers the hooks; the returned object's fields are set once `before` has run.
 * @example const e2e = useE2e({ pages: serveSdkPage, proxy: true }); test('x', async () => e2e.browser.newContext());
 */
export function useE2e(options: { pages: () => Promise<PageServer>; proxy?: boolean; broker?: BrokerProcessOptions }): E2e {
  const parts: Partial<E2e> = {};
  before(async () => {
    const started = await Promise.allSettled([
      BrokerProcess.start(options.broker).then((b) => (parts.broker = b)),
      options.pages().then((p) => (parts.pages = p)),
      launchChromium().then((b) => (parts.browser = b)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    if (options.proxy) parts.proxy = await TcpProxy.start(parts.broker!.port);
  });
  after(async () => {
    await parts.browser?.close().catch(() => {});
    await parts.proxy?.close();
    await parts.pages?.close();
    await parts.broker?.stop();
  });
  return parts as E2e;
}
