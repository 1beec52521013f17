/**
 * Worker entry (bundled to worker/dist/runnel-worker.js by worker/build.mjs):
 * one host for every tab. As a SharedWorker each tab's port gets its own view
 * of the host through comlink (so the acknowledgments it waits for are
 * released when it releases the port); as a dedicated Worker (no
 * SharedWorker, e.g. Chrome on Android) the worker itself is the endpoint.
 */
import { expose } from 'comlink';
import { createPortHost } from './worker-api.ts';

const host = createPortHost();
const scope = globalThis as unknown as { onconnect?: unknown; postMessage?: unknown };

if ('onconnect' in scope) {
  (scope as { onconnect: (event: MessageEvent) => void }).onconnect = (event) => expose(host.forPort(), event.ports[0]);
} else {
  expose(host.forPort(), globalThis as unknown as Parameters<typeof expose>[1]);
}
