/**
 * @runnel/client — browser/edge/Node entry (no Node APIs): `createClient`, the
 * producer and the consumer together. Apps that use one half import
 * `@runnel/client/consumer` or `@runnel/client/producer` instead (smaller
 * bundles). IndexedDB storage is the `@runnel/client/indexeddb` subpath, the file
 * storage `@runnel/client/node`, the page-exit beacon `@runnel/client/beacon`,
 * consumer groups `@runnel/client/group`, the MessagePort transport
 * `@runnel/client/message-port`, memory storage `@runnel/client/memory` (a client
 * given no storage imports it lazily; opt-in extras stay out of the core bundle).
 */
export { createClient, RunnelClient } from './client.ts';
export { createConsumer, RunnelConsumer } from './consumer-client.ts';
export { createProducer, RunnelProducer } from './producer-client.ts';
export * from './shared-exports.ts';
export type { Producer, SendOptions, SendResult, RecordMetadata, Durability } from './producer.ts';
export type { Subscription, SubscribeOptions, StartFrom, Handler, BatchHandler, HandlerContext, HandlerTransaction, ConsumerBatch, NotRecoveredEvent } from './consumer.ts';
export type { ConsumerRecord } from './consumer-record.ts';

