/**
 * The shop's connection to Runnel, reduced to what the pages need: queue an
 * event durably, read the connection state and the outbox size, hear about
 * state changes. Backed by @runnel/worker's SharedWorker (one WebSocket and
 * one outbox for every shop tab of the origin).
 */
import { createClient, type Topic } from '@runnel/client';
import { indexedDbStorage } from '@runnel/client/indexeddb';

export interface ShopConnection {
  /** Resolves once the event is safely in the outbox (it is acknowledged later). */
  send<T>(topic: Topic<T, unknown>, value: T, key: string): Promise<void>;
  state(): Promise<string>;
  /** Records accepted and not yet acknowledged by the broker. */
  outboxSize(): Promise<number>;
  onStateChange(listener: (state: string) => void): void;
}

export async function connectShop(webSocketUrl: string): Promise<ShopConnection> {
  const client = createClient({ urls: [webSocketUrl], clientId: 'runnel-demo-shop', storage: indexedDbStorage({ name: 'runnel-demo-shop' }) });
  return {
    send: (topic, value, key) => client.producer.send(topic, value, { key }).queued,
    state: async () => client.state,
    outboxSize: async () => client.producer.outboxSize.records,
    onStateChange: (listener) => void client.on('statechange', ({ state }) => listener(state)),
  };
}
