/**
 * The shop's connection to Runnel, reduced to what the pages need: queue an
 * event durably, read the connection state and the outbox size, hear about
 * state changes. Backed by @runnel/worker's SharedWorker: every shop tab of
 * the origin shares one WebSocket and one IndexedDB outbox, and an event
 * queued by a page that then navigates away is sent by the worker (or by the
 * next page's worker, from IndexedDB).
 */
import type { Topic } from '@runnel/client';
import { connectShared } from '@runnel/worker';

/** Where demo/build.mjs puts the bundled worker host (worker/src/shared-worker.ts). */
const WORKER_URL = '/assets/runnel-worker.js';

export interface ShopConnection {
  /** 'shared' (SharedWorker), 'dedicated' (Worker fallback) or 'page' (no workers). */
  mode: string;
  /** Resolves once the event is safely in the outbox (it is acknowledged later). */
  send<T>(topic: Topic<T, unknown>, value: T, key: string): Promise<void>;
  state(): Promise<string>;
  /** Records accepted and not yet acknowledged by the broker. */
  outboxSize(): Promise<number>;
  onStateChange(listener: (state: string) => void): void;
}

export async function connectShop(webSocketUrl: string): Promise<ShopConnection> {
  const runnel = await connectShared({
    workerUrl: WORKER_URL,
    urls: [webSocketUrl],
    clientId: 'runnel-demo-shop',
    databaseName: 'runnel-demo-shop',
  });
  return {
    mode: runnel.mode,
    send: (topic, value, key) => runnel.send(topic, value, { key }).queued,
    state: () => runnel.state(),
    outboxSize: async () => (await runnel.outboxSize()).records,
    onStateChange: (listener) => runnel.onStateChange(listener),
  };
}
