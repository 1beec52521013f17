/**
 * Test page for the page-exit beacon test: a `window.runnelBeaconPage` API
 * on `@runnel/client` with IndexedDB storage and the opt-in page-exit flush
 * (`beacon: pageExitBeacon`). Records are produced in explicit batches
 * (`sendBatch` waits until its records sit in a persisted frozen batch, the
 * only thing the beacon sends), and the outbox can be inspected.
 */
import { createClient, type RunnelClient } from '@runnel/client';
import { pageExitBeacon } from '@runnel/client/beacon';
import { indexedDbStorage } from '@runnel/client/indexeddb';

export interface OutboxView {
  /** Unacknowledged records (pending + frozen). */
  records: number;
  /** Persisted frozen batches (what a beacon would send), in send order. */
  frozen: { partition: number; baseSequence: number; records: number }[];
}

export interface BeaconPageApi {
  /** Opens a client on IndexedDB database `db` and resolves once its stored outbox is loaded. */
  open(options: { urls: string[]; db: string }): Promise<void>;
  /** Sends `{ id }` for each id to `partition` and resolves once they all wait in persisted frozen batches. */
  sendBatch(options: { topic: string; partition: number; ids: string[] }): Promise<void>;
  /** Sends one record and resolves with its offset once acknowledged. */
  sendAcked(options: { topic: string; partition: number; id: string }): Promise<number>;
  outbox(): OutboxView;
  state(): string;
}

declare global {
  interface Window { runnelBeaconPage: BeaconPageApi }
}

/** Poll interval while waiting for the producer to freeze a batch (it lingers a few ms). */
const FREEZE_POLL_MS = 5;

let client: RunnelClient | undefined;

const frozenRecords = (): number => client!.producer.frozenBatches().reduce((n, b) => n + b.recordIds.length, 0);

window.runnelBeaconPage = {
  async open({ urls, db }) {
    // Short reconnect backoff: the test releases the link and waits for the outbox to drain.
    client = createClient({ urls, storage: indexedDbStorage({ name: db }), beacon: pageExitBeacon, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    client.on('error', (e) => console.warn('[runnel error]', e.code ?? '', e.message));
    await client.producer.ready;
  },

  async sendBatch({ topic, partition, ids }) {
    const before = frozenRecords();
    const results = ids.map((id) => client!.producer.send(topic, { id }, { partition }));
    for (const r of results) r.catch((e) => console.warn('[runnel send]', e?.code ?? '', e?.message ?? e));
    await Promise.all(results.map((r) => r.queued));
    while (frozenRecords() < before + ids.length) await new Promise((resolve) => setTimeout(resolve, FREEZE_POLL_MS));
  },

  async sendAcked({ topic, partition, id }) {
    return (await client!.producer.send(topic, { id }, { partition })).offset;
  },

  outbox() {
    const frozen = client!.producer.frozenBatches().map((b) => ({ partition: b.partition, baseSequence: b.baseSequence, records: b.recordIds.length }));
    return { records: client!.producer.outboxSize.records, frozen };
  },

  state() {
    return client?.state ?? 'none';
  },
};
