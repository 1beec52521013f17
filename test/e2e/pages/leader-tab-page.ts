/**
 * Test page for leader-tab mode (sdk-leader-tab.test.ts): a tab on
 * `@runnel/worker`'s `connectShared` in a browser without SharedWorker (the
 * test deletes it before any script runs), so the tabs elect a leader. The
 * handler reports each delivery `[partition, offset]` through the
 * `runnelLeaderDelivered` binding; the producer loop reports each id whose
 * `queued` resolved (`runnelLeaderQueued`) and each send's outcome
 * (`runnelLeaderSettled`: acked with its offset, or the error). Reports are
 * batched per REPORT_INTERVAL_MS and go out in order.
 */
import { connectShared, type SharedClient } from '@runnel/worker';

export interface LeaderTabPageApi {
  connect(options: { urls: string[]; db: string }): Promise<string>;
  subscribe(options: { topic: string; consumerId: string }): Promise<void>;
  /** Sends `{ id: idPrefix + n }` to `topic`, `perTick` every `tickMs`, until `stopProducing`. */
  startProducing(options: { topic: string; idPrefix: string; perTick: number; tickMs: number }): void;
  /** Stops the loop; resolves with the number of sends started. */
  stopProducing(): number;
  hasSharedWorker(): boolean;
}

export type Settled = { id: string; partition: number; offset: number } | { id: string; error: string };

declare global {
  interface Window {
    leaderTab: LeaderTabPageApi;
    runnelLeaderDelivered?: (rows: [number, number][]) => Promise<void>;
    runnelLeaderQueued?: (ids: string[]) => Promise<void>;
    runnelLeaderSettled?: (rows: Settled[]) => Promise<void>;
  }
}

const REPORT_INTERVAL_MS = 20;
let runnel: SharedClient | undefined;
let producing: ReturnType<typeof setInterval> | undefined;
let started = 0;

/** A batching reporter: rows collected and handed to `send` every REPORT_INTERVAL_MS, one call at a time (in order). */
function reporter<T>(send: () => ((rows: T[]) => Promise<void>) | undefined): (row: T) => void {
  let rows: T[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let chain = Promise.resolve();
  return (row) => {
    rows.push(row);
    timer ??= setTimeout(() => {
      timer = undefined;
      const batch = rows;
      rows = [];
      chain = chain.then(() => send()?.(batch)).catch(() => {});
    }, REPORT_INTERVAL_MS);
  };
}

const delivered = reporter<[number, number]>(() => window.runnelLeaderDelivered);
const queued = reporter<string>(() => window.runnelLeaderQueued);
const settled = reporter<Settled>(() => window.runnelLeaderSettled);

window.leaderTab = {
  async connect({ urls, db }) {
    runnel = await connectShared({ workerUrl: '/unused-worker.js', urls, databaseName: db });
    return runnel.mode;
  },
  async subscribe({ topic, consumerId }) {
    await runnel!.subscribe(topic, (record) => delivered([record.partition, record.offset]), { consumerId, from: 'earliest' });
  },
  startProducing({ topic, idPrefix, perTick, tickMs }) {
    producing = setInterval(() => {
      for (let i = 0; i < perTick; i++) {
        const id = `${idPrefix}${started++}`;
        const send = runnel!.send(topic, { id });
        send.queued.then(() => queued(id), () => {});
        send.then((m) => settled({ id, partition: m.partition, offset: m.offset }), (e) => settled({ id, error: `${e?.errorName ?? ''} ${e?.message ?? e}` }));
      }
    }, tickMs);
  },
  stopProducing() {
    clearInterval(producing);
    return started;
  },
  hasSharedWorker: () => 'SharedWorker' in window,
};
