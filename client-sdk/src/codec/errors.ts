/**
 * The one table of Runnel error codes, shared by broker, HTTP API and SDK:
 * name, code and retryability from error-codes.ts (the part the browser
 * bundle needs) plus the HTTP status and message of each code, kept here so
 * the browser bundle does not carry them. Importing this module installs the
 * messages as RunnelError's defaults. Invariant: every code on the wire or in
 * an HTTP body is listed here and documented in docs/protocol.md.
 */
import { ErrorCode, isRetryable, setErrorMessages, type ErrorName } from './error-codes.ts';

export { ErrorCode, RunnelError, AssertionError, assert, assertNever, errorNameOf, isRetryable } from './error-codes.ts';
export type { ErrorName, Decoded } from './error-codes.ts';

const details = {
  UNKNOWN_SERVER_ERROR: { status: 500, message: 'Unexpected broker error' },
  OFFSET_OUT_OF_RANGE: { status: 416, message: 'Requested offset is outside the log (below logStartOffset or above logEndOffset)' },
  CORRUPT_MESSAGE: { status: 400, message: 'Record batch failed its CRC or structure check' },
  UNKNOWN_TOPIC_OR_PARTITION: { status: 404, message: 'Topic or partition does not exist' },
  LEADER_NOT_AVAILABLE: { status: 503, message: 'The partition has no leader right now (an election is in progress or no in-sync replica is live)' },
  NOT_LEADER_OR_FOLLOWER: { status: 503, message: 'This broker is not the leader for the partition' },
  REQUEST_TIMED_OUT: { status: 504, message: 'Request timed out' },
  MESSAGE_TOO_LARGE: { status: 413, message: 'Frame, batch or record exceeds the configured limit' },
  INVALID_TOPIC_EXCEPTION: { status: 400, message: 'Topic name is invalid (1-249 chars of [a-zA-Z0-9._-])' },
  NOT_ENOUGH_REPLICAS: { status: 503, message: 'Fewer in-sync replicas than minInsyncReplicas' },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: { status: 503, message: 'The batch was written but the in-sync replicas fell below minInsyncReplicas before it was replicated; retry (an idempotent retry is de-duplicated)' },
  ILLEGAL_GENERATION: { status: 409, message: 'Group generation is stale; rejoin the group' },
  UNKNOWN_MEMBER_ID: { status: 409, message: 'Unknown group member; rejoin the group' },
  REBALANCE_IN_PROGRESS: { status: 409, message: 'Group is rebalancing' },
  TOPIC_AUTHORIZATION_FAILED: { status: 403, message: 'Not authorized for this topic' },
  GROUP_AUTHORIZATION_FAILED: { status: 403, message: 'Not authorized for this consumer group' },
  CLUSTER_AUTHORIZATION_FAILED: { status: 403, message: 'Not authorized for this cluster operation' },
  INVALID_TIMESTAMP: { status: 400, message: 'Record timestamp is outside maxTimestampBeforeMs/maxTimestampAfterMs of the broker clock' },
  UNSUPPORTED_VERSION: { status: 400, message: 'Protocol version not supported' },
  TOPIC_ALREADY_EXISTS: { status: 409, message: 'Topic already exists' },
  INVALID_PARTITIONS: { status: 400, message: 'Invalid partition count' },
  INVALID_REPLICATION_FACTOR: { status: 400, message: 'Invalid replication factor' },
  INVALID_REQUEST: { status: 400, message: 'Malformed request' },
  OUT_OF_ORDER_SEQUENCE_NUMBER: { status: 409, message: 'Producer sequence has a gap; earlier batches were lost' },
  DUPLICATE_SEQUENCE_NUMBER: { status: 409, message: 'Batch sequence was already written' },
  INVALID_PRODUCER_EPOCH: { status: 409, message: 'Producer epoch is older than the current one (fenced)' },
  KAFKA_STORAGE_ERROR: { status: 503, message: 'Storage error on the broker' },
  SASL_AUTHENTICATION_FAILED: { status: 401, message: 'Authentication failed: missing, malformed, forged or expired token' },
  UNKNOWN_PRODUCER_ID: { status: 409, message: 'Producer id is unknown to this partition' },
  FENCED_LEADER_EPOCH: { status: 503, message: 'The request names an older leader epoch than the replica holds' },
  UNKNOWN_LEADER_EPOCH: { status: 503, message: 'The request names a newer leader epoch than the replica has heard of yet' },
  UNSUPPORTED_COMPRESSION_TYPE: { status: 400, message: 'Record batch is compressed; Runnel stores uncompressed batches only' },
  INVALID_RECORD: { status: 400, message: 'A record failed validation' },
  THROTTLING_QUOTA_EXCEEDED: { status: 429, message: 'Over quota; retry after retryAfterMs' },
  INCONSISTENT_TOPIC_ID: { status: 409, message: 'Topic id differs: the topic was deleted and recreated' },
  INVALID_FRAME: { status: 400, message: 'WebSocket frame could not be decoded' },
  LIMIT_EXCEEDED: { status: 429, message: 'A connection, subscription or queue limit was reached' },
  SLOW_CONSUMER: { status: 429, message: 'Client did not read fast enough; backpressure limit passed' },
  SHUTTING_DOWN: { status: 503, message: 'Broker is shutting down' },
  SCHEMA_VALIDATION_FAILED: { status: 400, message: 'Value does not match the topic schema' },
  OUTBOX_FULL: { status: 507, message: 'Client outbox is full' },
  NOT_CONNECTED: { status: 503, message: 'Client is not connected' },
  ABORTED: { status: 499, message: 'Operation aborted by the caller' },
  UNKNOWN_GROUP: { status: 404, message: 'Consumer group does not exist' },
  TOKEN_EXPIRED: { status: 401, message: 'The connection token expired; refresh it before expiry' },
  ORIGIN_NOT_ALLOWED: { status: 403, message: 'Origin is not in the allowed origins' },
  BROKER_ID_IN_USE: { status: 409, message: 'Another live broker is registered with this node id' },
  CLUSTER_UNAVAILABLE: { status: 503, message: 'The cluster metadata store (etcd) cannot be reached; retry' },
  OFFSET_COMMIT_BACKWARDS: { status: 409, message: 'A standalone commit would lower a committed offset; send rewind: true to move it back on purpose' },
} as const satisfies Record<ErrorName, { status: number; message: string }>;

type Entry<N extends ErrorName> = { readonly code: (typeof ErrorCode)[N]; readonly retryable: boolean; readonly status: (typeof details)[N]['status']; readonly message: (typeof details)[N]['message'] };

/** name → { code, retryable, status, message }. */
export const ErrorTable = Object.fromEntries((Object.keys(ErrorCode) as ErrorName[]).map((name) => [
  name, { code: ErrorCode[name], retryable: isRetryable(name), ...details[name] },
])) as { readonly [N in ErrorName]: Entry<N> };

setErrorMessages((name) => details[name].message);
