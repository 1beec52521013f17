/**
 * One etcd client for a broker, shared by the cluster store, membership and
 * the controller: keys under the cluster prefix, a bounded time for every
 * request and one mapping of etcd failures to CLUSTER_UNAVAILABLE.
 *
 * Invariant: no etcd request made through `run()` outlives
 * `etcdRequestTimeoutMs` (a gRPC deadline on every unary call, and a timer
 * in case anything below waits without one): a paused or unreachable etcd
 * fails operations, it never hangs them. etcd3's default retry and circuit
 * breaker policies are replaced by no-ops: a retried compare-and-swap could
 * report a conflict for its own write, and an open breaker keeps failing for
 * seconds after etcd is back. Callers that can retry, do (watch resync,
 * membership, controller).
 */
import { Etcd3, type IOptions } from 'etcd3';
import { RunnelError } from '@runnel/client/codec';

export interface EtcdConnectionLimits {
  /** Bound on every etcd request. Too short fails requests on a slow etcd; too long delays failover decisions and error answers. */
  etcdRequestTimeoutMs: number;
  /** How often connectivity is probed when nothing else talks to etcd. */
  connectivityProbeIntervalMs: number;
  /** How long dialing one etcd endpoint may take (gRPC). */
  etcdDialTimeoutMs: number;
}

export const defaultEtcdConnectionLimits: EtcdConnectionLimits = {
  etcdRequestTimeoutMs: 5_000,
  connectivityProbeIntervalMs: 1_000,
  etcdDialTimeoutMs: 5_000,
};

export function validateEtcdConnectionLimits(limits: EtcdConnectionLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`etcd limit ${name} must be a positive integer, got ${value}`);
  }
}

export interface EtcdConnectionOptions {
  /** etcd client URLs (http://host:2379). */
  endpoints: string[];
  /** Key prefix, without a trailing slash (default /runnel). */
  prefix?: string;
  limits?: Partial<EtcdConnectionLimits>;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;
type Backoff = NonNullable<FaultHandling['watchBackoff']>;

const noDisposable = { dispose(): void {} };
/** Runs the call once: errors reach `run()`, which maps them (see the header). */
const noRetry: Policy = {
  onSuccess: () => noDisposable,
  onFailure: () => noDisposable,
  execute: async (fn: (context: { signal: AbortSignal }) => unknown) => fn({ signal: new AbortController().signal }),
} as unknown as Policy;

/** The watch stream's reconnect backoff (etcd3's default grows to 30 s; the store resyncs on its own schedule). */
function backoff(durationMs: number, maxMs: number): Backoff {
  return { duration: durationMs, next: () => backoff(Math.min(maxMs, durationMs * 2), maxMs) } as unknown as Backoff;
}

export class EtcdConnection {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly limits: EtcdConnectionLimits;
  private isConnected = true;
  private readonly listeners = new Set<(connected: boolean) => void>();
  private probeTimer: NodeJS.Timeout | undefined;
  private lastSuccessMs = 0;
  private isClosed = false;
  private readonly teardowns = new Set<() => void>();

  constructor(options: EtcdConnectionOptions) {
    this.limits = { ...defaultEtcdConnectionLimits, ...options.limits };
    validateEtcdConnectionLimits(this.limits);
    if (options.endpoints.length === 0) throw new RangeError('etcd endpoints: give at least one URL');
    this.prefix = (options.prefix ?? '/runnel').replace(/\/+$/, '');
    const timeoutMs = this.limits.etcdRequestTimeoutMs;
    this.client = new Etcd3({
      hosts: options.endpoints,
      dialTimeout: this.limits.etcdDialTimeoutMs,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      faultHandling: { host: () => noRetry, global: noRetry, watchBackoff: backoff(50, 1_000) },
    });
    this.probeTimer = setInterval(() => void this.probe(), this.limits.connectivityProbeIntervalMs);
    this.probeTimer.unref();
  }

  /** `<prefix>/<relative>`. */
  key(relative: string): string {
    return `${this.prefix}/${relative}`;
  }

  /** When an etcd request (or probe) last succeeded (Date.now ms; 0 = never): a blackholed etcd shows here before any request times out. */
  get lastContactMs(): number {
    return this.lastSuccessMs;
  }

  /** Whether the last etcd request (or probe) succeeded. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Calls `listener` on every change of `connected`; returns the unsubscribe. */
  onConnectivityChange(listener: (connected: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Runs one etcd request in bounded time. Any failure below (etcd down,
   * paused, deadline, closed client) becomes CLUSTER_UNAVAILABLE (retryable)
   * with the cause; a RunnelError thrown by `op` itself passes through.
   */
  async run<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.isClosed) throw new RunnelError('CLUSTER_UNAVAILABLE', `${what}: the etcd connection is closed`);
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.limits.etcdRequestTimeoutMs;
    const timeout = new Promise<never>((_, reject) => {
      // NB: a little slack over the gRPC deadline so gRPC's own error (more precise) usually wins.
      timer = setTimeout(() => reject(new Error(`no answer from etcd within ${timeoutMs} ms`)), timeoutMs + 250);
    });
    try {
      const result = await Promise.race([op(), timeout]);
      this.lastSuccessMs = Date.now();
      this.setConnected(true);
      return result;
    } catch (e) {
      if (e instanceof RunnelError) throw e;
      this.setConnected(false);
      throw new RunnelError('CLUSTER_UNAVAILABLE', `${what}: etcd unavailable (${(e as Error).message})`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reports a failure seen outside `run()` (a watch stream that broke). */
  markUnavailable(): void {
    this.setConnected(false);
  }

  /**
   * Registers work to stop when the connection closes (a lease's keep-alive,
   * a watch stream): gRPC's close leaves open streams running, so without
   * this a closed connection would keep leases alive. Returns the unregister.
   */
  onClose(teardown: () => void): () => void {
    this.teardowns.add(teardown);
    return () => this.teardowns.delete(teardown);
  }

  /**
   * Stops everything: registered teardowns run (leases stop their
   * keep-alive but are not revoked: they expire at their TTL, exactly as
   * after a crash), then the client closes. Graceful shutdown closes the
   * users (membership, controller, store) first; they revoke and cancel.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearInterval(this.probeTimer);
    this.listeners.clear();
    for (const teardown of [...this.teardowns]) teardown();
    this.teardowns.clear();
    this.client.close();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  private async probe(): Promise<void> {
    try {
      await this.run('connectivity probe', () => this.client.maintenance.status());
    } catch {
      // run() recorded the state change; the probe has no caller to tell.
    }
  }

  private setConnected(connected: boolean): void {
    if (this.isClosed || connected === this.isConnected) return;
    this.isConnected = connected;
    for (const listener of [...this.listeners]) listener(connected);
  }
}
