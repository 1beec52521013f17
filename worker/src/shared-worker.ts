/**
 * Worker entry (bundled to worker/dist/runnel-worker.js by worker/build.mjs):
 * one host for every tab. As a SharedWorker each tab's port gets the API
 * through comlink; as a dedicated Worker (no SharedWorker, e.g. Chrome on
 * Android) the worker itself is the endpoint.
 */
import { expose } from 'comlink';
import { createHost } from './worker-api.ts';

const host = createHost();
const scope = globalThis as unknown as { onconnect?: unknown; postMessage?: unknown };

if ('onconnect' in scope) {
  (scope as { onconnect: (event: MessageEvent) => void }).onconnect = (event) => expose(host, event.ports[0]);
} else {
  expose(host, globalThis as unknown as Parameters<typeof expose>[1]);
}
