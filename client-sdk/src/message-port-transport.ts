/**
 * Transport over a `MessagePort` (or a `Worker`/`MessagePort`-like endpoint):
 * frames as structured-cloned Uint8Arrays, plus one control message for
 * close, since ports have no close event. Used to tunnel frames to a worker
 * or an in-process peer. The other side speaks the same two message shapes.
 */
import type { Transport, TransportFactory, TransportListener } from './transport.ts';
import { VERBOSE } from '#verbose';

export interface MessagePortLike {
  postMessage(message: unknown): void;
  // NB: `any` so DOM, worker and Node MessagePort types all fit.
  onmessage: ((event: any) => void) | null;
  onmessageerror?: ((event: any) => void) | null;
  close?(): void;
}

/** Control message asking the peer to close. */
export interface PortCloseMessage { runnelClose: { code: number; reason: string } }

function isCloseMessage(data: unknown): data is PortCloseMessage {
  return typeof data === 'object' && data !== null && 'runnelClose' in data;
}

/** Wires `port` as a Transport; `open` fires on the next microtask. */
export function portTransport(port: MessagePortLike, listener: TransportListener): Transport {
  let state: 'opening' | 'open' | 'closed' = 'opening';
  const finish = (code: number, reason: string): void => {
    if (state === 'closed') return;
    state = 'closed';
    port.onmessage = null;
    port.close?.();
    listener.close(code, reason);
  };
  port.onmessage = (event) => {
    const data = event.data;
    if (isCloseMessage(data)) finish(data.runnelClose.code, data.runnelClose.reason);
    else if (data instanceof Uint8Array) listener.message(data);
    else listener.error(new TypeError(VERBOSE ? 'unexpected message on the Runnel port' : ''));
  };
  port.onmessageerror = (event) => listener.error(event);
  queueMicrotask(() => {
    if (state !== 'opening') return;
    state = 'open';
    listener.open();
  });
  return {
    send(data) {
      if (state === 'open') port.postMessage(data);
    },
    close(code = 1000, reason = '') {
      if (state === 'closed') return;
      port.postMessage({ runnelClose: { code, reason } } satisfies PortCloseMessage);
      finish(code, reason);
    },
    bufferedAmount: 0,
  };
}

/**
 * A TransportFactory that asks `connect(url)` for a fresh port per connection.
 * @example const { port1, port2 } = new MessageChannel(); messagePortTransport(() => port1)
 */
export function messagePortTransport(connect: (url: string) => MessagePortLike): TransportFactory {
  return (url, listener) => portTransport(connect(url), listener);
}
