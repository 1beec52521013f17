/**
 * Connection: one logical session to the cluster over a Transport that may
 * be replaced many times. Dials the bootstrap URLs in turn, negotiates the
 * protocol version with hello/helloOk (sending a fresh token from the
 * provider each time), correlates requests and answers by requestId with
 * timeouts, keeps the link alive with ping/pong, and reconnects with the
 * backoff of reconnect-policy.ts, honouring the broker's `retryAfterMs`.
 *
 * State machine (one checked `become()`):
 *   idle → connecting → connected → reconnecting → connecting → … ; any → closed
 * Invariant: requests are only written while `connected`; when the link
 * drops every pending request rejects with NOT_CONNECTED (the producer and
 * consumer resend/resubscribe on the next `connected`).
 */
import { decodeFrame, encodeFrame } from './codec/frame-codec.ts';
import { RunnelError, assert, errorNameOf } from './codec/error-codes.ts';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, type BrokerFrame, type ClientFrame, type HelloOkFrame } from './codec/protocol.ts';
import { Emitter } from './events.ts';
import { defaultConnectionTimeouts, defaultReconnect, type ConnectionTimeouts } from './limits.ts';
import { ReconnectPolicy, type RandomSource, type ReconnectOptions } from './reconnect-policy.ts';
import type { Transport, TransportFactory } from './transport.ts';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

const legal: Record<ConnectionState, ConnectionState[]> = {
  idle: ['connecting', 'closed'],
  connecting: ['connected', 'reconnecting', 'closed'],
  connected: ['reconnecting', 'closed'],
  reconnecting: ['connecting', 'closed'],
  closed: [],
};

/** A token, or a provider called before every hello (refresh it there). */
export type TokenProvider = string | (() => string | Promise<string>);

export interface ConnectionOptions {
  urls: string[];
  transport: TransportFactory;
  clientId: string;
  token?: TokenProvider;
  reconnect?: Partial<ReconnectOptions>;
  random?: RandomSource;
  /** Timeouts (limits.ts ConnectionTimeouts; createClient validates them); unset = the defaults there. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  pingIntervalMs?: number;
}

export interface ConnectionEvents {
  statechange: { state: ConnectionState; previous: ConnectionState };
  /** A session is established (also after every reconnect). */
  connected: HelloOkFrame;
  disconnected: { code: number; reason: string };
  error: RunnelError;
}

/** Frames that answer a request (they carry its requestId). */
type Answer = Extract<BrokerFrame, { requestId: number }>;
/** Client frames that expect an answer; requestId is assigned here. */
type RequestFrame = Extract<ClientFrame, { requestId: number }>;
type WithoutRequestId<F> = F extends unknown ? Omit<F, 'requestId'> : never;
type Unsolicited = (frame: BrokerFrame) => void;

interface Pending { resolve(frame: Answer): void; reject(error: RunnelError): void; timer: ReturnType<typeof setTimeout>; sync?: (frame: Answer) => void }

export class Connection extends Emitter<ConnectionEvents> {
  #current: ConnectionState = 'idle';
  #transport: Transport | null = null;
  #session: HelloOkFrame | null = null;
  readonly #pending = new Map<number, Pending>();
  #nextRequestId = 1;
  readonly #policy: ReconnectPolicy;
  #retryAfterMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastFrameAt = 0;
  #pingNonce = 0;
  readonly #listeners = new Set<Unsolicited>();

  readonly #timeouts: ConnectionTimeouts;

  constructor(private readonly options: ConnectionOptions) {
    super();
    this.#timeouts = { ...defaultConnectionTimeouts, ...options }; // NB: omit a timeout, never pass undefined (createClient passes validated ones)
    assert(options.urls.length > 0, 'createClient: `urls` needs at least one ws:// or wss:// URL');
    this.#policy = new ReconnectPolicy(options.urls.length, { ...defaultReconnect, ...options.reconnect }, options.random ?? Math.random);
  }

  get state(): ConnectionState {
    return this.#current;
  }

  /** Limits negotiated with the broker (null unless connected). */
  get helloOk(): HelloOkFrame | null {
    return this.#session;
  }

  /** The URL of the current (or next) broker. */
  get url(): string {
    return this.options.urls[this.#policy.currentUrlIndex];
  }

  /** Frames no request waits for (records, group assignments, errors with requestId 0). Returns the remover. */
  onFrame(listener: Unsolicited): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  open(): void {
    if (this.#current === 'idle') this.#dial();
  }

  /**
   * Sends a request and resolves with its answer (an error frame rejects with its code).
   * `onAnswer` runs synchronously when the answer arrives, before any later frame
   * is handled (a subscription must be active before its first records frame).
   */
  request<A extends Answer = Answer>(frame: WithoutRequestId<RequestFrame>, timeoutMs = this.#timeouts.requestTimeoutMs, onAnswer?: (answer: A) => void): Promise<A> {
    if (this.#current !== 'connected') return Promise.reject(new RunnelError('NOT_CONNECTED'));
    const requestId = this.#nextRequestId;
    this.#nextRequestId = this.#nextRequestId >= 0x7fffffff ? 1 : this.#nextRequestId + 1;
    return new Promise<A>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new RunnelError('REQUEST_TIMED_OUT', `${frame.type} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(requestId, { resolve: resolve as (f: Answer) => void, reject, timer, sync: onAnswer as ((f: Answer) => void) | undefined });
      this.#write({ ...frame, requestId } as ClientFrame);
    });
  }

  /** Fire-and-forget frame (credit, heartbeat, unsubscribe). False when not connected. */
  send(frame: ClientFrame): boolean {
    if (this.#current !== 'connected') return false;
    this.#write(frame);
    return true;
  }

  /** Bytes queued on the transport (backpressure). */
  get bufferedAmount(): number {
    return this.#transport?.bufferedAmount ?? 0;
  }

  close(): void {
    if (this.#current === 'closed') return;
    clearTimeout(this.#timer);
    this.#become('closed');
    const t = this.#transport;
    this.#transport = null;
    t?.close(1000, 'client closed');
    this.#failPending('client closed');
  }

  #write(frame: ClientFrame): void {
    this.#transport!.send(encodeFrame(frame));
  }

  #become(next: ConnectionState): void {
    const previous = this.#current;
    assert(legal[previous].includes(next), `connection: illegal transition ${previous} → ${next}`);
    this.#current = next;
    this.emit('statechange', { state: next, previous });
  }

  #dial(): void {
    this.#become('connecting');
    const url = this.url;
    let opened = false;
    const transport: Transport = this.options.transport(url, {
      open: () => { opened = true; void this.#sayHello(transport); },
      message: (data) => { if (this.#transport === transport) this.#handleBytes(data); },
      error: (error) => { if (this.#transport === transport && opened) this.emit('error', new RunnelError('NOT_CONNECTED', 'transport error', { cause: error })); },
      close: (code, reason) => { if (this.#transport === transport) this.#lost(code, reason); },
    });
    this.#transport = transport;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#transport === transport && this.#current === 'connecting') transport.close(4000, 'connect timeout');
    }, this.#timeouts.connectTimeoutMs);
  }

  async #sayHello(transport: Transport): Promise<void> {
    let token = '';
    try {
      const provider = this.options.token;
      token = typeof provider === 'function' ? await provider() : provider ?? '';
    } catch (error) {
      this.emit('error', new RunnelError('TOPIC_AUTHORIZATION_FAILED', 'token provider failed', { cause: error }));
      transport.close(4001, 'no token');
      return;
    }
    if (this.#transport !== transport) return;
    transport.send(encodeFrame({ type: 'hello', minVersion: MIN_PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: this.options.clientId, token }));
  }

  #lost(code: number, reason: string): void {
    this.#transport = null;
    this.#session = null;
    clearTimeout(this.#timer);
    this.#failPending(`connection lost (${code} ${reason})`);
    if (this.#current === 'closed') return;
    if (this.#current === 'connected') this.emit('disconnected', { code, reason });
    this.#become('reconnecting');
    const step = this.#policy.failed(this.#retryAfterMs);
    this.#retryAfterMs = 0;
    this.#timer = setTimeout(() => { if (this.#current === 'reconnecting') this.#dial(); }, step.delayMs);
  }

  #failPending(why: string): void {
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new RunnelError('NOT_CONNECTED', why));
    }
    this.#pending.clear();
  }

  #handleBytes(data: Uint8Array): void {
    this.#lastFrameAt = Date.now();
    const decoded = decodeFrame(data);
    if (!decoded.ok) {
      this.emit('error', new RunnelError(decoded.code, decoded.message));
      this.#transport?.close(4002, 'undecodable frame');
      return;
    }
    const frame = decoded.value as BrokerFrame;
    switch (frame.type) {
      case 'helloOk': return this.#handleHelloOk(frame);
      case 'ping': this.send({ type: 'pong', nonce: frame.nonce }); return;
      case 'pong': return;
      case 'error': return this.#handleError(frame);
      default:
        // Unsolicited: records, rebalance assignments, `subscribed` with requestId 0 (a subscription the broker ended).
        if (frame.type === 'records' || !this.#settle(frame)) for (const l of this.#listeners) l(frame);
    }
  }

  /** Resolves the request `frame` answers; false if none waits for it. */
  #settle(frame: Answer): boolean {
    const p = this.#pending.get(frame.requestId);
    if (p === undefined) return false;
    this.#pending.delete(frame.requestId);
    clearTimeout(p.timer);
    p.sync?.(frame);
    p.resolve(frame);
    return true;
  }

  #handleHelloOk(frame: HelloOkFrame): void {
    if (this.#current !== 'connecting') return;
    clearTimeout(this.#timer);
    this.#session = frame;
    this.#policy.connected();
    this.#become('connected');
    this.#keepAlive();
    this.emit('connected', frame);
  }

  #handleError(frame: Extract<BrokerFrame, { type: 'error' }>): void {
    const error = new RunnelError(errorNameOf(frame.errorCode), frame.message || undefined, { details: { retryAfterMs: frame.retryAfterMs } });
    if (frame.retryAfterMs > 0) this.#retryAfterMs = frame.retryAfterMs;
    const p = this.#pending.get(frame.requestId);
    if (frame.requestId !== 0 && p) {
      this.#pending.delete(frame.requestId);
      clearTimeout(p.timer);
      p.reject(error);
      return;
    }
    this.emit('error', error);
    if (error.errorName === 'UNSUPPORTED_VERSION') this.close();
  }

  #keepAlive(): void {
    const interval = this.#timeouts.pingIntervalMs;
    const transport = this.#transport;
    this.#lastFrameAt = Date.now();
    const tick = (): void => {
      if (this.#transport !== transport || this.#current !== 'connected') return;
      const silentMs = Date.now() - this.#lastFrameAt;
      if (silentMs >= 2 * interval) return transport!.close(4003, 'ping timeout');
      if (silentMs >= interval) this.send({ type: 'ping', nonce: ++this.#pingNonce });
      this.#timer = setTimeout(tick, interval / 2);
    };
    this.#timer = setTimeout(tick, interval / 2);
  }
}
