/**
 * Connection: one logical session to the cluster over a Transport that may
 * be replaced many times. Dials the URLs in turn (any broker serves every
 * topic: a lost session moves to the next URL at once), negotiates the
 * protocol version with hello/helloOk (sending a fresh token from the
 * provider each time), correlates requests and answers by requestId with
 * timeouts, keeps the link alive with ping/pong, and reconnects with the
 * backoff of reconnect-policy.ts, honouring the broker's `retryAfterMs`.
 * A token that expires (helloOk/authenticateOk `tokenExpiresAtMs` > 0) is
 * refreshed over the open socket before it does (`authenticate`, at
 * TOKEN_REFRESH_MARGIN_MS): no reconnect. A connection the broker closed
 * TOKEN_EXPIRED (4909) or SASL_AUTHENTICATION_FAILED (4058) reconnects with
 * the provider's next token; the token that expired is never sent again.
 * Page lifecycle (page-lifecycle.ts): `online` dials at once (skipping the backoff); `pagehide`/`freeze`
 * close the link cleanly (1000) and stop dialling: pending requests reject NOT_CONNECTED as on any loss, so
 * unacked records stay in the outbox and are resent, and consumers resubscribe from their stored offsets on
 * the next session; `pageshow`/`resume` dial again. Suspended, the state is 'reconnecting' with no dial due.
 *
 * State machine (one checked `become()`):
 *   idle → connecting → connected → reconnecting → connecting → … ; any → closed
 * Invariant: requests are only written while `connected`; when the link
 * drops every pending request rejects with NOT_CONNECTED (the producer and
 * consumer resend/resubscribe on the next `connected`).
 */
import { decodeFrameWith, encodeFrameWith, peekFrameKind, type SomeFrameSchemas } from './codec/frame-codec.ts';
import { coreFrames } from './codec/frame-schema.ts';
import { RunnelError, assert, errorNameOf } from './codec/error-codes.ts';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, type AuthenticateOkFrame, type BrokerFrame, type ClientFrame, type HelloOkFrame } from './codec/protocol.ts';
import { Emitter } from './events.ts';
import { MAX_TIMER_MS, TOKEN_REFRESH_MARGIN_MS, defaultConnectionTimeouts, defaultReconnect, type ConnectionTimeouts } from './limits.ts';
import { defaultLifecycleScope, watchPageLifecycle, type LifecycleScope } from './page-lifecycle.ts';
import { ReconnectPolicy, type RandomSource, type ReconnectOptions } from './reconnect-policy.ts';
import type { Transport, TransportFactory } from './transport.ts';
import { VERBOSE } from '#verbose';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** With requests waiting, a broker silent this long is pinged, and dropped at twice it (see #keepAlive). */
const BUSY_SILENCE_MS = 1_000;

const legal: Record<ConnectionState, ConnectionState[]> = {
  idle: ['connecting', 'closed'],
  connecting: ['connected', 'reconnecting', 'closed'],
  connected: ['reconnecting', 'closed'],
  reconnecting: ['connecting', 'closed'],
  closed: [],
};

/** A token, or a provider called before every hello and before the current token expires (return a fresh one). */
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
  /** Where page lifecycle events come from (default: the global scope when it has events); `false`: none. */
  lifecycle?: LifecycleScope | false;
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
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** The token the session runs on (sent in hello or accepted by authenticateOk). */
  #token = '';
  /** The token the broker closed TOKEN_EXPIRED: never sent again (a static token that expired). */
  #expiredToken: string | undefined;

  readonly #timeouts: ConnectionTimeouts;
  /** Closed for the page lifecycle (pagehide/freeze): no dial until pageshow/resume. */
  #suspended = false;
  #unwatch: (() => void) | undefined;
  /** The frames this connection encodes and decodes: the core ones, plus what its parts add (`speak`). */
  readonly #schemas: SomeFrameSchemas = { ...coreFrames };

  readonly #options: ConnectionOptions;

  constructor(options: ConnectionOptions) {
    super();
    this.#options = options;
    this.#timeouts = { ...defaultConnectionTimeouts, ...options }; // NB: omit a timeout, never pass undefined (createClient passes validated ones)
    assert(options.urls.length > 0, VERBOSE ? 'createClient: `urls` needs at least one ws:// or wss:// URL' : '');
    this.#policy = new ReconnectPolicy(options.urls.length, { ...defaultReconnect, ...options.reconnect }, options.random ?? Math.random);
    const scope = options.lifecycle === undefined ? defaultLifecycleScope() : options.lifecycle;
    if (scope) this.#unwatch = watchPageLifecycle(scope, { online: () => this.#hurry(), suspend: () => this.#suspend(), resume: () => this.#resume() });
  }

  /** Suspended by the page lifecycle (closed on pagehide/freeze until pageshow/resume). */
  get suspended(): boolean {
    return this.#suspended;
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
    return this.#options.urls[this.#policy.currentUrlIndex];
  }

  /** Frames no request waits for (records, group assignments, errors with requestId 0). Returns the remover. */
  onFrame(listener: Unsolicited): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Adds the frames of a part (the producer's, a consumer's, a group's: frame-schema.ts), so a bundle carries
   * only the frame tables of the parts it uses. A broker frame of a part this client lacks is ignored (no one
   * here waits for it).
   */
  speak(frames: SomeFrameSchemas): void {
    Object.assign(this.#schemas, frames);
  }

  open(): void {
    if (this.#current === 'idle' && !this.#suspended) this.#dial();
  }

  /** Dials now if waiting out a backoff (the network is back, the page resumed); retries fast afterwards. */
  #hurry(): void {
    if (this.#suspended || this.#current !== 'reconnecting') return;
    clearTimeout(this.#timer);
    this.#policy.hurry(Date.now());
    this.#dial();
  }

  #suspend(): void {
    if (this.#suspended || this.#current === 'closed') return;
    this.#suspended = true;
    clearTimeout(this.#timer);
    const transport = this.#transport;
    if (transport === null) return;
    // NB: browsers refuse 1001 from script: 1000 with a reason. Lost at once, not when the close event comes:
    // what runs next in this pagehide (a beacon flush, the app) already sees 'reconnecting'.
    transport.close(1000, 'page hidden');
    this.#lost(1000, 'page hidden');
  }

  #resume(): void {
    if (!this.#suspended) return;
    this.#suspended = false;
    if (this.#current === 'idle') this.#dial();
    else this.#hurry();
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
        reject(new RunnelError('REQUEST_TIMED_OUT', VERBOSE ? `${frame.type} got no answer within ${timeoutMs} ms` : ''));
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
    clearTimeout(this.#refreshTimer);
    this.#unwatch?.();
    this.#become('closed');
    const t = this.#transport;
    this.#transport = null;
    t?.close(1000, 'client closed');
    this.#failPending('client closed');
  }

  #write(frame: ClientFrame): void {
    // NB: `#lost` leaves 'connected' before it tells anyone, so a transport is always set here; `?.` only keeps a bug from throwing into a caller's listener.
    this.#transport?.send(encodeFrameWith(this.#schemas, frame));
  }

  #become(next: ConnectionState): void {
    const previous = this.#current;
    assert(legal[previous].includes(next), VERBOSE ? `connection: illegal transition ${previous} → ${next}` : '');
    this.#current = next;
    this.emit('statechange', { state: next, previous });
  }

  #dial(): void {
    this.#become('connecting');
    const url = this.url;
    let opened = false;
    const transport: Transport = this.#options.transport(url, {
      open: () => { opened = true; void this.#sayHello(transport); },
      message: (data) => { if (this.#transport === transport) this.#handleBytes(data); },
      error: (error) => { if (this.#transport === transport && opened) this.emit('error', new RunnelError('NOT_CONNECTED', VERBOSE ? 'transport error' : '', { cause: error })); },
      close: (code, reason) => { if (this.#transport === transport) this.#lost(code, reason); },
    });
    this.#transport = transport;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#transport === transport && this.#current === 'connecting') transport.close(4000, 'connect timeout');
    }, this.#timeouts.connectTimeoutMs);
  }

  /** The provider's current token ('' without one); a provider that throws rejects. */
  async #newToken(): Promise<string> {
    const provider = this.#options.token;
    return (typeof provider === 'function' ? await provider() : provider) ?? '';
  }

  async #sayHello(transport: Transport): Promise<void> {
    let token: string;
    try {
      token = await this.#newToken();
      // NB: the broker would take the token that expired within its clock tolerance and close it again at once.
      if (token && token === this.#expiredToken) throw new RunnelError('TOKEN_EXPIRED');
    } catch (error) {
      this.emit('error', error instanceof RunnelError ? error : new RunnelError('SASL_AUTHENTICATION_FAILED', VERBOSE ? 'token provider failed' : '', { cause: error }));
      transport.close(4001, 'no token');
      return;
    }
    if (this.#transport !== transport) return;
    this.#token = token;
    transport.send(encodeFrameWith(this.#schemas, { type: 'hello', minVersion: MIN_PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: this.#options.clientId, token }));
  }

  #lost(code: number, reason: string): void {
    this.#transport = null;
    this.#session = null;
    clearTimeout(this.#timer);
    clearTimeout(this.#refreshTimer);
    if (code === 4909) this.#expiredToken = this.#token; // TOKEN_EXPIRED's close code (4900 + 1009 − 1000, docs/protocol.md)
    this.#failPending(`connection lost (${code} ${reason})`);
    if (this.#current === 'closed') return;
    const wasConnected = this.#current === 'connected';
    if (this.#suspended) {
      // A close of our own: the broker is fine, so no backoff step and the same URL when the page is back.
      if (this.#current !== 'reconnecting') this.#become('reconnecting');
      if (wasConnected) this.emit('disconnected', { code, reason });
      return;
    }
    // Invariant: 'reconnecting' before 'disconnected' listeners run: what they send (a group member
    // unsubscribing its partitions) is refused by `send`/`request`, never written to the lost transport.
    this.#become('reconnecting');
    // A lost session moves to the next URL at once; a failed dial backs off (reconnect-policy.ts).
    const step = wasConnected ? this.#policy.lost(Date.now(), this.#retryAfterMs) : this.#policy.failed(this.#retryAfterMs, Date.now());
    this.#retryAfterMs = 0;
    this.#timer = setTimeout(() => { if (this.#current === 'reconnecting') this.#dial(); }, step.delayMs);
    if (wasConnected) this.emit('disconnected', { code, reason });
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
    const kind = peekFrameKind(data);
    if (kind !== null && !(kind in this.#schemas)) return; // a frame of a part this client does not have (see `speak`)
    const decoded = decodeFrameWith(this.#schemas, data);
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
    this.#policy.connected(Date.now());
    this.#become('connected');
    this.#keepAlive();
    this.#scheduleRefresh(frame.tokenExpiresAtMs);
    this.emit('connected', frame);
  }

  /**
   * Refreshes the token before `expiresAtMs` (−1: never expires): TOKEN_REFRESH_MARGIN_MS or 10 % of the
   * remaining lifetime before it, at the latest halfway through what is left; nothing once it is past.
   * The provider's next token goes out in `authenticate` (one equal to the current token is asked for
   * again later). A provider that throws or a refresh that fails is reported (SASL_AUTHENTICATION_FAILED)
   * and the connection left to the broker, which closes it at expiry (4909) or at once when it refuses
   * the token (4058); it then reconnects with the provider's next token.
   */
  #scheduleRefresh(expiresAtMs: number): void {
    const left = expiresAtMs - Date.now(), transport = this.#transport;
    clearTimeout(this.#refreshTimer);
    if (left > 0) this.#refreshTimer = setTimeout(() => {
      this.#newToken().then((token) => {
        if (this.#transport !== transport) return;
        if (token === this.#token) return this.#scheduleRefresh(expiresAtMs); // not renewed yet
        return this.request<AuthenticateOkFrame>({ type: 'authenticate', token }).then((ok) => {
          if (ok.errorCode) throw new RunnelError(errorNameOf(ok.errorCode));
          this.#token = token;
          this.#scheduleRefresh(ok.tokenExpiresAtMs);
        });
      }).catch((error) => {
        if (this.#transport === transport) this.emit('error', new RunnelError('SASL_AUTHENTICATION_FAILED', VERBOSE ? 'token refresh failed' : '', { cause: error }));
      });
    }, Math.min(Math.max(left - Math.max(left / 10, TOKEN_REFRESH_MARGIN_MS), left / 2), MAX_TIMER_MS));
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
    const transport = this.#transport;
    const idle = this.#timeouts.pingIntervalMs;
    const busy = Math.min(BUSY_SILENCE_MS, idle);
    this.#lastFrameAt = Date.now();
    const tick = (): void => {
      if (this.#transport !== transport || this.#current !== 'connected') return;
      // While requests wait, a silent broker is suspect sooner (a paused or frozen one holds them all): ping after
      // BUSY_SILENCE_MS, drop at twice it. A live broker answers pings even while a produce waits for replication.
      const interval = this.#pending.size > 0 ? busy : idle;
      const silentMs = Date.now() - this.#lastFrameAt;
      if (silentMs >= 2 * interval) return transport!.close(4003, 'ping timeout');
      if (silentMs >= interval) this.send({ type: 'ping', nonce: ++this.#pingNonce });
      this.#timer = setTimeout(tick, busy / 2);
    };
    this.#timer = setTimeout(tick, busy / 2);
  }
}
