/**
 * The replication port of one broker (docs/replication-protocol.md): accepts
 * connections from peer brokers, takes their handshake (it names the dialing
 * broker id, and the dialer proves it holds the cluster's link key:
 * link-auth.ts), answers heartbeats, dispatches each Fetch to the replica
 * registered for its (topicId, partition) and each extension request to the
 * handler registered for its type.
 *
 * Invariants: nothing is served before the handshake and a valid proof; each
 * request gets exactly one answer (its answer frame or ERROR), unless the
 * connection closes first, which aborts the handlers still running for it
 * (their `signal`); at most maxInflightRequestsPerConnection handlers run per
 * connection (more are answered LIMIT_EXCEEDED); while a connection's write
 * buffer holds more than maxSocketBufferBytes its requests are not read.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { RunnelError } from '@runnel/client/codec';
import { FrameSocket } from './frame-socket.ts';
import { resolveReplicationLimits, type ReplicationLimits } from './limits.ts';
import { isValidLinkProof, linkNonce, linkProof, type LinkTranscript } from './link-auth.ts';
import { EXTENSION_TYPE_MAX, EXTENSION_TYPE_MIN, REPLICATION_PROTOCOL_VERSION, type FetchRequest, type FetchResponse, type ReplicationFrame } from './protocol.ts';

/** Answers one follower fetch (a partition's leader). Throw a RunnelError to answer ERROR with its code. `signal` aborts when the connection closes. */
export type FetchHandler = (request: FetchRequest, fromBrokerId: number, signal: AbortSignal) => Promise<FetchResponse>;
/** Answers one extension request; the resolved bytes are the answer's body. Throw a RunnelError to answer ERROR with its code. */
export type RequestHandler = (body: Uint8Array, fromBrokerId: number, signal: AbortSignal) => Promise<Uint8Array>;

export interface ReplicationServerOptions {
  brokerId: number;
  /** The cluster's link key (link-auth.ts `deriveLinkKey`): a dialer that cannot prove it holds it is refused. */
  linkKey: Uint8Array;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default): any free port (tests); see `address` after `listen`. */
  port?: number;
  limits?: Partial<ReplicationLimits>;
  /** Where connection-level problems are reported (bad frames, handler crashes); default console.warn. */
  warn?: (message: string) => void;
}

/** Where fetches find the replica of a partition (ReplicaPartition registers itself). */
export interface FetchHandlerRegistry {
  registerReplica(topicId: string, partition: number, handler: FetchHandler): () => void;
}

function replicaKey(topicId: string, partition: number): string {
  return `${topicId}\0${partition}`;
}

interface Connection {
  socket: FrameSocket;
  /** Broker id from the handshake, once its proof checked out; null before. */
  peerId: number | null;
  /** Between HandshakeOk and the dialer's proof. */
  transcript: LinkTranscript | null;
  /** Handlers running for this connection, by correlationId. */
  inflight: Map<number, AbortController>;
  handshakeTimer: ReturnType<typeof setTimeout> | null;
}

export class ReplicationServer implements FetchHandlerRegistry {
  readonly brokerId: number;
  readonly limits: ReplicationLimits;
  readonly #host: string;
  readonly #port: number;
  readonly #warn: (message: string) => void;
  readonly #linkKey: Uint8Array;
  readonly #replicas = new Map<string, FetchHandler>();
  readonly #handlers = new Map<number, RequestHandler>();
  readonly #connections = new Set<Connection>();
  #server: Server | null = null;
  #address: { host: string; port: number } | null = null;

  constructor(options: ReplicationServerOptions) {
    this.brokerId = options.brokerId;
    this.limits = resolveReplicationLimits(options.limits);
    this.#linkKey = options.linkKey;
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? 0;
    this.#warn = options.warn ?? ((m) => console.warn(`[replication ${this.brokerId}] ${m}`));
  }

  /** Host and port it listens on (after `listen`). */
  get address(): { host: string; port: number } {
    if (!this.#address) throw new RunnelError('SHUTTING_DOWN', 'the replication server is not listening');
    return this.#address;
  }

  /** Peer connections open now (handshaken or not). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Starts listening.
   * @example const server = new ReplicationServer({ brokerId: 1, port: 9093, linkKey }); const { port } = await server.listen();
   */
  listen(): Promise<{ host: string; port: number }> {
    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, this.#host, () => {
        server.off('error', reject);
        const a = server.address();
        this.#address = { host: this.#host, port: typeof a === 'object' && a ? a.port : this.#port };
        resolve(this.#address);
      });
    });
  }

  /** Fetches for (topicId, partition) go to `handler` until the returned unregister runs. One replica per partition. */
  registerReplica(topicId: string, partition: number, handler: FetchHandler): () => void {
    const key = replicaKey(topicId, partition);
    if (this.#replicas.has(key)) throw new RangeError(`a replica of ${topicId}/${partition} is already registered`);
    this.#replicas.set(key, handler);
    return () => {
      if (this.#replicas.get(key) === handler) this.#replicas.delete(key);
    };
  }

  /**
   * Serves requests of extension `type` (EXTENSION_TYPE_MIN..MAX, e.g. forwarded produce) with `handler`.
   * @example server.handle(ForwardType.produce, async (body, from) => encodeProduceAnswer(await produce(decodeProduceForward(body))));
   */
  handle(type: number, handler: RequestHandler): () => void {
    if (!(Number.isInteger(type) && type >= EXTENSION_TYPE_MIN && type <= EXTENSION_TYPE_MAX)) throw new RangeError(`extension type ${type} outside ${EXTENSION_TYPE_MIN}..${EXTENSION_TYPE_MAX}`);
    if (this.#handlers.has(type)) throw new RangeError(`a handler for type ${type} is already registered`);
    this.#handlers.set(type, handler);
    return () => {
      if (this.#handlers.get(type) === handler) this.#handlers.delete(type);
    };
  }

  /** Stops listening, closes every connection (aborting their handlers). */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const c of [...this.#connections]) c.socket.close();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(raw: Socket): void {
    const c: Connection = { socket: null as unknown as FrameSocket, peerId: null, transcript: null, inflight: new Map(), handshakeTimer: null };
    c.socket = new FrameSocket(raw, this.limits.maxFrameBytes, {
      frame: (frame) => this.#onFrame(c, frame),
      close: (error) => {
        if (c.handshakeTimer) clearTimeout(c.handshakeTimer);
        for (const abort of c.inflight.values()) abort.abort();
        c.inflight.clear();
        this.#connections.delete(c);
        if (error && !isConnectionReset(error)) this.#warn(`connection from broker ${c.peerId ?? '?'} (${c.socket.remoteAddress}) closed: ${error.message}`);
      },
    });
    if (c.socket.isClosed) return;
    this.#connections.add(c);
    c.handshakeTimer = setTimeout(() => c.socket.close(new RunnelError('REQUEST_TIMED_OUT', `no handshake within ${this.limits.connectTimeoutMs} ms`)), this.limits.connectTimeoutMs);
    c.handshakeTimer.unref?.();
  }

  #onFrame(c: Connection, frame: ReplicationFrame): void {
    if (c.peerId === null) {
      this.#onHandshake(c, frame);
      return;
    }
    switch (frame.kind) {
      case 'heartbeat':
        c.socket.send({ kind: 'heartbeatOk', correlationId: frame.correlationId, brokerId: this.brokerId, sentAtMs: frame.sentAtMs });
        return;
      case 'fetch': {
        const handler = this.#replicas.get(replicaKey(frame.request.topicId, frame.request.partition));
        if (!handler) {
          this.#answerError(c, frame.correlationId, new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `broker ${this.brokerId} holds no replica of ${frame.request.topicId}/${frame.request.partition}`));
          return;
        }
        const peerId = c.peerId;
        this.#run(c, frame.correlationId, (signal) => handler(frame.request, peerId, signal).then((response) => {
          c.socket.send({ kind: 'fetchResponse', correlationId: frame.correlationId, response });
        }));
        return;
      }
      case 'extension': {
        const handler = this.#handlers.get(frame.requestType);
        if (!handler) {
          this.#answerError(c, frame.correlationId, new RunnelError('INVALID_REQUEST', `broker ${this.brokerId} serves no request type ${frame.requestType}`));
          return;
        }
        const peerId = c.peerId;
        this.#run(c, frame.correlationId, (signal) => handler(frame.body, peerId, signal).then((body) => {
          c.socket.send({ kind: 'extensionResponse', correlationId: frame.correlationId, requestType: frame.requestType, body });
        }));
        return;
      }
      case 'handshake':
      case 'handshakeOk':
      case 'handshakeProof':
      case 'heartbeatOk':
      case 'fetchResponse':
      case 'error':
      case 'extensionResponse':
        c.socket.close(new RunnelError('INVALID_FRAME', `unexpected ${frame.kind} frame from broker ${c.peerId}`));
        return;
      default: {
        const never: never = frame;
        throw new Error(`unhandled frame ${JSON.stringify(never)}`);
      }
    }
  }

  #onHandshake(c: Connection, frame: ReplicationFrame): void {
    if (c.transcript) {
      this.#onProof(c, c.transcript, frame);
      return;
    }
    if (frame.kind !== 'handshake') {
      c.socket.close(new RunnelError('INVALID_FRAME', `expected a handshake first, got ${frame.kind}`));
      return;
    }
    if (frame.version !== REPLICATION_PROTOCOL_VERSION) {
      this.#answerError(c, frame.correlationId, new RunnelError('UNSUPPORTED_VERSION', `replication protocol version ${frame.version}; this broker speaks ${REPLICATION_PROTOCOL_VERSION}`));
      c.socket.close(new RunnelError('UNSUPPORTED_VERSION', `peer speaks replication protocol version ${frame.version}`));
      return;
    }
    const transcript: LinkTranscript = { dialerId: frame.brokerId, listenerId: this.brokerId, dialerNonce: frame.nonce, listenerNonce: linkNonce() };
    c.transcript = transcript;
    c.socket.send({
      kind: 'handshakeOk', correlationId: frame.correlationId, version: REPLICATION_PROTOCOL_VERSION, brokerId: this.brokerId,
      nonce: transcript.listenerNonce, mac: linkProof(this.#linkKey, 'listener', transcript),
    });
  }

  /** The dialer's HandshakeProof: only then does it get a broker id and is served. */
  #onProof(c: Connection, transcript: LinkTranscript, frame: ReplicationFrame): void {
    if (frame.kind !== 'handshakeProof' || !isValidLinkProof(this.#linkKey, 'dialer', transcript, frame.mac)) {
      const error = new RunnelError('SASL_AUTHENTICATION_FAILED', frame.kind === 'handshakeProof'
        ? `broker ${transcript.dialerId} (${c.socket.remoteAddress}) did not prove the cluster's link key: another cluster, or not a broker`
        : `expected a handshake proof, got ${frame.kind}`);
      this.#answerError(c, frame.correlationId, error);
      c.socket.close(error);
      return;
    }
    if (c.handshakeTimer) clearTimeout(c.handshakeTimer);
    c.handshakeTimer = null;
    c.transcript = null;
    c.peerId = transcript.dialerId;
  }

  /** Runs one handler under the in-flight bound; its failure answers ERROR; a full socket buffer pauses reading. */
  #run(c: Connection, correlationId: number, work: (signal: AbortSignal) => Promise<void>): void {
    if (c.inflight.size >= this.limits.maxInflightRequestsPerConnection) {
      this.#answerError(c, correlationId, new RunnelError('LIMIT_EXCEEDED', `${c.inflight.size} requests of this connection are unanswered (maxInflightRequestsPerConnection)`));
      return;
    }
    if (c.inflight.has(correlationId)) {
      c.socket.close(new RunnelError('INVALID_FRAME', `correlationId ${correlationId} is already in flight`));
      return;
    }
    const abort = new AbortController();
    c.inflight.set(correlationId, abort);
    const done = () => {
      if (c.inflight.get(correlationId) === abort) c.inflight.delete(correlationId);
      this.#maybePause(c);
    };
    work(abort.signal).then(done, (err: unknown) => {
      if (!abort.signal.aborted) this.#answerError(c, correlationId, err);
      done();
    });
  }

  #answerError(c: Connection, correlationId: number, err: unknown): void {
    const e = err instanceof RunnelError ? err : new RunnelError('UNKNOWN_SERVER_ERROR', `broker ${this.brokerId}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    if (e.errorName === 'UNKNOWN_SERVER_ERROR') this.#warn(`request ${correlationId} of broker ${c.peerId} failed: ${e.message}`);
    c.socket.send({ kind: 'error', correlationId, code: e.errorName, message: e.message });
  }

  #maybePause(c: Connection): void {
    if (c.socket.bufferedBytes <= this.limits.maxSocketBufferBytes) return;
    if (c.socket.pause()) c.socket.onceDrained(() => c.socket.resume());
  }
}

/** A peer that died or closed mid-stream: expected in a cluster, not worth a warning. */
export function isConnectionReset(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}
