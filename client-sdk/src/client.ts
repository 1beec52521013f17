/**
 * The Runnel client: one connection, one producer (with its outbox), any
 * number of subscriptions multiplexed over partition streams. Runs in
 * browsers, workers, edge runtimes and Node (inject `ws`'s WebSocket).
 */
import { RunnelError, errorNameOf } from './codec/error-codes.ts';
import type { MetadataFrame } from './codec/protocol.ts';
import { Connection, type ConnectionState, type TokenProvider } from './connection.ts';
import type { ConsumerRecord } from './consumer-record.ts';
import { Subscription, type BatchHandler, type ConsumerDeps, type Handler, type NotRecoveredEvent, type SubscribeOptions } from './consumer.ts';
import { Emitter } from './events.ts';
import { UNKNOWN_TOPIC_RETRY_MS, validateClientSettings, type ClientLimits } from './limits.ts';
import { memoryStorage } from './memory-storage.ts';
import { StreamRegistry } from './partition-stream.ts';
import { Producer } from './producer.ts';
import type { RandomSource, ReconnectOptions } from './reconnect-policy.ts';
import type { OffsetStore, OutboxStore, Storage } from './storage.ts';
import type { TopicRef } from './topic.ts';
import { webSocketTransport, type TransportFactory, type WebSocketConstructor } from './transport.ts';

export interface ClientOptions {
  /** Bootstrap broker URLs (`ws(s)://host/v1/ws`), tried in turn. */
  urls: string | string[];
  /** WebSocket implementation (default `globalThis.WebSocket`; in Node pass `ws`'s). */
  WebSocket?: WebSocketConstructor;
  /** Custom transport (tests, workers); overrides `WebSocket`. */
  transport?: TransportFactory;
  /** Offsets + outbox (default: memory). Browser: `indexedDbStorage()`, Node: `fileStorage(dir)`. */
  storage?: Storage | Promise<Storage>;
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
   * Page-exit flush, opt-in: `beacon: pageExitBeacon` from `@runnel/client/beacon`
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

function lazyStorage(p: Promise<Storage>): Storage {
  const call = <K extends string>(part: 'offsets' | 'outbox', name: K) => (...args: unknown[]) =>
    p.then((s) => (s[part] as unknown as Record<K, (...a: unknown[]) => unknown>)[name](...args));
  const offsets = {} as Record<string, unknown>, outbox = {} as Record<string, unknown>;
  for (const n of ['getOffsets', 'putOffsets', 'deleteOffsets']) offsets[n] = call('offsets', n);
  offsets.transact = (...args: unknown[]) => p.then((s) => {
    if (!s.offsets.transact) throw new RunnelError('INVALID_REQUEST', 'transactional handling needs indexedDbStorage()');
    return (s.offsets.transact as (...a: unknown[]) => Promise<void>)(...args);
  });
  for (const n of ['load', 'addRecords', 'freeze', 'deleteBatches', 'deleteRecords', 'saveProducer']) outbox[n] = call('outbox', n);
  return {
    offsets: offsets as unknown as OffsetStore, outbox: outbox as unknown as OutboxStore,
    orphans: () => p.then((s) => s.orphans?.() ?? []), close: () => p.then((s) => s.close()),
  };
}

export class RunnelClient extends Emitter<ClientEvents> {
  /** Typed, idempotent, batching producer with a durable outbox. */
  readonly producer: Producer;
  readonly #conn: Connection;
  readonly #storage: Storage;
  readonly #streams: StreamRegistry;
  readonly #subscriptions = new Set<Subscription<any>>();
  readonly #partitionCounts = new Map<string, number>();
  readonly #removeBeacon: () => void;
  readonly #checkCrcs: boolean;
  /** Producers draining outboxes adopted from clients that are gone (see Storage.orphans). */
  readonly #drains = new Set<Producer>();
  #orphanTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: ClientOptions) {
    super();
    const urls = typeof options.urls === 'string' ? [options.urls] : options.urls;
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!options.transport && !WebSocketImpl) throw new RunnelError('NOT_CONNECTED', 'no WebSocket: pass { WebSocket } (in Node: import { WebSocket } from "ws")');
    const { limits, timeouts, reconnect } = validateClientSettings({
      limits: options.limits, reconnect: options.reconnect, timeouts: { requestTimeoutMs: options.requestTimeoutMs, pingIntervalMs: options.pingIntervalMs },
    });
    const random = options.random ?? Math.random;
    this.#checkCrcs = options.checkCrcs !== false;
    this.#storage = options.storage instanceof Promise ? lazyStorage(options.storage) : options.storage ?? memoryStorage();
    this.#conn = new Connection({
      urls, transport: options.transport ?? webSocketTransport(WebSocketImpl!), clientId: options.clientId ?? 'runnel-js',
      token: options.token, reconnect, random, ...timeouts,
    });
    this.#conn.on('statechange', (e) => this.emit('statechange', e));
    this.#conn.on('error', (e) => this.emit('error', e));
    // NB: at least two of the broker's largest frames outstanding, so it can send the next frame while one is handled.
    const windowBytes = (): number => Math.max(limits.creditWindowBytes, 2 * (this.#conn.helloOk?.maxBatchBytes ?? 0));
    this.#streams = new StreamRegistry(this.#conn, windowBytes);
    this.producer = new Producer(this.#conn, this.#storage.outbox, limits, random, (e) => this.emit('error', e));
    this.#removeBeacon = options.beacon ? options.beacon(this.producer, () => this.#conn.url, limits.maxBeaconBytes) : () => {};
    this.#conn.open();
    if (this.#storage.orphans) void this.producer.ready.then(() => this.#adoptOrphans(limits, random), () => {});
  }

  /** Drains every orphaned outbox with its own producer id (so resends stay de-duplicated), then checks again later. */
  async #adoptOrphans(limits: ClientLimits, random: RandomSource): Promise<void> {
    for (const orphan of await this.#storage.orphans!().catch(() => [])) {
      if (this.state === 'closed') { orphan.release(); continue; }
      const drain = new Producer(this.#conn, orphan.outbox, limits, random, (e) => this.emit('error', e));
      this.#drains.add(drain);
      const done = (): void => {
        if (this.#drains.delete(drain)) { drain.close(); orphan.release(); }
      };
      void drain.drained().then(done, done); // NB: an outbox that cannot be loaded is released for another client to try
    }
    if (this.state !== 'closed') this.#orphanTimer = setTimeout(() => void this.#adoptOrphans(limits, random), limits.orphanCheckMs);
  }

  /** Connection state: 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed'. */
  get state(): ConnectionState {
    return this.#conn.state;
  }

  /**
   * Calls `handler` for every record of `topic`, in offset order per
   * partition, each once; stores the next offset after the handler resolves.
   * @example
   * const sub = client.subscribe(pageViews, async (rec) => render(rec.value), { consumerId: 'dashboard', reset: 'earliest' });
   * sub.on('notrecovered', (e) => console.warn('lost', e.lost));
   * await sub.unsubscribe();
   */
  subscribe<T>(topic: TopicRef<any, T>, handler: Handler<T>, options: SubscribeOptions = {}): Subscription<T> {
    return this.#track(new Subscription<T>(this.#consumerDeps(), topic, handler, options));
  }

  /**
   * Like `subscribe`, but the handler gets every accepted record of one
   * received frame of one partition at once (Kafka's eachBatch); the offset is
   * stored after it resolves. Fewer calls: used across threads by @runnel/worker.
   * @example client.subscribeBatches('orders', async (records) => { await db.bulkPut(records) }, { consumerId: 'db' })
   */
  subscribeBatches<T>(topic: TopicRef<any, T>, handler: BatchHandler<T>, options: SubscribeOptions = {}): Subscription<T> {
    return this.#track(new Subscription<T>(this.#consumerDeps(), topic, () => {}, options, handler));
  }

  /** @internal The connection and consumer plumbing `@runnel/client/group` builds on. */
  internals(): { conn: Connection; deps: ConsumerDeps } {
    return { conn: this.#conn, deps: this.#consumerDeps() };
  }

  #consumerDeps(): ConsumerDeps {
    if (this.state === 'closed') throw new RunnelError('NOT_CONNECTED', 'client is closed');
    return { streams: this.#streams, offsets: this.#storage.offsets, partitionCount: (t) => this.#partitionCount(t), reportError: (e) => this.emit('error', e), checkCrcs: this.#checkCrcs };
  }

  #track<T>(sub: Subscription<T>): Subscription<T> {
    this.#subscriptions.add(sub);
    sub.on('notrecovered', (e) => this.emit('notrecovered', e));
    void sub.closed.catch(() => {}).finally(() => this.#subscriptions.delete(sub));
    return sub;
  }

  /**
   * Async iteration over a topic; the offset is stored when the loop asks for the next record.
   * @example for await (const rec of client.consume('orders', { signal })) console.log(rec.offset, rec.value);
   */
  async *consume<T>(topic: TopicRef<any, T>, options: SubscribeOptions = {}): AsyncGenerator<ConsumerRecord<T>> {
    type Held = { record: ConsumerRecord<T>; done: () => void; drop: (reason: unknown) => void };
    let slot: Held | null = null;
    let held: Held | null = null;
    let wake: (() => void) | null = null;
    const sub = this.subscribe<T>(topic, (record) => new Promise<void>((done, drop) => { slot = { record, done, drop }; wake?.(); }), options);
    let ended = false;
    void sub.closed.catch(() => {}).finally(() => { ended = true; wake?.(); });
    try {
      while (true) {
        while (!slot && !ended) await new Promise<void>((r) => (wake = r));
        if (!slot) break;
        held = slot as Held;
        slot = null;
        yield held.record;
        held.done();
        held = null;
      }
      await sub.closed; // rethrows a handler/subscription error
    } finally {
      const stopping = sub.unsubscribe();
      // NB: the loop left (break, return, throw) holding a record: it is not handled (its offset is not stored),
      // and its handler call must end or unsubscribe would wait for it forever.
      (held as Held | null)?.drop(new RunnelError('ABORTED'));
      await stopping;
    }
  }

  /** Topic and broker metadata (all topics when `topics` is empty). */
  async metadata(topics: string[] = []): Promise<Metadata> {
    await this.#whenConnected();
    // Never creates topics: consumers and admin calls must not (Kafka consumers wait for a topic to appear).
    const answer = await this.#conn.request<MetadataFrame>({ type: 'metadataRequest', topics, allowAutoTopicCreation: 0 });
    for (const t of answer.topics) if (t.errorCode === 0) this.#partitionCounts.set(t.name, t.partitions.length);
    return { brokers: answer.brokers, topics: answer.topics };
  }

  /** Partition count of `topic`; a topic that does not exist yet is waited for, as Kafka consumers do. */
  async #partitionCount(topic: string): Promise<number> {
    for (;;) {
      if (this.state === 'closed') throw new RunnelError('ABORTED', 'client is closed');
      const known = this.#partitionCounts.get(topic);
      if (known) return known;
      try {
        const m = await this.metadata([topic]);
        const t = m.topics.find((x) => x.name === topic);
        if (t && t.errorCode !== 0) {
          const name = errorNameOf(t.errorCode);
          if (name !== 'UNKNOWN_TOPIC_OR_PARTITION') throw new RunnelError(name, `topic "${topic}" is not available`);
          await new Promise((resolve) => setTimeout(resolve, UNKNOWN_TOPIC_RETRY_MS));
        }
      } catch (e) {
        if (!(e instanceof RunnelError) || !e.retryable) throw e;
      }
    }
  }

  #whenConnected(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new RunnelError('NOT_CONNECTED', 'client is closed'));
    return new Promise((resolve, reject) => {
      const offState = this.#conn.on('statechange', ({ state }) => {
        if (state === 'connected') { offState(); resolve(); }
        if (state === 'closed') { offState(); reject(new RunnelError('NOT_CONNECTED', 'client is closed')); }
      });
    });
  }

  /** Stops subscriptions (storing their offsets), closes the connection and storage. Unacked durable records stay in the outbox. */
  async close(): Promise<void> {
    this.#removeBeacon();
    await Promise.all([...this.#subscriptions].map((s) => s.unsubscribe()));
    this.producer.close();
    clearTimeout(this.#orphanTimer);
    for (const drain of this.#drains) drain.close();
    this.#drains.clear();
    this.#conn.close();
    await this.#storage.close();
  }
}

/**
 * Creates a client and starts connecting.
 * @example
 * import { WebSocket } from 'ws'; // Node only; browsers use the global
 * const client = createClient({ urls: ['ws://localhost:8080/v1/ws'], WebSocket });
 * await client.producer.send('orders', { id: 1 }, { key: 'user-1' });
 */
export function createClient(options: ClientOptions): RunnelClient {
  return new RunnelClient(options);
}
