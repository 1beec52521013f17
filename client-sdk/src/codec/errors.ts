/**
 * The one table of Runnel error codes, shared by broker, HTTP API and SDK.
 *
 * Numbers follow Apache Kafka's error codes where Kafka has the same concept
 * (so a Kafka-protocol listener can reuse them later); Runnel-only codes start
 * at 1000. `retryable` tells clients whether resending the same request can
 * succeed. Invariant: every code on the wire or in an HTTP body is listed
 * here and documented in docs/protocol.md.
 */

export const ErrorTable = {
  UNKNOWN_SERVER_ERROR: { code: -1, retryable: false, status: 500, message: 'Unexpected broker error' },
  OFFSET_OUT_OF_RANGE: { code: 1, retryable: false, status: 416, message: 'Requested offset is outside the log (below logStartOffset or above logEndOffset)' },
  CORRUPT_MESSAGE: { code: 2, retryable: false, status: 400, message: 'Record batch failed its CRC or structure check' },
  UNKNOWN_TOPIC_OR_PARTITION: { code: 3, retryable: false, status: 404, message: 'Topic or partition does not exist' },
  NOT_LEADER_OR_FOLLOWER: { code: 6, retryable: true, status: 503, message: 'This broker is not the leader for the partition' },
  REQUEST_TIMED_OUT: { code: 7, retryable: true, status: 504, message: 'Request timed out' },
  MESSAGE_TOO_LARGE: { code: 10, retryable: false, status: 413, message: 'Frame, batch or record exceeds the configured limit' },
  INVALID_TOPIC_EXCEPTION: { code: 17, retryable: false, status: 400, message: 'Topic name is invalid (1-249 chars of [a-zA-Z0-9._-])' },
  NOT_ENOUGH_REPLICAS: { code: 19, retryable: true, status: 503, message: 'Fewer in-sync replicas than minInsyncReplicas' },
  ILLEGAL_GENERATION: { code: 22, retryable: false, status: 409, message: 'Group generation is stale; rejoin the group' },
  UNKNOWN_MEMBER_ID: { code: 25, retryable: false, status: 409, message: 'Unknown group member; rejoin the group' },
  REBALANCE_IN_PROGRESS: { code: 27, retryable: true, status: 409, message: 'Group is rebalancing' },
  TOPIC_AUTHORIZATION_FAILED: { code: 29, retryable: false, status: 403, message: 'Not authorized for this topic' },
  UNSUPPORTED_VERSION: { code: 35, retryable: false, status: 400, message: 'Protocol version not supported' },
  TOPIC_ALREADY_EXISTS: { code: 36, retryable: false, status: 409, message: 'Topic already exists' },
  INVALID_PARTITIONS: { code: 37, retryable: false, status: 400, message: 'Invalid partition count' },
  INVALID_REPLICATION_FACTOR: { code: 38, retryable: false, status: 400, message: 'Invalid replication factor' },
  INVALID_REQUEST: { code: 42, retryable: false, status: 400, message: 'Malformed request' },
  OUT_OF_ORDER_SEQUENCE_NUMBER: { code: 45, retryable: false, status: 409, message: 'Producer sequence has a gap; earlier batches were lost' },
  DUPLICATE_SEQUENCE_NUMBER: { code: 46, retryable: false, status: 409, message: 'Batch sequence was already written' },
  INVALID_PRODUCER_EPOCH: { code: 47, retryable: false, status: 409, message: 'Producer epoch is older than the current one (fenced)' },
  KAFKA_STORAGE_ERROR: { code: 56, retryable: true, status: 503, message: 'Storage error on the broker' },
  UNKNOWN_PRODUCER_ID: { code: 59, retryable: false, status: 409, message: 'Producer id is unknown to this partition' },
  UNSUPPORTED_COMPRESSION_TYPE: { code: 76, retryable: false, status: 400, message: 'Record batch is compressed; Runnel stores uncompressed batches only' },
  INVALID_RECORD: { code: 87, retryable: false, status: 400, message: 'A record failed validation' },
  INCONSISTENT_TOPIC_ID: { code: 103, retryable: false, status: 409, message: 'Topic id differs: the topic was deleted and recreated' },
  INVALID_FRAME: { code: 1000, retryable: false, status: 400, message: 'WebSocket frame could not be decoded' },
  LIMIT_EXCEEDED: { code: 1001, retryable: true, status: 429, message: 'A connection, subscription or queue limit was reached' },
  SLOW_CONSUMER: { code: 1002, retryable: true, status: 429, message: 'Client did not read fast enough; backpressure limit passed' },
  SHUTTING_DOWN: { code: 1003, retryable: true, status: 503, message: 'Broker is shutting down' },
  SCHEMA_VALIDATION_FAILED: { code: 1004, retryable: false, status: 400, message: 'Value does not match the topic schema' },
  OUTBOX_FULL: { code: 1005, retryable: true, status: 507, message: 'Client outbox is full' },
  NOT_CONNECTED: { code: 1006, retryable: true, status: 503, message: 'Client is not connected' },
  ABORTED: { code: 1007, retryable: false, status: 499, message: 'Operation aborted by the caller' },
  UNKNOWN_GROUP: { code: 1008, retryable: false, status: 404, message: 'Consumer group does not exist' },
} as const;

export type ErrorName = keyof typeof ErrorTable;

const byCode = new Map<number, ErrorName>(
  (Object.keys(ErrorTable) as ErrorName[]).map((name) => [ErrorTable[name].code, name]),
);

/** Look up an error name by its numeric wire code; unknown codes map to UNKNOWN_SERVER_ERROR. */
export function errorNameOf(code: number): ErrorName {
  return byCode.get(code) ?? 'UNKNOWN_SERVER_ERROR';
}

/** An expected, operating error with a documented code. Programmer errors use `assert` instead. */
export class RunnelError extends Error {
  override readonly name = 'RunnelError';
  readonly errorName: ErrorName;
  readonly code: number;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(name: ErrorName, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    const entry = ErrorTable[name];
    super(message ?? entry.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.errorName = name;
    this.code = entry.code;
    this.retryable = entry.retryable;
    this.details = options?.details;
  }

  /** JSON body used by the HTTP API: `{ error: { code, message } }`. */
  toJSON(): { error: { code: ErrorName; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.errorName, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

/** Guards invariants (programmer errors). Never use it for bad input: return a coded value instead. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Exhaustiveness check for `switch` over tagged unions. */
export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}

/** Result of a decoder: never throws on bad bytes. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; code: ErrorName; message: string };
