/**
 * Test page for the SDK browser tests: a `window.runnelPage` API the test
 * drives with `page.evaluate`, on `@runnel/client` with IndexedDB storage
 * (a real outbox and real stored offsets).
 *
 * What the handler saw: the consumer runs in the SDK's transactional mode,
 * and its handler appends `{ partition, offset, id }` to an app store
 * (`journal`, auto-increment keys, so a duplicate delivery shows as a second
 * row) in the SAME IndexedDB transaction as the stored offset. So the
 * journal is exactly the handler's committed effect, it survives reloads,
 * and a page killed mid-transaction leaves neither the rows nor the offset.
 * The handler also pushes each delivery to the test process through the
 * exposed `runnelDelivered` binding, batched, for progress only (a reload
 * can drop the last unflushed batch, so the journal is the authority).
 */
import { createClient, type RunnelClient, type Subscription } from '@runnel/client';
import { indexedDbStorage } from '@runnel/client/indexeddb';

export const JOURNAL_STORE = 'journal';

export interface JournalRow { partition: number; offset: number; id: string }
export interface ProduceStats { queued: string[]; acked: number; errors: string[]; outboxRecords: number }

export interface SdkPageApi {
  /** Opens a client on IndexedDB database `db` (`pingIntervalMs`: the SDK's keep-alive, default its own). */
  open(options: { urls: string[]; db: string; pingIntervalMs?: number }): Promise<void>;
  /** Subscribes `consumerId` to `topic` (resuming from stored offsets, else earliest). */
  consume(options: { topic: string; consumerId: string }): Promise<void>;
  /** Every row of the journal, in commit order. */
  journal(): Promise<JournalRow[]>;
  /** Produces `{ id: idPrefix + n }` values at `ratePerSecond` until `stopProducing`. */
  startProducing(options: { topic: string; ratePerSecond: number; idPrefix: string }): void;
  /** Stops calling `send`; resolves once every `send` so far is queued (durably in the outbox) or refused. */
  stopProducing(): Promise<ProduceStats>;
  produceStats(): ProduceStats;
  state(): string;
  close(): Promise<void>;
}

declare global {
  interface Window {
    runnelPage: SdkPageApi;
    runnelDelivered?: (rows: [number, number, string][]) => Promise<void>;
  }
}

/** Progress reports to the test process go out at most this often. */
const REPORT_INTERVAL_MS = 20;

let client: RunnelClient | undefined;
let dbName = '';
let subscription: Subscription<unknown> | undefined;
let producing: { timer: ReturnType<typeof setInterval>; stats: ProduceStats; pending: Set<Promise<unknown>> } | undefined;

let unreported: [number, number, string][] = [];
let reportTimer: ReturnType<typeof setTimeout> | undefined;
function report(row: [number, number, string]): void {
  unreported.push(row);
  reportTimer ??= setTimeout(() => {
    reportTimer = undefined;
    const rows = unreported;
    unreported = [];
    void window.runnelDelivered?.(rows);
  }, REPORT_INTERVAL_MS);
}

const idOf = (value: unknown): string => (value && typeof value === 'object' && 'id' in value ? String((value as { id: unknown }).id) : String(value));

window.runnelPage = {
  async open({ urls, db, pingIntervalMs }) {
    dbName = db;
    const storage = await indexedDbStorage({
      name: db,
      upgrade(raw) {
        if (!raw.objectStoreNames.contains(JOURNAL_STORE)) raw.createObjectStore(JOURNAL_STORE, { autoIncrement: true });
      },
    });
    client = createClient({ urls, storage, ...(pingIntervalMs ? { pingIntervalMs } : {}) });
    client.on('error', (e) => console.warn('[runnel error]', e.code ?? '', e.message));
  },

  async consume({ topic, consumerId }) {
    subscription = client!.subscribe(topic, (record, { tx }) => {
      const id = idOf(record.value);
      // NB: no await: the write joins the SDK's transaction, which commits it with the offset.
      tx.objectStore(JOURNAL_STORE).add({ partition: record.partition, offset: record.offset, id } satisfies JournalRow);
      report([record.partition, record.offset, id]);
    }, { consumerId, reset: 'earliest', transactional: { stores: [JOURNAL_STORE] } });
    subscription.on('notrecovered', (e) => console.warn('[runnel notrecovered]', JSON.stringify(e)));
    await subscription.ready;
  },

  async journal() {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(dbName);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    try {
      return await new Promise<JournalRow[]>((resolve, reject) => {
        const request = db.transaction(JOURNAL_STORE).objectStore(JOURNAL_STORE).getAll();
        request.onsuccess = () => resolve(request.result as JournalRow[]);
        request.onerror = () => reject(request.error);
      });
    } finally {
      db.close();
    }
  },

  startProducing({ topic, ratePerSecond, idPrefix }) {
    const stats: ProduceStats = { queued: [], acked: 0, errors: [], outboxRecords: 0 };
    const pending = new Set<Promise<unknown>>();
    const startedAt = performance.now();
    let n = 0;
    const tick = (): void => {
      const due = Math.floor(((performance.now() - startedAt) / 1000) * ratePerSecond);
      for (; n < due; n++) {
        const id = `${idPrefix}${n}`;
        const result = client!.producer.send(topic, { id, at: Date.now() });
        const queued = result.queued.then(() => stats.queued.push(id), (e) => stats.errors.push(`${id} not queued: ${e?.code ?? ''} ${e?.message ?? e}`));
        pending.add(queued);
        void queued.finally(() => pending.delete(queued));
        result.then(() => stats.acked++, (e) => stats.errors.push(`${id} not acked: ${e?.code ?? ''} ${e?.message ?? e}`));
      }
    };
    producing = { timer: setInterval(tick, 10), stats, pending };
  },

  async stopProducing() {
    clearInterval(producing!.timer);
    await Promise.allSettled([...producing!.pending]);
    return window.runnelPage.produceStats();
  },

  produceStats() {
    const stats = producing?.stats ?? { queued: [], acked: 0, errors: [], outboxRecords: 0 };
    return { ...stats, outboxRecords: client?.producer.outboxSize.records ?? 0 };
  },

  state() {
    return client?.state ?? 'none';
  },

  async close() {
    await client?.close();
  },
};
