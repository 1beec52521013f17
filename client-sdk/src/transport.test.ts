import { WebSocket, WebSocketServer } from 'ws';
import { webSocketTransport, type WebSocketConstructor } from './transport.ts';
import { messagePortTransport } from './message-port-transport.ts';
import { transportContract, type TransportPeer } from './transport.contract.ts';

transportContract('WebSocket (ws)', async (): Promise<TransportPeer> => {
  const server = new WebSocketServer({ port: 0 });
  await new Promise((r) => server.once('listening', r));
  const sockets = new Set<WebSocket>();
  server.on('connection', (ws) => {
    sockets.add(ws);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const port = (server.address() as { port: number }).port;
  return {
    factory: webSocketTransport(WebSocket as unknown as WebSocketConstructor),
    url: `ws://127.0.0.1:${port}/v1/ws`,
    closeFromPeer: (code, reason) => { for (const s of sockets) s.close(code, reason); },
    stop: () => new Promise((r) => { for (const s of sockets) s.terminate(); server.close(() => r()); }),
  };
});

transportContract('MessagePort', async (): Promise<TransportPeer> => {
  const peers = new Set<MessagePort>();
  let failNext = false;
  return {
    factory: messagePortTransport(() => {
      const { port1, port2 } = new MessageChannel();
      if (failNext) {
        port2.close();
        queueMicrotask(() => port1.dispatchEvent(new MessageEvent('message', { data: { runnelClose: { code: 1006, reason: 'no peer' } } })));
        return port1;
      }
      peers.add(port2);
      port2.onmessage = (e) => {
        if (e.data instanceof Uint8Array) port2.postMessage(e.data);
        else port2.close();
      };
      return port1;
    }),
    url: 'port://1',
    closeFromPeer: (code, reason) => { for (const p of peers) { p.postMessage({ runnelClose: { code, reason } }); p.close(); } },
    stop: async () => { failNext = true; for (const p of peers) p.close(); },
  };
});
