/** @runnel/worker — one Runnel connection for all tabs of an origin (a SharedWorker over comlink; without one, a leader tab elected with Web Locks, over BroadcastChannel). */
export { connectShared, createHost } from './connect-shared.ts';
export type { ConnectSharedOptions, SharedClient, SharedSubscription } from './connect-shared.ts';
export type { WorkerApi, SharedClientOptions, SubscribeOptionsShared } from './worker-api.ts';
