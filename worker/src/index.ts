/** @runnel/worker — one Runnel connection for all tabs of an origin (SharedWorker + comlink). */
export { connectShared, createHost } from './connect-shared.ts';
export type { ConnectSharedOptions, SharedClient, SharedSubscription } from './connect-shared.ts';
export type { WorkerApi, SharedClientOptions, SubscribeOptionsShared } from './worker-api.ts';
