/**
 * @runnel/client/consumer — a consumer-only app: `createConsumer` (subscribe,
 * subscribeBatches, consume, metadata) without the producer and its outbox.
 */
export { createConsumer, RunnelConsumer } from './consumer-client.ts';
export * from './shared-exports.ts';
export type { Subscription, SubscribeOptions, StartFrom, Handler, BatchHandler, HandlerContext, HandlerTransaction, ConsumerBatch, NotRecoveredEvent } from './consumer.ts';
export type { ConsumerRecord } from './consumer-record.ts';
