/**
 * The consumer half as its own entry (`@runnel/client/consumer`): one
 * connection and any number of subscriptions multiplexed over partition
 * streams, without the producer and its outbox. `createClient` (client.ts)
 * is this plus the producer.
 */
import { RunnelError } from './codec/error-codes.ts';
import { consumerFrames } from './codec/frame-schema.ts';
import type { Connection } from './connection.ts';
import type { ConsumerRecord } from './consumer-record.ts';
import { Subscription, type BatchHandler, type ConsumerDeps, type Handler, type HandlerTransaction, type SubscribeOptions } from './consumer.ts';

/** Options of a transactional subscription over `stores` (its handler's `tx` is typed over them). */
type Transactional<T, S extends string> = SubscribeOptions<T> & { transactional: { stores: readonly S[] } };
import { ClientCore, type ClientOptions } from './client-core.ts';
import { documentVisibility, StreamRegistry } from './partition-stream.ts';
import type { ConsumerStorage } from './storage.ts';
import type { TopicRef } from './topic.ts';
import { VERBOSE } from '#verbose';

/** `S`: its storage (a full Storage when it is the base of createClient's RunnelClient). */
export class RunnelConsumer<S extends ConsumerStorage = ConsumerStorage> extends ClientCore<S> {
  readonly #streams: StreamRegistry;
  readonly #subscriptions = new Set<Subscription<any>>();
  readonly #checkCrcs: boolean;

  constructor(options: ClientOptions<S>) {
    super(options);
    this.conn.speak(consumerFrames);
    this.#checkCrcs = options.checkCrcs !== false;
    // NB: at least two of the broker's largest frames outstanding, so it can send the next frame while one is handled.
    const windowBytes = (): number => Math.max(this.limits.creditWindowBytes, 2 * (this.conn.helloOk?.maxBatchBytes ?? 0));
    this.#streams = new StreamRegistry(this.conn, windowBytes, {
      maxWindowBytes: this.limits.maxCreditWindowBytes, maxGrowthBytes: this.limits.maxCreditTotalBytes,
      visibility: options.pauseWhenHidden ? documentVisibility() : undefined,
    });
  }

  /**
   * Calls `handler` for every record of `topic`, in offset order per
   * partition, each once; stores the next offset after the handler resolves.
   * With `transactional: { stores }` the handler's `ctx.tx` is an IndexedDB transaction typed over those
   * stores and the offsets; without it `ctx.tx` is undefined.
   * @example
   * const sub = client.subscribe(pageViews, async (rec) => render(rec.value), { consumerId: 'dashboard', reset: 'earliest' });
   * sub.on('notrecovered', (e) => console.warn('lost', e.lost));
   * await sub.unsubscribe();
   */
  subscribe<T, S extends string = string>(topic: TopicRef<any, T>, handler: Handler<T, HandlerTransaction<S>>, options: Transactional<T, S>): Subscription<T>;
  subscribe<T>(topic: TopicRef<any, T>, handler: Handler<T, undefined>, options?: SubscribeOptions<T>): Subscription<T>;
  subscribe<T>(topic: TopicRef<any, T>, handler: Handler<T, any>, options: SubscribeOptions<T> = {}): Subscription<T> {
    return this.#track(new Subscription<T>(this.#consumerDeps(), topic, handler, options));
  }

  /**
   * Like `subscribe`, but the handler gets every accepted record of one
   * received frame of one partition at once (Kafka's eachBatch); the offset is
   * stored after it resolves. Fewer calls: used across threads by @runnel/worker.
   * @example client.subscribeBatches('orders', async (records) => { await db.bulkPut(records) }, { consumerId: 'db' })
   */
  subscribeBatches<T, S extends string = string>(topic: TopicRef<any, T>, handler: BatchHandler<T, HandlerTransaction<S>>, options: Transactional<T, S>): Subscription<T>;
  subscribeBatches<T>(topic: TopicRef<any, T>, handler: BatchHandler<T, undefined>, options?: SubscribeOptions<T>): Subscription<T>;
  subscribeBatches<T>(topic: TopicRef<any, T>, handler: BatchHandler<T, any>, options: SubscribeOptions<T> = {}): Subscription<T> {
    return this.#track(new Subscription<T>(this.#consumerDeps(), topic, () => {}, options, handler));
  }

  /** @internal The connection and consumer plumbing `@runnel/client/group` builds on. */
  internals(): { conn: Connection; deps: ConsumerDeps } {
    return { conn: this.conn, deps: this.#consumerDeps() };
  }

  #consumerDeps(): ConsumerDeps {
    if (this.state === 'closed') throw new RunnelError('NOT_CONNECTED', VERBOSE ? 'client is closed' : '');
    return { streams: this.#streams, offsets: this.storage.offsets, partitionCount: (t) => this.partitionCount(t), reportError: (e) => this.emit('error', e), checkCrcs: this.#checkCrcs };
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

  /** Stops every subscription (storing its offsets). */
  protected async stopSubscriptions(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((s) => s.unsubscribe()));
  }

  /** Stops subscriptions (storing their offsets), closes the connection and storage. */
  async close(): Promise<void> {
    await this.stopSubscriptions();
    await this.closeCore();
  }
}

/**
 * Creates a consumer-only client and starts connecting (no producer, no outbox in the bundle).
 * @example
 * import { createConsumer } from '@runnel/client/consumer';
 * const consumer = createConsumer({ urls: ['wss://runnel.example/v1/ws'], storage: indexedDbConsumerStorage() });
 * consumer.subscribe(pageViews, (rec) => render(rec.value), { consumerId: 'dashboard' });
 */
export function createConsumer(options: ClientOptions<ConsumerStorage>): RunnelConsumer {
  return new RunnelConsumer(options);
}
