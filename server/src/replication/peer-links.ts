/**
 * The dialing side of the internal protocol: one TCP connection per peer
 * broker (its address from the `PeerDirectory` at each connect), opened on
 * the first request, handshaken with this broker's id (both sides prove they
 * hold the cluster's link key: link-auth.ts), kept up (reconnects
 * with doubling backoff after a close or a failed connect) until `release` or
 * `close`. Requests are correlated by id, each with its own timeout.
 *
 * `onPeerDown` is the controller's fast failure detector: 'closed' when an
 * open connection ends, 'refused' when a connect fails (ECONNREFUSED and other
 * connect errors, a wrong broker answering, a listener that cannot prove the
 * link key), 'timeout' when a connect or its
 * handshake takes longer than connectTimeoutMs.
 *
 * Invariants: every request settles exactly once (answer, ERROR as its
 * RunnelError, REQUEST_TIMED_OUT, NOT_CONNECTED when its connection is lost or
 * cannot be made, ABORTED, or SHUTTING_DOWN at close) and releases its timer
 * and abort listener; at most maxInflightRequestsPerConnection requests per
 * peer are unanswered or waiting for the connection (more: LIMIT_EXCEEDED).
 */
import { connect, type Socket } from 'node:net';
import { RunnelError } from '@runnel/client/codec';
import type { PeerDirectory } from '../cluster/cluster-state.ts';
import { FrameSocket } from './frame-socket.ts';
import { isValidLinkProof, linkNonce, linkProof, type LinkTranscript } from './link-auth.ts';
import { resolveReplicationLimits, type ReplicationLimits } from './limits.ts';
import { EXTENSION_TYPE_MAX, EXTENSION_TYPE_MIN, REPLICATION_PROTOCOL_VERSION, type FetchRequest, type FetchResponse, type ReplicationFrame } from './protocol.ts';

export type PeerDownReason = 'closed' | 'refused' | 'timeout';

export interface PeerLinksOptions {
  /** This broker's id, named in every handshake. */
  brokerId: number;
  directory: PeerDirectory;
  /** The cluster's link key (link-auth.ts `deriveLinkKey`): a peer that cannot prove it holds it is refused. */
  linkKey: Uint8Array;
  limits?: Partial<ReplicationLimits>;
}

/** A request frame without its correlationId (assigned when sent). */
type OutgoingFrame = ReplicationFrame extends infer F ? (F extends { correlationId: number } ? Omit<F, 'correlationId'> : never) : never;

interface PendingRequest {
  frame: OutgoingFrame;
  /** The answer kind that settles it (plus 'error'); an extension answer must name the same type. */
  expect: ReplicationFrame['kind'];
  /** Assigned when written; -1 while it waits for the connection. */
  correlationId: number;
  resolve(frame: ReplicationFrame): void;
  reject(error: RunnelError): void;
}

type LinkState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

/** One peer: its connection, the requests waiting for it and those in flight on it. */
class PeerLink {
  state: LinkState = 'idle';
  socket: FrameSocket | null = null;
  /** Requests sent and not yet answered, by correlationId. */
  readonly inflight = new Map<number, PendingRequest>();
  /** Requests waiting for the connection, in order. */
  readonly waiting: PendingRequest[] = [];
  nextCorrelationId = 1;
  failures = 0;
  timer: ReturnType<typeof setTimeout> | null = null;
  /** The last dial was refused by the peer's host (ECONNREFUSED: nothing listens on its port) and none opened since. */
  refused = false;

  constructor(readonly brokerId: number) {}

  get load(): number {
    return this.inflight.size + this.waiting.length;
  }
}

export class PeerLinks {
  readonly brokerId: number;
  readonly limits: ReplicationLimits;
  readonly #directory: PeerDirectory;
  readonly #links = new Map<number, PeerLink>();
  readonly #downListeners = new Set<(brokerId: number, reason: PeerDownReason) => void>();
  #isClosed = false;

  readonly #linkKey: Uint8Array;
  constructor(options: PeerLinksOptions) {
    this.brokerId = options.brokerId;
    this.#directory = options.directory;
    this.#linkKey = options.linkKey;
    this.limits = resolveReplicationLimits(options.limits);
  }

  /**
   * Sends an extension request of `type` and resolves with its answer's body.
   * Rejects with the peer's RunnelError (ERROR answer), REQUEST_TIMED_OUT,
   * NOT_CONNECTED, LIMIT_EXCEEDED, ABORTED or SHUTTING_DOWN.
   * @example const answer = decodeProduceAnswer(await links.request(leaderId, ForwardType.produce, encodeProduceForward(p), 5000));
   */
  async request(brokerId: number, type: number, body: Uint8Array, timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (!(Number.isInteger(type) && type >= EXTENSION_TYPE_MIN && type <= EXTENSION_TYPE_MAX)) throw new RangeError(`extension type ${type} outside ${EXTENSION_TYPE_MIN}..${EXTENSION_TYPE_MAX}`);
    const answer = await this.#send(brokerId, { kind: 'extension', requestType: type, body }, 'extensionResponse', timeoutMs, signal);
    return (answer as Extract<ReplicationFrame, { kind: 'extensionResponse' }>).body;
  }

  /** One follower fetch to the leader `brokerId`. */
  async fetch(brokerId: number, request: FetchRequest, timeoutMs: number, signal?: AbortSignal): Promise<FetchResponse> {
    const answer = await this.#send(brokerId, { kind: 'fetch', request }, 'fetchResponse', timeoutMs, signal);
    return (answer as Extract<ReplicationFrame, { kind: 'fetchResponse' }>).response;
  }

  /** One heartbeat; resolves with the round trip. */
  async heartbeat(brokerId: number, timeoutMs: number, signal?: AbortSignal): Promise<{ roundTripMs: number }> {
    const sentAtMs = performance.now();
    await this.#send(brokerId, { kind: 'heartbeat', brokerId: this.brokerId, sentAtMs }, 'heartbeatOk', timeoutMs, signal);
    return { roundTripMs: performance.now() - sentAtMs };
  }

  /** Whether the connection to `brokerId` is open and handshaken now. */
  isConnected(brokerId: number): boolean {
    return this.#links.get(brokerId)?.state === 'open';
  }

  /**
   * `listener(brokerId, reason)` for every lost connection and failed connect (see the header). Returns the unsubscribe.
   * @example links.onPeerDown((id, reason) => controller.suspect(id, reason));
   */
  onPeerDown(listener: (brokerId: number, reason: PeerDownReason) => void): () => void {
    this.#downListeners.add(listener);
    return () => this.#downListeners.delete(listener);
  }

  /** Stops keeping a link to `brokerId` up: closes it, fails its requests NOT_CONNECTED. A later request opens it again. */
  release(brokerId: number): void {
    const link = this.#links.get(brokerId);
    if (!link) return;
    this.#links.delete(brokerId);
    this.#shutLink(link, new RunnelError('NOT_CONNECTED', `the link to broker ${brokerId} was released`));
  }

  /** Closes every link; requests fail SHUTTING_DOWN. */
  close(): void {
    this.#isClosed = true;
    for (const link of this.#links.values()) this.#shutLink(link, new RunnelError('SHUTTING_DOWN', 'peer links closed'));
    this.#links.clear();
  }

  #shutLink(link: PeerLink, error: RunnelError): void {
    link.state = 'closed';
    if (link.timer) clearTimeout(link.timer);
    link.timer = null;
    const socket = link.socket;
    link.socket = null;
    socket?.close();
    this.#failAll(link, error);
  }

  #send(brokerId: number, frame: OutgoingFrame, expect: ReplicationFrame['kind'], timeoutMs: number, signal?: AbortSignal): Promise<ReplicationFrame> {
    if (this.#isClosed) return Promise.reject(new RunnelError('SHUTTING_DOWN', 'peer links closed'));
    if (signal?.aborted) return Promise.reject(new RunnelError('ABORTED', 'aborted before it was sent'));
    let link = this.#links.get(brokerId);
    if (!link) {
      link = new PeerLink(brokerId);
      this.#links.set(brokerId, link);
    }
    if (link.load >= this.limits.maxInflightRequestsPerConnection) {
      return Promise.reject(new RunnelError('LIMIT_EXCEEDED', `${link.load} requests to broker ${brokerId} are unanswered (maxInflightRequestsPerConnection)`));
    }
    const owner = link;
    return new Promise<ReplicationFrame>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (pending.correlationId >= 0) owner.inflight.delete(pending.correlationId);
        const i = owner.waiting.indexOf(pending);
        if (i >= 0) owner.waiting.splice(i, 1);
      };
      const pending: PendingRequest = {
        frame, expect, correlationId: -1,
        resolve: (f) => { settle(); resolve(f); },
        reject: (e) => { settle(); reject(e); },
      };
      const onAbort = () => pending.reject(new RunnelError('ABORTED', `request to broker ${brokerId} aborted`));
      const timer = setTimeout(() => pending.reject(new RunnelError('REQUEST_TIMED_OUT', `broker ${brokerId} did not answer ${frame.kind} within ${timeoutMs} ms`)), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (owner.state === 'open') this.#write(owner, pending);
      else {
        owner.waiting.push(pending);
        if (owner.state === 'idle' || owner.state === 'closed') this.#connect(owner);
      }
    });
  }

  #write(link: PeerLink, pending: PendingRequest): void {
    const id = link.nextCorrelationId;
    link.nextCorrelationId = id === 0xffff_ffff ? 1 : id + 1;
    pending.correlationId = id;
    link.inflight.set(id, pending);
    link.socket!.send({ ...pending.frame, correlationId: id } as ReplicationFrame);
  }

  #connect(link: PeerLink): void {
    if (this.#isClosed || this.#links.get(link.brokerId) !== link) return;
    const address = this.#directory.replicationAddress(link.brokerId);
    if (!address) {
      this.#connectFailed(link, null, `broker ${link.brokerId} has no known replication address`);
      return;
    }
    link.state = 'connecting';
    let isDone = false;
    const raw: Socket = connect({ host: address.host, port: address.port });
    const dialerNonce = linkNonce();
    const where = `broker ${link.brokerId} at ${address.host}:${address.port}`;
    const timer = setTimeout(() => fail('timeout', `no handshake from ${where} within ${this.limits.connectTimeoutMs} ms`), this.limits.connectTimeoutMs);
    const fail = (reason: PeerDownReason, message: string) => {
      if (isDone) return;
      isDone = true;
      clearTimeout(timer);
      socket.close();
      this.#connectFailed(link, reason, message);
    };
    const socket = new FrameSocket(raw, this.limits.maxFrameBytes, {
      frame: (f) => {
        if (!isDone) {
          if (f.kind === 'handshakeOk' && f.brokerId === link.brokerId) {
            const transcript: LinkTranscript = { dialerId: this.brokerId, listenerId: link.brokerId, dialerNonce, listenerNonce: f.nonce };
            if (!isValidLinkProof(this.#linkKey, 'listener', transcript, f.mac)) {
              fail('refused', `${where} did not prove the cluster's link key (another cluster, or not a broker)`);
              return;
            }
            isDone = true;
            clearTimeout(timer);
            // NB: the proof goes out before any request (#opened flushes the waiting ones after it, on the same socket).
            socket.send({ kind: 'handshakeProof', correlationId: 0, mac: linkProof(this.#linkKey, 'dialer', transcript) });
            this.#opened(link, socket);
          } else if (f.kind === 'handshakeOk') fail('refused', `${where} answered as broker ${f.brokerId}`);
          else fail('refused', `${where} answered the handshake with ${f.kind}${f.kind === 'error' ? ` ${f.code}: ${f.message}` : ''}`);
          return;
        }
        this.#onAnswer(link, socket, f);
      },
      close: (error) => {
        if (!isDone) {
          link.refused = (error as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED';
          fail('refused', `cannot connect to ${where}: ${error?.message ?? 'closed during the handshake'}`);
          return;
        }
        if (link.socket === socket) this.#lost(link, error);
      },
    });
    raw.once('connect', () => socket.send({ kind: 'handshake', correlationId: 0, version: REPLICATION_PROTOCOL_VERSION, brokerId: this.brokerId, nonce: dialerNonce }));
  }

  #opened(link: PeerLink, socket: FrameSocket): void {
    if (this.#links.get(link.brokerId) !== link || this.#isClosed) {
      socket.close();
      return;
    }
    link.state = 'open';
    link.socket = socket;
    link.failures = 0;
    link.refused = false;
    for (const pending of link.waiting.splice(0)) this.#write(link, pending);
  }

  #connectFailed(link: PeerLink, reason: PeerDownReason | null, message: string): void {
    if (this.#links.get(link.brokerId) !== link) return;
    this.#failAll(link, new RunnelError('NOT_CONNECTED', message));
    if (reason) this.#emitDown(link.brokerId, reason);
    this.#scheduleReconnect(link);
  }

  #lost(link: PeerLink, error: Error | null): void {
    link.socket = null;
    if (this.#links.get(link.brokerId) !== link) return;
    this.#failAll(link, new RunnelError('NOT_CONNECTED', `the connection to broker ${link.brokerId} closed${error ? `: ${error.message}` : ''}`));
    this.#emitDown(link.brokerId, 'closed');
    this.#scheduleReconnect(link);
  }

  /**
   * Whether the last dial to `brokerId` was refused by its host (ECONNREFUSED) with no connection opened since:
   * the host answers and nothing listens on the broker's port, so its process is gone — not a network cut,
   * where a dial times out (or a middlebox resets it). The isolation monitor does not count such a peer.
   */
  nothingListens(brokerId: number): boolean {
    return this.#links.get(brokerId)?.refused === true;
  }

  /**
   * Dials `brokerId` now if its link is backing off (and forgets the failures): the peer registered again, so it
   * listens. Without it a broker restarted after a few refused dials is reached only after reconnectBackoffMaxMs,
   * longer than brokerSessionTimeoutMs: the controller reported it down again and its peers judged themselves
   * cut off (cluster-failover and cluster-min-isr tests).
   */
  redial(brokerId: number): void {
    const link = this.#links.get(brokerId);
    if (this.#isClosed || !link || link.state !== 'backoff') return;
    if (link.timer) clearTimeout(link.timer);
    link.timer = null;
    link.failures = 0;
    this.#connect(link);
  }

  /** Doubling backoff from reconnectBackoffMs to reconnectBackoffMaxMs; the link stays wanted until released. */
  #scheduleReconnect(link: PeerLink): void {
    if (this.#isClosed || link.state === 'closed') return;
    link.state = 'backoff';
    const delayMs = Math.min(this.limits.reconnectBackoffMs * 2 ** link.failures, this.limits.reconnectBackoffMaxMs);
    link.failures = Math.min(link.failures + 1, 30);
    link.timer = setTimeout(() => {
      link.timer = null;
      this.#connect(link);
    }, delayMs);
  }

  #onAnswer(link: PeerLink, socket: FrameSocket, f: ReplicationFrame): void {
    const pending = link.inflight.get(f.correlationId);
    // Late answer of a request that timed out or was aborted: dropped.
    if (!pending) return;
    if (f.kind === 'error') {
      pending.reject(new RunnelError(f.code, `broker ${link.brokerId}: ${f.message}`));
      return;
    }
    const isExpected = f.kind === pending.expect && (f.kind !== 'extensionResponse' || (pending.frame.kind === 'extension' && f.requestType === pending.frame.requestType));
    if (!isExpected) {
      socket.close(new RunnelError('INVALID_FRAME', `broker ${link.brokerId} answered ${pending.frame.kind} with ${f.kind}`));
      return;
    }
    pending.resolve(f);
  }

  #failAll(link: PeerLink, error: RunnelError): void {
    for (const p of [...link.inflight.values(), ...link.waiting]) p.reject(error);
    link.inflight.clear();
    link.waiting.length = 0;
  }

  #emitDown(brokerId: number, reason: PeerDownReason): void {
    for (const listener of [...this.#downListeners]) listener(brokerId, reason);
  }
}
