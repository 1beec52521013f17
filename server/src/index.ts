/**
 * @runnel/server public surface: start a broker, or embed the Broker
 * service and its building blocks.
 */
export { startServer } from './server.ts';
export type { RunningServer, StartOptions } from './server.ts';
export { Broker } from './broker/broker.ts';
export type { BrokerConfig, PartitionWatcher } from './broker/broker.ts';
export type { BrokerApi, HttpBrokerApi, PartitionInfo, ProduceResult, FetchResult, TopicInfo, TopicSpec } from './request/broker-api.ts';
export { RequestLayer } from './request/request-layer.ts';
export type { RequestContext, Principal } from './request/request-context.ts';
export type { Partition } from './partition/partition.ts';
export type { MetadataStore } from './metadata/metadata-store.ts';
export { GroupCoordinator } from './groups/coordinator.ts';
export type { GroupDescription, GroupMemberDescription } from './groups/coordinator.ts';
export { closeCodeFor } from './session/close-codes.ts';
export { defaultLimits, validateLimits } from './limits.ts';
export type { Limits } from './limits.ts';
export { uwsIsNative, assertNativeUws } from './broker/uws.ts';
