/**
 * Test page for the SharedWorker test: a tab on `@runnel/worker`'s
 * `connectShared` (one client, one WebSocket, one outbox in a SharedWorker
 * for the whole origin). The handler reports each delivery
 * `[topic, partition, offset]` to the test process through the exposed
 * `runnelSharedDelivered` binding, batched; the test never reloads these tabs,
 * so that record is complete once the binding calls have landed.
 */
import { connectShared, type SharedClient } from '@runnel/worker';

export interface SharedPageApi {
  /** Connects this tab through the worker bundle served at /runnel-worker.js; resolves with the mode used. */
  connect(options: { urls: string[]; db: string; mode?: 'shared' | 'leader' | 'dedicated' | 'page'; orphanCheckMs?: number }): Promise<string>;
  subscribe(options: { topic: string; consumerId: string }): Promise<void>;
  /** Sends `count` values `{ id: idPrefix + n }` through the shared client; resolves once all are acknowledged. */
  produce(options: { topic: string; count: number; idPrefix: string }): Promise<number>;
  /** Sends like `produce` but resolves once all are queued in the outbox (not waiting for acks). */
  queue(options: { topic: string; count: number; idPrefix: string }): Promise<number>;
  outboxRecords(): Promise<number>;
  state(): Promise<string>;
}

declare global {
  interface Window {
    sharedPage: SharedPageApi;
    runnelSharedDelivered?: (rows: [string, number, number][]) => Promise<void>;
  }
}

const REPORT_INTERVAL_MS = 20;
let runnel: SharedClient | undefined;
let unreported: [string, number, number][] = [];
let reportTimer: ReturnType<typeof setTimeout> | undefined;

function report(row: [string, number, number]): void {
  unreported.push(row);
  reportTimer ??= setTimeout(() => {
    reportTimer = undefined;
    const rows = unreported;
    unreported = [];
    void window.runnelSharedDelivered?.(rows);
  }, REPORT_INTERVAL_MS);
}

window.sharedPage = {
  async connect({ urls, db, mode = 'shared', orphanCheckMs }) {
    runnel = await connectShared({ workerUrl: '/runnel-worker.js', mode, urls, databaseName: db, limits: orphanCheckMs === undefined ? undefined : { orphanCheckMs } });
    return runnel.mode;
  },
  async subscribe({ topic, consumerId }) {
    await runnel!.subscribe(topic, (record) => report([record.topic, record.partition, record.offset]), { consumerId, from: 'earliest' });
  },
  async produce({ topic, count, idPrefix }) {
    const sends = Array.from({ length: count }, (_, n) => runnel!.send(topic, { id: `${idPrefix}${n}` }));
    return (await Promise.all(sends)).length;
  },
  async queue({ topic, count, idPrefix }) {
    const sends = Array.from({ length: count }, (_, n) => runnel!.send(topic, { id: `${idPrefix}${n}` }));
    for (const s of sends) s.catch(() => {});
    return (await Promise.all(sends.map((s) => s.queued))).length;
  },
  outboxRecords: async () => (await runnel!.outboxSize()).records,
  state: () => runnel!.state(),
};
