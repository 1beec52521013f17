/**
 * @runnel/client — browser/edge/Node entry (no Node APIs). IndexedDB storage
 * is the `@runnel/client/indexeddb` subpath, the file storage `@runnel/client/node`,
 * the page-exit beacon `@runnel/client/beacon`, the MessagePort transport
 * `@runnel/client/message-port` (opt-in extras stay out of the core bundle).
 */
export { createClient, RunnelClient } from './client.ts';
export type { ClientOptions, ClientEvents, Metadata, BeaconPlugin } from './client.ts';
export { defineTopic } from './topic.ts';
export type { Topic, TopicRef, Schema, InvalidValuePolicy } from './topic.ts';
export type { Producer, SendOptions, SendResult, RecordMetadata, Durability } from './producer.ts';
export type { Subscription, SubscribeOptions, StartFrom, Handler, BatchHandler, HandlerContext, NotRecoveredEvent } from './consumer.ts';
export type { ConsumerRecord } from './consumer-record.ts';
export type { ConnectionState, TokenProvider } from './connection.ts';
export { memoryStorage } from './memory-storage.ts';
export type { Storage, OffsetStore, OutboxStore, StoredOffset } from './storage.ts';
export { webSocketTransport } from './transport.ts';
export type { Transport, TransportFactory, TransportListener, WebSocketConstructor } from './transport.ts';
export type { ClientLimits } from './limits.ts';
export type { ReconnectOptions } from './reconnect-policy.ts';
export { RunnelError } from './codec/error-codes.ts';
export type { ErrorName } from './codec/error-codes.ts';
