/**
 * Page for `npm run bench -- client`: one consumer (`@runnel/client` with
 * IndexedDB offsets) reads a pre-filled topic from the earliest offset; the
 * handler touches each decoded value so decoding cannot be skipped. Reports
 * records handed to the handler and the time from subscribe to the last one.
 */
import { createClient } from '@runnel/client';
import { indexedDbStorage } from '@runnel/client/indexeddb';

export interface BenchResult { records: number; ms: number; checksum: number }

declare global {
  interface Window { runnelBench: { run(options: { urls: string[]; topic: string; expected: number; timeoutMs: number; creditWindowBytes?: number; maxCreditWindowBytes?: number }): Promise<BenchResult> } }
}

window.runnelBench = {
  async run({ urls, topic, expected, timeoutMs, creditWindowBytes, maxCreditWindowBytes }) {
    const limits = { ...(creditWindowBytes ? { creditWindowBytes } : {}), ...(maxCreditWindowBytes ? { maxCreditWindowBytes } : {}) };
    const client = createClient({ urls, storage: indexedDbStorage({ name: `bench-${Date.now()}` }), limits });
    await client.metadata([topic]); // connected, partition count known: the clock measures consumption only
    let records = 0;
    let checksum = 0;
    const startedAt = performance.now();
    let finish!: (r: BenchResult) => void;
    const done = new Promise<BenchResult>((resolve) => (finish = resolve));
    const sub = client.subscribe<{ i: number }>(topic, (record) => {
      checksum = (checksum + record.value.i) | 0;
      if (++records === expected) finish({ records, ms: performance.now() - startedAt, checksum });
    }, { consumerId: 'bench', from: 'earliest' });
    const timer = setTimeout(() => finish({ records, ms: performance.now() - startedAt, checksum }), timeoutMs);
    const result = await done;
    clearTimeout(timer);
    await sub.unsubscribe();
    await client.close();
    return result;
  },
};
