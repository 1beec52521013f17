/**
 * The raw ceiling of a Chromium WebSocket for `npm run bench -- client`: a
 * plain uWebSockets.js server (the library the broker serves with) pushes
 * one pre-encoded RecordsFrame, of the size the broker's catch-up reads
 * send, again and again with no credit round trips and no log reads, only
 * uWS backpressure (the broker's maxBackpressureBytes) pacing it. The page
 * (test/e2e/pages/raw-ws-ceiling-page.ts) only counts bytes, so the figure
 * is what the browser's socket, not any decoding, can take in on this
 * machine; records = bytes / bytes per record of the same stored batches.
 */
import type { us_listen_socket, WebSocket } from 'uWebSockets.js';
import uws from '../../server/src/broker/uws.ts';
import { encodeRecordsFrame } from '@runnel/client/codec';

/** The broker's default maxBackpressureBytes: a catch-up read waits for a socket buffering more than this. */
const BACKPRESSURE_BYTES = 4 * 1024 * 1024;

export interface RawCeilingServer {
  /** ws:// URL; the page asks `?frames=N` for N frames. */
  readonly wsUrl: string;
  /** Bytes of the one frame pushed. */
  readonly frameBytes: number;
  close(): void;
}

/** `batch` repeated as many times as fit in `frameBatchBytes` (at least once), wrapped as one RecordsFrame. */
export function ceilingFrame(topic: string, batch: Uint8Array, frameBatchBytes: number): Uint8Array {
  const copies = Math.max(1, Math.floor(frameBatchBytes / batch.length));
  const batches = new Uint8Array(copies * batch.length);
  for (let i = 0; i < copies; i++) batches.set(batch, i * batch.length);
  return encodeRecordsFrame(topic, 0, Number.MAX_SAFE_INTEGER, batches);
}

interface PushState { left: number; closed: boolean }

export async function startRawCeilingServer(frame: Uint8Array): Promise<RawCeilingServer> {
  const app = uws.App();
  // Sends until the socket buffers past the backpressure limit; drain continues (uWS Backpressure.js).
  const push = (ws: WebSocket<PushState>): void => {
    const state = ws.getUserData();
    while (state.left > 0 && ws.getBufferedAmount() < BACKPRESSURE_BYTES) {
      state.left--;
      if (ws.send(frame, true) === 0) break; // BACKPRESSURE: buffered, wait for drain
    }
    if (state.left === 0 && ws.getBufferedAmount() === 0) ws.end(1000);
  };
  app.ws<PushState>('/*', {
    maxPayloadLength: 1024, compression: uws.DISABLED, maxBackpressure: 16 * BACKPRESSURE_BYTES, idleTimeout: 120,
    upgrade: (res, req, context) => {
      const frames = Number(new URLSearchParams(req.getQuery() ?? '').get('frames') ?? 0);
      res.upgrade<PushState>({ left: frames, closed: false }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
    },
    open: push,
    // NB: frames sent from inside uWS's drain callback stalled here (the rest never flushed, no second drain):
    // push on the next turn, corked, as the broker's catch-up reads do from their own callbacks.
    drain: (ws) => void setImmediate(() => { if (!ws.getUserData().closed) ws.cork(() => push(ws)); }),
    close: (ws) => { ws.getUserData().closed = true; },
  });
  const token = await new Promise<us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (t) => (t ? resolve(t) : reject(new Error('raw ceiling server: listen failed')))));
  const port = uws.us_socket_local_port(token);
  return { wsUrl: `ws://127.0.0.1:${port}/raw`, frameBytes: frame.length, close: () => uws.us_listen_socket_close(token) };
}
