/**
 * The producer half as its own entry (`@runnel/client/producer`): one
 * connection, one idempotent batching producer with its durable outbox
 * (and the drains of outboxes left by clients that are gone), without the
 * consumer. `createClient` (client.ts) uses the same `startProducer`.
 */
import type { RunnelError } from './codec/error-codes.ts';
import type { Connection } from './connection.ts';
import { ClientCore, type ClientOptions } from './client-core.ts';
import type { ClientLimits } from './limits.ts';
import { Producer, type SendOptions, type SendResult } from './producer.ts';
import type { RandomSource } from './reconnect-policy.ts';
import type { ProducerStorage } from './storage.ts';
import type { TopicRef } from './topic.ts';

/** A client's producer and what stops it: its beacon, its orphan drains. */
export interface ProducerPart { producer: Producer; stop(): void }

/** Starts the producer of a client, its page-exit beacon if asked, and the adoption of orphaned outboxes. */
export function startProducer(
  conn: Connection, storage: ProducerStorage, limits: ClientLimits, random: RandomSource,
  reportError: (e: RunnelError) => void, beacon: ClientOptions['beacon'],
): ProducerPart {
  const producer = new Producer(conn, storage.outbox, limits, random, reportError);
  const removeBeacon = beacon ? beacon(producer, () => conn.url, limits.maxBeaconBytes) : () => {};
  /** Producers draining outboxes adopted from clients that are gone (see Storage.orphans). */
  const drains = new Set<Producer>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  /** Drains every orphaned outbox with its own producer id (so resends stay de-duplicated), then checks again later. */
  const adoptOrphans = async (): Promise<void> => {
    for (const orphan of await storage.orphans!().catch(() => [])) {
      if (stopped || conn.state === 'closed') { orphan.release(); continue; }
      const drain = new Producer(conn, orphan.outbox, limits, random, reportError);
      drains.add(drain);
      const done = (): void => {
        if (drains.delete(drain)) { drain.close(); orphan.release(); }
      };
      void drain.drained().then(done, done); // NB: an outbox that cannot be loaded is released for another client to try
    }
    if (!stopped && conn.state !== 'closed') timer = setTimeout(() => void adoptOrphans(), limits.orphanCheckMs);
  };
  if (storage.orphans) void producer.ready.then(adoptOrphans, () => {});
  return {
    producer,
    stop() {
      stopped = true;
      removeBeacon();
      producer.close();
      clearTimeout(timer);
      for (const drain of drains) drain.close();
      drains.clear();
    },
  };
}

export class RunnelProducer extends ClientCore<ProducerStorage> {
  /** Typed, idempotent, batching producer with a durable outbox. */
  readonly producer: Producer;
  readonly #part: ProducerPart;

  constructor(options: ClientOptions<ProducerStorage>) {
    super(options);
    this.#part = startProducer(this.conn, this.storage, this.limits, this.random, (e) => this.emit('error', e), options.beacon);
    this.producer = this.#part.producer;
  }

  /** `producer.send`: resolves once the broker acknowledged the record; `.queued` once it is in the outbox. */
  send<In>(topic: TopicRef<In, any>, value: In, options?: SendOptions): SendResult {
    return this.producer.send(topic, value, options);
  }

  /** Closes the producer and the connection; unacked durable records stay in the outbox for the next client. */
  async close(): Promise<void> {
    this.#part.stop();
    await this.closeCore();
  }
}

/**
 * Creates a producer-only client and starts connecting (no consumer in the bundle).
 * @example
 * import { createProducer } from '@runnel/client/producer';
 * const producer = createProducer({ urls: ['wss://runnel.example/v1/ws'], storage: indexedDbProducerStorage() });
 * await producer.send(pageViews, { path: location.pathname });
 */
export function createProducer(options: ClientOptions<ProducerStorage>): RunnelProducer {
  return new RunnelProducer(options);
}
