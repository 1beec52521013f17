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
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private accepting = true;
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
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** While false, new connections are accepted and destroyed at once. */
  setAccepting(accepting: boolean): void {
    this.accepting = accepting;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private pipe(client: Socket, targetPort: number, targetHost: string): void {
    if (!this.accepting) {
      client.destroy();
      return;
    }
    this.accepted++;
    const upstream = connect(targetPort, targetHost);
    for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
      this.sockets.add(socket);
      socket.on('error', () => other.destroy());
      socket.on('close', () => { this.sockets.delete(socket); other.destroy(); });
      socket.pipe(other);
    }
  }
}
