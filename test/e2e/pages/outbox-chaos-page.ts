/**
 * Test page for the outbox chaos test (issue 11 finding 6): a
 * `window.chaosPage` API on `@runnel/client` with IndexedDB storage that
 * produces `{ id }` records through the durable outbox, steadily and in
 * bursts (a burst fills the outbox with many small batches, so a reload or a
 * crash lands while it drains), and reports every id whose `queued`
 * resolved to the test process at once through the `runnelQueued` binding
 * (context-wide, so it survives reloads and new pages). A crash can drop
 * the last report; such ids are still counted for duplicates in the log.
 */
import { createClient, type RunnelClient } from '@runnel/client';
import { indexedDbStorage } from '@runnel/client/indexeddb';

export interface ChaosStats { sent: number; queued: number; acked: number; errors: string[] }

export interface ChaosPageApi {
  /** Opens a client on IndexedDB database `db` and resolves once its stored outbox is loaded. */
  open(options: { urls: string[]; db: string; maxBatchRecords: number; orphanCheckMs: number }): Promise<void>;
  /** Produces `{ id: prefix + n }` at `ratePerSecond` until `stop`. */
  start(options: { topic: string; ratePerSecond: number; prefix: string }): void;
  /** Sends `count` records at once (ids continue the running numbering). */
  burst(count: number): void;
  /** Stops producing; resolves once every send so far is queued or refused, and its report is out. */
  stop(): Promise<ChaosStats>;
  /** Records still in the outbox (pending or frozen, not acknowledged). */
  outboxRecords(): number;
  state(): string;
  /** Records and batches stored per IndexedDB database (outbox slots), for failure messages. */
  storedCounts(): Promise<Record<string, { records: number; batches: number }>>;
}

declare global {
  interface Window {
    chaosPage: ChaosPageApi;
    runnelQueued?: (ids: string[]) => Promise<void>;
  }
}

let client: RunnelClient | undefined;
let run: { topic: string; prefix: string; n: number; timer: ReturnType<typeof setInterval>; pending: Set<Promise<unknown>> } | undefined;
const stats: ChaosStats = { sent: 0, queued: 0, acked: 0, errors: [] };
let unreported: string[] = [];

function report(): Promise<void> {
  if (unreported.length === 0) return Promise.resolve();
  const ids = unreported;
  unreported = [];
  return window.runnelQueued?.(ids) ?? Promise.resolve();
}

function sendOne(): void {
  const r = run!;
  const id = `${r.prefix}${r.n++}`;
  stats.sent++;
  const result = client!.producer.send(r.topic, { id });
  const queued = result.queued.then(() => {
    stats.queued++;
    unreported.push(id);
  }, (e) => { stats.errors.push(`${id} not queued: ${e?.code ?? ''} ${e?.message ?? e}`); });
  r.pending.add(queued);
  void queued.finally(() => r.pending.delete(queued));
  result.then(() => { stats.acked++; }, (e) => { stats.errors.push(`${id} not acked: ${e?.code ?? ''} ${e?.message ?? e}`); });
}

window.chaosPage = {
  async open({ urls, db, maxBatchRecords, orphanCheckMs }) {
    client = createClient({
      urls, storage: indexedDbStorage({ name: db }),
      limits: { maxBatchRecords, orphanCheckMs },
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    client.on('error', (e) => console.warn('[runnel error]', e.code ?? '', e.message));
    await client.producer.ready;
  },

  start({ topic, ratePerSecond, prefix }) {
    const startedAt = performance.now();
    let due = 0;
    run = {
      topic, prefix, n: 0, pending: new Set(),
      timer: setInterval(() => {
        const target = Math.floor(((performance.now() - startedAt) / 1000) * ratePerSecond);
        for (; due < target; due++) sendOne();
        void report();
      }, 10),
    };
  },

  burst(count) {
    for (let i = 0; i < count; i++) sendOne();
  },

  async stop() {
    clearInterval(run!.timer);
    await Promise.allSettled([...run!.pending]);
    await report();
    return { ...stats, errors: [...stats.errors] };
  },

  outboxRecords() {
    return client?.producer.outboxSize.records ?? -1;
  },

  state() {
    return client?.state ?? 'none';
  },

  async storedCounts() {
    const out: Record<string, { records: number; batches: number }> = {};
    for (const d of await indexedDB.databases()) {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const r = indexedDB.open(d.name!);
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      const count = (store: string): Promise<number> => new Promise((resolve) => {
        if (!db.objectStoreNames.contains(store)) return resolve(-1);
        const r = db.transaction(store).objectStore(store).count();
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => resolve(-1);
      });
      out[d.name!] = { records: await count('outboxRecords'), batches: await count('outboxBatches') };
      db.close();
    }
    return out;
  },
};
