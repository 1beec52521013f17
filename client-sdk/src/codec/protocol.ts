/**
 * Runnel WebSocket protocol v3: the frame types as data (types only).
 *
 * Every WebSocket message is one binary frame: `[u8 kind][body]`, encoded and
 * decoded by `frame-codec.ts`, the one codec shared by broker and SDK.
 * Offsets and producer ids are int64 on the wire and JS numbers here
 * (asserted ≤ 2^53 − 1). Record data always travels as stored Kafka
 * RecordBatch v2 bytes (`batches`), never re-encoded per record.
 * Documented in docs/protocol.md.
 */
import type { ErrorName } from './error-codes.ts';

/**
 * v2 (issue 11): producer ids carry an issued secret, metadata asks for topic auto-creation
 * explicitly, tokens are refreshed over the open connection (authenticate).
 * v3 (issue 12, cluster): metadata reports each partition's `leaderEpoch`. The codec has one layout
 * per frame (no per-version encoding), so older clients get UNSUPPORTED_VERSION: Runnel's SDK and
 * broker ship together.
 */
export const PROTOCOL_VERSION = 3 as const;
export const MIN_PROTOCOL_VERSION = 3 as const;

/** Frame kind byte. Stable: never renumber, only add. */
export const FrameKind = {
  hello: 1,
  helloOk: 2,
  metadataRequest: 3,
  metadata: 4,
  initProducer: 5,
  initProducerOk: 6,
  produce: 7,
  produceAck: 8,
  subscribe: 9,
  subscribed: 10,
  unsubscribe: 11,
  records: 12,
  credit: 13,
  offsetCommit: 14,
  offsetCommitAck: 15,
  offsetFetch: 16,
  offsetFetchResult: 17,
  groupJoin: 18,
  groupAssignment: 19,
  groupHeartbeat: 20,
  groupLeave: 21,
  error: 22,
  ping: 23,
  pong: 24,
  authenticate: 25,
  authenticateOk: 26,
} as const;
export type FrameType = keyof typeof FrameKind;

/** Where a subscription starts. `offset` is the next offset the client wants. */
export type StartPosition =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: number }
  | { kind: 'timestamp'; timestampMs: number };

/** Client → broker, first frame on a connection. */
export interface HelloFrame { type: 'hello'; minVersion: number; maxVersion: number; clientId: string; token: string }
/** Broker → client: negotiated version and the limits the client must respect. */
export interface HelloOkFrame {
  type: 'helloOk'; version: number; brokerId: number; sessionId: string;
  maxFrameBytes: number; maxBatchBytes: number; maxInflightProduce: number;
  /** When the connection's token expires (ms since the epoch); −1 = never (no auth). Refresh with `authenticate` before it. */
  tokenExpiresAtMs: number;
}

/** Client → broker: a fresh token for the open connection (same subject), before the current one expires. */
export interface AuthenticateFrame { type: 'authenticate'; requestId: number; token: string }
/** Broker → client: the refreshed token's expiry; an error closes the connection. */
export interface AuthenticateOkFrame { type: 'authenticateOk'; requestId: number; errorCode: number; tokenExpiresAtMs: number }

export interface MetadataRequestFrame {
  type: 'metadataRequest'; requestId: number; topics: string[] /* empty = all */;
  /** 1: create missing topics when the broker allows it (a producer about to send); 0: never (consumers, admin). Kafka's allow_auto_topic_creation. */
  allowAutoTopicCreation: number;
}
/**
 * One partition as the answering broker sees it (Kafka's MetadataResponsePartition). Any broker serves
 * any partition, so clients need none of this to produce or consume; it is for tools and dashboards.
 */
export interface PartitionMetadata {
  partition: number;
  /** Broker id of the leader; −1 while the partition has none (offline or electing). */
  leader: number;
  /** Bumped by every leader change (0 on a single node). */
  leaderEpoch: number;
  /** Assigned replicas, preferred leader first. */
  replicas: number[];
  /** In-sync replicas (the leader included while it is online). */
  isr: number[];
  logStartOffset: number;
  /** Consumers see offsets below it. NB: on a follower it may lag the leader's for a moment. */
  highWatermark: number;
}
export interface TopicMetadata { name: string; topicId: string; errorCode: number; partitions: PartitionMetadata[] }
export interface MetadataFrame {
  type: 'metadata'; requestId: number;
  brokers: { id: number; url: string }[];
  topics: TopicMetadata[];
}

/**
 * Ask for a producer id. `producerId = -1` allocates a new one; a known id
 * (persisted by the client) is returned with its current epoch so resends
 * stay de-duplicated across reloads.
 */
/** `producerId −1` allocates; a stored id is re-claimed with the `producerSecret` issued with it ('' when none). */
export interface InitProducerFrame { type: 'initProducer'; requestId: number; producerId: number; producerEpoch: number; producerSecret: string }
/** `producerSecret` proves ownership of `producerId`: store it with the id (and send it with beacons). */
export interface InitProducerOkFrame { type: 'initProducerOk'; requestId: number; producerId: number; producerEpoch: number; errorCode: number; producerSecret: string }

/**
 * One RecordBatch v2 for one partition. The batch carries producerId,
 * producerEpoch and baseSequence; its baseOffset is assigned by the leader.
 * `acks`: 0 none, 1 leader durable, -1 all in-sync replicas.
 */
export interface ProduceFrame { type: 'produce'; requestId: number; topic: string; partition: number; acks: -1 | 0 | 1; batch: Uint8Array }
/** Sent only after the batch is durable (fdatasync) per `acks`. `baseOffset` = −1 on error. */
export interface ProduceAckFrame {
  type: 'produceAck'; requestId: number; topic: string; partition: number;
  errorCode: number; baseOffset: number; logAppendTimeMs: number; logStartOffset: number;
}

/**
 * Subscribe a connection to one topic-partition (one position per
 * topic-partition per connection; subscribing again moves it).
 * `topicId` = '' means "any"; otherwise a mismatch answers INCONSISTENT_TOPIC_ID.
 * `creditBytes` is the initial credit (see CreditFrame).
 */
export interface SubscribeFrame {
  type: 'subscribe'; requestId: number; topic: string; partition: number; topicId: string;
  from: StartPosition; creditBytes: number;
}
/**
 * Answer to subscribe. On success `startOffset` is the first offset that
 * will be delivered. On OFFSET_OUT_OF_RANGE / INCONSISTENT_TOPIC_ID the
 * subscription is not active and the log bounds tell the client what was lost.
 */
export interface SubscribedFrame {
  type: 'subscribed'; requestId: number; topic: string; partition: number;
  errorCode: number; topicId: string; startOffset: number; logStartOffset: number; highWatermark: number;
}
export interface UnsubscribeFrame { type: 'unsubscribe'; requestId: number; topic: string; partition: number }

/**
 * Broker → client: one or more stored RecordBatch v2 byte ranges,
 * concatenated, for one topic-partition. The same encoded frame is sent to
 * every live subscriber of the partition. The first batch may start before
 * the subscribed offset (it is the batch containing it): clients drop
 * offsets they already delivered. Invariant: all offsets < highWatermark.
 */
export interface RecordsFrame { type: 'records'; topic: string; partition: number; highWatermark: number; batches: Uint8Array }

/** Client grants the broker `bytes` more of RecordsFrame payload for this topic-partition. */
export interface CreditFrame { type: 'credit'; topic: string; partition: number; bytes: number }

export interface CommittedOffset { topic: string; partition: number; offset: number; metadata: string }
/** Commit offsets for a group. generationId = -1 and memberId = '' for a standalone (non-member) commit. */
export interface OffsetCommitFrame { type: 'offsetCommit'; requestId: number; group: string; generationId: number; memberId: string; offsets: CommittedOffset[] }
export interface OffsetCommitAckFrame { type: 'offsetCommitAck'; requestId: number; errorCode: number }
export interface OffsetFetchFrame { type: 'offsetFetch'; requestId: number; group: string; topics: string[] }
export interface OffsetFetchResultFrame { type: 'offsetFetchResult'; requestId: number; errorCode: number; offsets: CommittedOffset[] }

export interface GroupJoinFrame { type: 'groupJoin'; requestId: number; group: string; memberId: string; topics: string[]; sessionTimeoutMs: number }
/** Sent on join and on every rebalance. The member may only consume/commit the listed partitions for this generation. */
export interface GroupAssignmentFrame {
  type: 'groupAssignment'; requestId: number; group: string; memberId: string; generationId: number; errorCode: number;
  assignments: { topic: string; partitions: number[] }[];
}
export interface GroupHeartbeatFrame { type: 'groupHeartbeat'; group: string; memberId: string; generationId: number }
export interface GroupLeaveFrame { type: 'groupLeave'; group: string; memberId: string }

/** Error not tied to a specific answer frame (requestId 0 = connection-level). */
export interface ErrorFrame { type: 'error'; requestId: number; errorCode: number; message: string; retryAfterMs: number }
export interface PingFrame { type: 'ping'; nonce: number }
export interface PongFrame { type: 'pong'; nonce: number }

export type ClientFrame =
  | HelloFrame | MetadataRequestFrame | InitProducerFrame | ProduceFrame | SubscribeFrame | UnsubscribeFrame
  | CreditFrame | OffsetCommitFrame | OffsetFetchFrame | GroupJoinFrame | GroupHeartbeatFrame | GroupLeaveFrame
  | PingFrame | PongFrame | AuthenticateFrame;

export type BrokerFrame =
  | HelloOkFrame | MetadataFrame | InitProducerOkFrame | ProduceAckFrame | SubscribedFrame | RecordsFrame
  | OffsetCommitAckFrame | OffsetFetchResultFrame | GroupAssignmentFrame | ErrorFrame | PingFrame | PongFrame | AuthenticateOkFrame;

export type Frame = ClientFrame | BrokerFrame;

/** Convenience for code that builds error frames from the shared error table. */
export type ErrorCodeName = ErrorName;
