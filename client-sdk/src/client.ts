/**
 * The full Runnel client: one connection, one producer (with its outbox), any
 * number of subscriptions multiplexed over partition streams. Runs in
 * browsers, workers, edge runtimes and Node (inject `ws`'s WebSocket).
 * The halves are entries of their own too (consumer-client.ts,
 * producer-client.ts) for apps that use only one.
 */
import { RunnelConsumer } from './consumer-client.ts';
import type { ClientOptions } from './client-core.ts';
import type { Producer } from './producer.ts';
import type { Storage } from './storage.ts';
import { startProducer, type ProducerPart } from './producer-client.ts';

export type { ClientOptions, ClientEvents, Metadata, BeaconPlugin } from './client-core.ts';

export class RunnelClient extends RunnelConsumer<Storage> {
  /** Typed, idempotent, batching producer with a durable outbox. */
  readonly producer: Producer;
  readonly #part: ProducerPart;

  constructor(options: ClientOptions) {
    super(options);
    this.#part = startProducer(this.conn, this.storage, this.limits, this.random, (e) => this.emit('error', e), options.beacon);
    this.producer = this.#part.producer;
  }

  /** Stops subscriptions (storing their offsets), closes the connection and storage. Unacked durable records stay in the outbox. */
  override async close(): Promise<void> {
    await this.stopSubscriptions();
    this.#part.stop();
    await this.closeCore();
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
