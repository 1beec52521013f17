/**
 * Page for test/e2e/sdk-hidden-credit.test.ts: one `@runnel/client`
 * consumer with `pauseWhenHidden`, counting what its handler gets (offsets
 * per partition, to check for gaps and duplicates). `setHidden` plays the
 * page going to the background: it overrides `document.visibilityState` and
 * fires `visibilitychange`, which is what the SDK listens to (headless
 * Chromium never hides a page by itself).
 */
import { createClient, type RunnelClient } from '@runnel/client';

export interface HiddenCreditStats { delivered: number; offsets: number[] }

export interface HiddenCreditPageApi {
  /** Opens a client (`pauseWhenHidden` as given) and subscribes `topic` partition 0 from earliest. */
  start(options: { urls: string[]; topic: string; pauseWhenHidden: boolean }): Promise<void>;
  setHidden(hidden: boolean): void;
  stats(): HiddenCreditStats;
  close(): Promise<void>;
}

declare global {
  interface Window { runnelHiddenCredit: HiddenCreditPageApi }
}

let client: RunnelClient | undefined;
const offsets: number[] = [];

window.runnelHiddenCredit = {
  async start({ urls, topic, pauseWhenHidden }) {
    client = createClient({ urls, pauseWhenHidden, limits: { creditWindowBytes: 1024, maxCreditWindowBytes: 1024 } });
    await client.metadata([topic]);
    const sub = client.subscribe(topic, (record) => { offsets.push(record.offset); }, { from: 'earliest', partitions: [0] });
    await sub.ready;
  },
  setHidden(hidden) {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
    document.dispatchEvent(new Event('visibilitychange'));
  },
  stats: () => ({ delivered: offsets.length, offsets: [...offsets] }),
  async close() { await client?.close(); },
};
