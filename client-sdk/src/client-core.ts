/**
 * What every client entry shares: options, one connection, storage, and
 * metadata. The consumer (consumer-client.ts), the producer
 * (producer-client.ts) and the full client (client.ts) build on it, so an
 * app that imports only one half bundles only that half (issue 13).
 */
import { RunnelError, errorNameOf } from './codec/error-codes.ts';
import type { MetadataFrame } from './codec/protocol.ts';
import { Connection, type ConnectionState, type TokenProvider } from './connection.ts';
import type { NotRecoveredEvent } from './consumer.ts';
import { Emitter } from './events.ts';
import { UNKNOWN_TOPIC_RETRY_MS, validateClientSettings, type ClientLimits } from './limits.ts';
import type { Producer } from './producer.ts';
import type { RandomSource, ReconnectOptions } from './reconnect-policy.ts';
import type { ConsumerStorage, ProducerStorage, Storage } from './storage.ts';
import { webSocketTransport, type TransportFactory, type WebSocketConstructor } from './transport.ts';
import { VERBOSE } from '#verbose';

/** `S`: the storage the client uses (a half client takes a half: ConsumerStorage, ProducerStorage). */
export interface ClientOptions<S extends ConsumerStorage | ProducerStorage = Storage> {
  /** Bootstrap broker URLs (`ws(s)://host/v1/ws`), tried in turn. */
  urls: string | string[];
  /** WebSocket implementation (default `globalThis.WebSocket`; in Node pass `ws`'s). */
  WebSocket?: WebSocketConstructor;
  /** Custom transport (tests, workers); overrides `WebSocket`. */
  transport?: TransportFactory;
  /**
   * Offsets + outbox. Browser: `indexedDbStorage()` (a half client: `indexedDbConsumerStorage()` or
   * `indexedDbProducerStorage()`), Node: `fileStorage(dir)`. Without one, memory storage, loaded only then
   * (it is not in the bundle of an app that passes its own).
   */
  storage?: S | Promise<S>;
  clientId?: string;
  /** Auth token or provider, sent in every hello. */
  token?: TokenProvider;
  limits?: Partial<ClientLimits>;
  reconnect?: Partial<ReconnectOptions>;
  /** Random source for jitter and sticky partitions (seed it in tests). */
  random?: RandomSource;
  /** A request without an answer after this long rejects REQUEST_TIMED_OUT (default 30 s; see limits.ts). */
  requestTimeoutMs?: number;
  /** Ping after this much silence; the link is dropped after twice this (default 15 s; see limits.ts). */
  pingIntervalMs?: number;
  /**
   * Consumers verify each received batch's CRC-32C (default true, like
   * Kafka's `check.crcs`). The broker checks CRCs on produce; turning this off
   * trusts the broker and the transport for faster catch-up.
   */
  checkCrcs?: boolean;
  /**
   * Consumers stop granting credit while the page is hidden (`document.visibilityState`): the broker sends at
   * most the window already granted, then nothing until the page is visible again, when delivery continues
   * where it stopped (no gap, no duplicate). Saves a background tab's CPU, battery and data. Default false;
   * no effect without a `document` (workers, Node). See partition-stream.ts.
   */
  pauseWhenHidden?: boolean;
  /**
   * Page-exit flush, opt-in (producer): `beacon: pageExitBeacon` from `@runnel/client/beacon`
   * freezes pending records when the page is hidden and posts them with sendBeacon
   * on `pagehide`. Default: off (`false`).
   */
  beacon?: false | BeaconPlugin;
}

/** Installs a page-exit flush for `producer`; returns its remover (see `@runnel/client/beacon`). */
export type BeaconPlugin = (producer: Producer, wsUrl: () => string, maxBytes: number) => () => void;

export interface ClientEvents {
  statechange: { state: ConnectionState; previous: ConnectionState };
  error: RunnelError;
  notrecovered: NotRecoveredEvent;
}

/** Cluster metadata from the broker. */
export type Metadata = Pick<MetadataFrame, 'brokers' | 'topics'>;

/**
 * A Storage whose every call waits for `p` — any part and method, so parts a storage adds (a state
 * store) pass through too. A method the storage lacks rejects INVALID_REQUEST when called.
 */
function lazyStorage<S>(p: Promise<S>, adoptsOrphans: boolean): S {
  type Any = Record<string, any>;
  const call = (s: Any, name: string, args: unknown[]): unknown => {
    if (typeof s[name] !== 'function') throw new RunnelError('INVALID_REQUEST', VERBOSE ? `storage has no ${name}()` : '');
    return s[name](...args);
  };
  // NB: `then` stays undefined, so a part or the storage is never taken for a promise.
  const forward = (get: (s: Any) => Any) => new Proxy({}, {
    get: (_, name) => (name === 'then' || typeof name !== 'string' ? undefined : (...args: unknown[]) => p.then((s) => call(get(s as Any), name, args))),
  });
  return new Proxy({}, {
    get: (_, name) => {
      if (name === 'then' || typeof name !== 'string' || (name === 'orphans' && !adoptsOrphans)) return undefined;
      return name === 'close' || name === 'orphans' ? (...args: unknown[]) => p.then((s) => (s as Any)[name]?.(...args) ?? []) : forward((s) => (s as Any)[name] ?? {});
    },
  }) as S;
}

/** The storage a client uses: the one given (awaited lazily if a promise), else memory storage, imported only then. */
function storageOf<S>(given: S | Promise<S> | undefined): S {
  // NB: memory storage is a whole Storage, so it is every half too.
  if (given === undefined) return lazyStorage(import('./memory-storage.ts').then((m) => m.memoryStorage() as S), false);
  return given instanceof Promise ? lazyStorage(given, true) : given;
}

/** Connection, storage, settings and metadata; entries add the consumer and/or the producer. */
export class ClientCore<S extends ConsumerStorage | ProducerStorage = Storage> extends Emitter<ClientEvents> {
  protected readonly conn: Connection;
  protected readonly storage: S;
  protected readonly limits: ClientLimits;
  protected readonly random: RandomSource;
  readonly #partitionCounts = new Map<string, number>();

  constructor(options: ClientOptions<S>) {
    super();
    const urls = typeof options.urls === 'string' ? [options.urls] : options.urls;
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!options.transport && !WebSocketImpl) throw new RunnelError('NOT_CONNECTED', VERBOSE ? 'no WebSocket: pass { WebSocket } from "ws" in Node' : '');
    const { limits, timeouts, reconnect } = validateClientSettings({
      limits: options.limits, reconnect: options.reconnect, timeouts: { requestTimeoutMs: options.requestTimeoutMs, pingIntervalMs: options.pingIntervalMs },
    });
    this.limits = limits;
    this.random = options.random ?? Math.random;
    this.storage = storageOf(options.storage);
    this.conn = new Connection({
      urls, transport: options.transport ?? webSocketTransport(WebSocketImpl!), clientId: options.clientId ?? 'runnel-js',
      token: options.token, reconnect, random: this.random, ...timeouts,
    });
    this.conn.on('statechange', (e) => this.emit('statechange', e));
    this.conn.on('error', (e) => this.emit('error', e));
    // NB: what subclasses attach after this (producer, stream registry) also handles a connection already up.
    this.conn.open();
  }

  /** Connection state: 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed'. */
  get state(): ConnectionState {
    return this.conn.state;
  }

  /** Topic and broker metadata (all topics when `topics` is empty). */
  async metadata(topics: string[] = []): Promise<Metadata> {
    await this.#whenConnected();
    // Never creates topics: consumers and admin calls must not (Kafka consumers wait for a topic to appear).
    const answer = await this.conn.request<MetadataFrame>({ type: 'metadataRequest', topics, allowAutoTopicCreation: 0 });
    for (const t of answer.topics) if (t.errorCode === 0) this.#partitionCounts.set(t.name, t.partitions.length);
    return { brokers: answer.brokers, topics: answer.topics };
  }

  /** Partition count of `topic`; a topic that does not exist yet is waited for, as Kafka consumers do. */
  protected async partitionCount(topic: string): Promise<number> {
    for (;;) {
      if (this.state === 'closed') throw new RunnelError('ABORTED', VERBOSE ? 'client is closed' : '');
      const known = this.#partitionCounts.get(topic);
      if (known) return known;
      try {
        const m = await this.metadata([topic]);
        const t = m.topics.find((x) => x.name === topic);
        if (t && t.errorCode !== 0) {
          const name = errorNameOf(t.errorCode);
          if (name !== 'UNKNOWN_TOPIC_OR_PARTITION') throw new RunnelError(name, VERBOSE ? `topic "${topic}" is not available` : '');
          await new Promise((resolve) => setTimeout(resolve, UNKNOWN_TOPIC_RETRY_MS));
        }
      } catch (e) {
        if (!(e instanceof RunnelError) || !e.retryable) throw e;
      }
    }
  }

  #whenConnected(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new RunnelError('NOT_CONNECTED', VERBOSE ? 'client is closed' : ''));
    return new Promise((resolve, reject) => {
      const offState = this.conn.on('statechange', ({ state }) => {
        if (state === 'connected') { offState(); resolve(); }
        if (state === 'closed') { offState(); reject(new RunnelError('NOT_CONNECTED', VERBOSE ? 'client is closed' : '')); }
      });
    });
  }

  /** Closes the connection, then the storage (after the entry stopped its consumer and producer). */
  protected async closeCore(): Promise<void> {
    this.conn.close();
    await this.storage.close();
  }
}
