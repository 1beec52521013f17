/**
 * A TCP proxy in the test process between the browser and the broker, for
 * network faults Chromium's own emulation does not produce.
 *
 * NB (measured on Chromium 156 with playwright-core 1.65): `context.setOffline(true)`
 * (CDP `Network.emulateNetworkConditions { offline: true }`) makes new
 * connections fail with ERR_INTERNET_DISCONNECTED but does NOT close an
 * established WebSocket: its frames are held and delivered after
 * `setOffline(false)`, as if nothing happened. A real network loss kills
 * the TCP connection, so the offline test also calls `cut()` here, which
 * destroys every proxied connection (the page sees its WebSocket close
 * with 1006), while `setOffline` keeps the page from reconnecting.
 *
 * `holdWebSockets()` models a link that is up for plain HTTP but useless
 * for the page's WebSocket (a stalled socket, a proxy dropping upgrades):
 * open connections stop forwarding, new WebSocket handshakes are refused,
 * other HTTP requests (a page-exit beacon) still reach the broker.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** A request head longer than this is forwarded as not-a-WebSocket handshake. */
const MAX_REQUEST_HEAD_BYTES = 16 * 1024;

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private accepting = true;
  private webSocketsHeld = false;
  private readonly held = new Set<Socket>();
  /** New connections whose request head is still being read while WebSockets are held. */
  private readonly reading = new Set<Socket>();
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(private readonly server: Server, readonly port: number) {}

  /**
   * @example const proxy = await TcpProxy.start(broker.port); const wsUrl = `ws://127.0.0.1:${proxy.port}/v1/ws`;
   */
  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.pipe(client, targetPort, targetHost));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  /** Connections currently open through the proxy. */
  get openConnections(): number {
    return this.sockets.size / 2;
  }

  /** Destroys every open connection (both sides: a reset, not a clean close). */
  cut(): void {
    for (const socket of [...this.sockets, ...this.reading]) socket.destroy();
    this.sockets.clear();
    this.reading.clear();
  }

  /** While false, new connections are accepted and destroyed at once. */
  setAccepting(accepting: boolean): void {
    this.accepting = accepting;
  }

  /**
   * Freezes every open connection (no byte forwarded either way, nothing
   * closed: the page's WebSocket stays "open" and no ack arrives) and, until
   * `releaseWebSockets()`, refuses new connections that start a WebSocket
   * handshake; plain HTTP requests still pass.
   */
  holdWebSockets(): void {
    this.webSocketsHeld = true;
    for (const socket of this.sockets) {
      socket.unpipe();
      socket.pause();
      this.held.add(socket);
    }
  }

  /** Ends `holdWebSockets()`: held connections are cut (as a stalled link finally dies), new ones pass. */
  releaseWebSockets(): void {
    this.webSocketsHeld = false;
    for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  async close(): Promise<void> {
    this.cut();
    this.held.clear();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private pipe(client: Socket, targetPort: number, targetHost: string): void {
    if (!this.accepting) {
      client.destroy();
      return;
    }
    if (!this.webSocketsHeld) return this.forward(client, targetPort, targetHost, Buffer.alloc(0));
    // Read the request head first: a WebSocket upgrade is refused, anything else is forwarded.
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length < MAX_REQUEST_HEAD_BYTES) return;
      client.off('data', onData);
      client.pause();
      this.reading.delete(client);
      if (/^upgrade:\s*websocket/im.test(head.subarray(0, end < 0 ? head.length : end).toString('latin1'))) client.destroy();
      else this.forward(client, targetPort, targetHost, head);
    };
    this.reading.add(client);
    client.on('data', onData);
    client.on('error', () => client.destroy());
    client.on('close', () => this.reading.delete(client));
  }

  private forward(client: Socket, targetPort: number, targetHost: string, head: Buffer): void {
    this.accepted++;
    const upstream = connect(targetPort, targetHost);
    if (head.length > 0) upstream.write(head);
    for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
      this.sockets.add(socket);
      socket.on('error', () => other.destroy());
      socket.on('close', () => { this.sockets.delete(socket); this.held.delete(socket); other.destroy(); });
      socket.pipe(other);
    }
  }
}
