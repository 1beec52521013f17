/**
 * A TCP proxy for one directed link of the test cluster (broker A dialling
 * broker B's replication port, or broker A dialling etcd), controlled from
 * the test process. Modes:
 *
 * - `pass`: bytes flow both ways.
 * - `blackhole`: a network partition. Open connections stop forwarding in
 *   both directions and nothing is closed, so each side sees silence, not a
 *   reset (it must time out). New connections are accepted (the kernel
 *   completes the handshake; nothing can be done about that from user space)
 *   and held without an upstream. Bytes that arrive meanwhile stay in the
 *   kernel's socket buffers (the proxy stops reading): bounded memory, and
 *   TCP back-pressure reaches the sender as it would in a real partition.
 * - `reset`: open connections are destroyed with a TCP RST and new ones are
 *   reset at once: the far side learns at once (a refused link).
 *
 * `heal()` returns to `pass`: held connections resume and deliver what was
 * buffered (as TCP retransmission would after a partition heals), held
 * new connections get their upstream.
 *
 * NB: "directed" is who dials: a connection A opened to B carries both A's
 * requests and B's answers, and a partition of A from B blackholes A→B and B→A.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'blackhole' | 'reset';

export interface FaultProxyLimits {
  /** Connections open at once through one proxy (the rest are reset): a broker opens a handful per link. */
  maxConnections: number;
  /** How long a new upstream connect may take before the client side is reset. */
  connectTimeoutMs: number;
}

export const defaultFaultProxyLimits: FaultProxyLimits = { maxConnections: 256, connectTimeoutMs: 5_000 };

export function validateFaultProxyLimits(limits: FaultProxyLimits): FaultProxyLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`fault proxy limit ${name} must be a positive integer, got ${value}`);
  }
  return limits;
}

export interface FaultProxyOptions {
  /** For messages, e.g. "1->2" or "1->etcd". */
  name: string;
  targetPort: number;
  targetHost?: string;
  /** Port to listen on (default: a free one). */
  port?: number;
  limits?: Partial<FaultProxyLimits>;
}

/** One proxied connection: the dialler's socket and ours to the target (undefined while held before it has one). */
interface Link {
  client: Socket;
  upstream: Socket | undefined;
  flowing: boolean;
}

export class FaultProxy {
  readonly name: string;
  readonly targetHost: string;
  readonly targetPort: number;
  #mode: ProxyMode = 'pass';
  readonly #links = new Set<Link>();
  readonly #limits: FaultProxyLimits;
  /** Connections accepted, in total (held and reset ones included). */
  accepted = 0;
  /** Connections reset by the proxy (mode `reset`, or over `maxConnections`). */
  resets = 0;

  private constructor(private readonly server: Server, readonly port: number, options: FaultProxyOptions, limits: FaultProxyLimits) {
    this.name = options.name;
    this.targetHost = options.targetHost ?? '127.0.0.1';
    this.targetPort = options.targetPort;
    this.#limits = limits;
  }

  /**
   * @example
   * const link = await FaultProxy.start({ name: '1->2', targetPort: broker2.replicationPort });
   * link.blackhole(); await pause(3000); link.heal();
   */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const limits = validateFaultProxyLimits({ ...defaultFaultProxyLimits, ...options.limits });
    let proxy: FaultProxy | undefined;
    const server = createServer({ pauseOnConnect: true }, (client) => proxy!.handleConnection(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    proxy = new FaultProxy(server, (server.address() as { port: number }).port, options, limits);
    return proxy;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Connections open through the proxy now (held ones included). */
  get openConnections(): number {
    return this.#links.size;
  }

  /** Silence both ways: forward nothing, close nothing. */
  blackhole(): void {
    this.#mode = 'blackhole';
    for (const link of this.#links) this.hold(link);
  }

  /** Reset every open connection and every new one until `heal()`. */
  reset(): void {
    this.#mode = 'reset';
    for (const link of [...this.#links]) this.destroy(link, true);
  }

  /** Back to `pass`: held connections resume (buffered bytes delivered), held new ones are connected. */
  heal(): void {
    this.#mode = 'pass';
    for (const link of this.#links) {
      if (link.upstream) this.flow(link);
      else this.dial(link);
    }
  }

  async close(): Promise<void> {
    for (const link of [...this.#links]) this.destroy(link, false);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handleConnection(client: Socket): void {
    this.accepted++;
    client.on('error', () => {});
    if (this.#mode === 'reset' || this.#links.size >= this.#limits.maxConnections) {
      this.resets++;
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, upstream: undefined, flowing: false };
    this.#links.add(link);
    client.once('close', () => this.destroy(link, false));
    if (this.#mode === 'pass') this.dial(link);
    // blackhole: held (paused by pauseOnConnect) until heal()
  }

  private dial(link: Link): void {
    const upstream = connect({ port: this.targetPort, host: this.targetHost });
    link.upstream = upstream;
    upstream.on('error', () => {});
    upstream.setTimeout(this.#limits.connectTimeoutMs, () => {
      if (upstream.connecting) this.destroy(link, true);
    });
    upstream.once('connect', () => upstream.setTimeout(0));
    // The target refused or dropped us: pass it on as it is (a reset when it reset, a close when it closed).
    upstream.once('close', (hadError) => this.destroy(link, hadError));
    if (this.#mode === 'pass') this.flow(link);
    else upstream.pause();
  }

  private flow(link: Link): void {
    const { client, upstream } = link;
    if (!upstream || link.flowing) return;
    link.flowing = true;
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    upstream.resume();
  }

  private hold(link: Link): void {
    const { client, upstream } = link;
    if (!link.flowing) return;
    link.flowing = false;
    client.unpipe();
    upstream?.unpipe();
    client.pause();
    upstream?.pause();
  }

  private destroy(link: Link, reset: boolean): void {
    if (!this.#links.delete(link)) return;
    if (reset) this.resets++;
    for (const socket of [link.client, link.upstream]) {
      if (!socket || socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}
