/**
 * The replication data path (docs/cluster.md, docs/replication-protocol.md):
 * replicas of a partition (leader and followers), the internal protocol,
 * its server and the links to peer brokers.
 */
export { ReplicaPartition } from './replica-partition.ts';
export type { ReplicaPartitionOptions, ReplicaRole } from './replica-partition.ts';
export { ReplicationServer, isConnectionReset } from './replication-server.ts';
export type { FetchHandler, FetchHandlerRegistry, ReplicationServerOptions, RequestHandler } from './replication-server.ts';
export { PeerLinks } from './peer-links.ts';
export type { PeerDownReason, PeerLinksOptions } from './peer-links.ts';
export { defaultReplicationLimits, resolveReplicationLimits, validateReplicationLimits } from './limits.ts';
export type { ReplicationLimits } from './limits.ts';
export { EXTENSION_TYPE_MAX, EXTENSION_TYPE_MIN, FrameType, REPLICATION_PROTOCOL_VERSION } from './protocol.ts';
export type { DivergingEpoch, FetchRequest, FetchResponse } from './protocol.ts';
