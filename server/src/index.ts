/**
 * @runnel/server public surface: start a broker, or embed the Broker
 * service and its building blocks.
 */
export { startServer } from './server.ts';
export type { RunningServer, StartOptions } from './server.ts';
export { Broker } from './broker/broker.ts';
export type { BrokerConfig, PartitionInfo, ProduceResult, FetchResult, TopicInfo, TopicSpec, PartitionWatcher } from './broker/broker.ts';
export { GroupCoordinator } from './groups/coordinator.ts';
export type { GroupDescription, GroupMemberDescription } from './groups/coordinator.ts';
export { closeCodeFor } from './broker/close-codes.ts';
export { defaultLimits, validateLimits } from './limits.ts';
export type { Limits } from './limits.ts';
export { uwsIsNative, assertNativeUws } from './broker/uws.ts';
