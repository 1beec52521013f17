/**
 * Chromium for the browser tests: Debian's /usr/bin/chromium driven by
 * playwright-core (no bundled browser download). `npm test`
 * (test/run-tests.mjs) installs the package with apt when it is missing;
 * here we only fail with a message that says so.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.RUNNEL_CHROMIUM ?? '/usr/bin/chromium';

/** NB: --disable-quic keeps every connection on TCP so setOffline/CDP throttling sees it. */
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Launches headless Chromium. Close it in an `after` hook; the launched
 * process also dies with the test process (playwright's own handlers).
 * @example const browser = await launchChromium(); try { ... } finally { await browser.close(); }
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install it with \`apt-get install -y chromium\` ` +
      '(npm test does this for you) or point RUNNEL_CHROMIUM at a Chromium binary');
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}
