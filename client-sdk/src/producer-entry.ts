/**
 * @runnel/client/producer — a producer-only app: `createProducer` (send with
 * the durable outbox, flush through `.producer`) without the consumer.
 */
export { createProducer, RunnelProducer } from './producer-client.ts';
export * from './shared-exports.ts';
export type { Producer, SendOptions, SendResult, RecordMetadata, Durability } from './producer.ts';
