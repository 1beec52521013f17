
import { VERBOSE } from '#verbose';/**
 * Transport seam: a message pipe carrying whole binary frames. The
 * connection never touches a socket API directly, so the same code runs on
 * the browser/edge `WebSocket`, Node's `ws` (injected by the caller: no Node
 * import in the browser build) and a `MessagePort` (message-port-transport.ts).
 * Contract (transport.contract.ts, run on every implementation): `open`
 * fires at most once before any `message`; messages arrive whole and in
 * order; `close` fires exactly once, last, also after `close()` or an error.
 */

export interface TransportListener {
  open(): void;
  message(data: Uint8Array): void;
  close(code: number, reason: string): void;
  error(error: unknown): void;
}

export interface Transport {
  /** Queues one binary frame. Frames sent before `open` or after `close` are dropped. */
  send(data: Uint8Array): void;
  /** Starts closing; `listener.close` follows (once). */
  close(code?: number, reason?: string): void;
  /** Bytes queued but not yet handed to the network (backpressure signal). */
  readonly bufferedAmount: number;
}

/** Opens a transport to `url`; events go to `listener`. */
export type TransportFactory = (url: string, listener: TransportListener) => Transport;

/** The part of the WHATWG WebSocket the SDK uses (browser, edge, `ws`). */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;

/**
 * Transport over a WebSocket implementation: `globalThis.WebSocket` in
 * browsers and edge runtimes, `ws`'s `WebSocket` in Node.
 * @example const factory = webSocketTransport(WebSocket); // or: (await import('ws')).WebSocket
 */
export function webSocketTransport(WebSocketImpl: WebSocketConstructor): TransportFactory {
  return (url, listener) => {
    let closed = false;
    const finish = (code: number, reason: string): void => {
      if (closed) return;
      closed = true;
      listener.close(code, reason);
    };
    let socket: WebSocketLike;
    try {
      socket = new WebSocketImpl(url);
    } catch (error) {
      queueMicrotask(() => { listener.error(error); finish(1006, 'connect failed'); });
      return { send() {}, close() {}, bufferedAmount: 0 };
    }
    // NB: `ws` (Node) hands 'nodebuffer' messages over as views of what it read, where 'arraybuffer' copies each
    // one out (~5 % of a 100-subscriber process at the live tail). Only asked of a constructor that is not the
    // platform's own: Chromium logs a console warning for every socket given the unknown value.
    if (WebSocketImpl !== (globalThis as { WebSocket?: unknown }).WebSocket) socket.binaryType = 'nodebuffer';
    if (socket.binaryType !== 'nodebuffer') socket.binaryType = 'arraybuffer';
    socket.onopen = () => { if (!closed) listener.open(); };
    socket.onmessage = (event) => {
      if (closed) return;
      const data = event.data;
      if (data instanceof ArrayBuffer) listener.message(new Uint8Array(data));
      else if (ArrayBuffer.isView(data)) listener.message(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      else listener.error(new TypeError(VERBOSE ? 'text frame received; the Runnel protocol is binary' : ''));
    };
    socket.onerror = (event) => { if (!closed) listener.error(event?.error ?? event); };
    socket.onclose = (event) => finish(event.code, event.reason);
    return {
      send(data) {
        if (!closed && socket.readyState === OPEN) socket.send(data);
      },
      close(code = 1000, reason = '') {
        try {
          socket.close(code, reason);
        } catch {
          socket.close(); // NB: browsers reject codes outside 1000/3000-4999; close anyway.
        }
        // NB: a local close is final for the caller at once. On a dead link (ping
        // timeout, network gone) the closing handshake never completes and
        // `onclose` comes late or never (Chromium holds it while offline), which
        // would keep the connection 'connected' and stop it from reconnecting.
        queueMicrotask(() => finish(code, reason));
      },
      get bufferedAmount() {
        return socket.bufferedAmount;
      },
    };
  };
}
