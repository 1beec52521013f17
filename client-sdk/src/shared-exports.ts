/** What every client entry (`@runnel/client`, `/consumer`, `/producer`) exports besides its own client. */
export type { ClientOptions, ClientEvents, Metadata, BeaconPlugin } from './client-core.ts';
export { defineTopic } from './topic.ts';
export type { Topic, TopicRef, Schema, InvalidValuePolicy } from './topic.ts';
export type { ConnectionState, TokenProvider } from './connection.ts';
export type { Storage, ConsumerStorage, ProducerStorage, OffsetStore, OutboxStore, StoredOffset } from './storage.ts';
export { webSocketTransport } from './transport.ts';
export type { Transport, TransportFactory, TransportListener, WebSocketConstructor } from './transport.ts';
export type { ClientLimits } from './limits.ts';
export type { ReconnectOptions } from './reconnect-policy.ts';
export { RunnelError } from './codec/error-codes.ts';
export type { ErrorName } from './codec/error-codes.ts';
