/**
 * Error codes, the core half of the one error table (errors.ts adds the
 * HTTP status and the long message of each code). Split so the browser
 * bundle carries names, numbers and retryability only: a RunnelError made
 * without a message says its name until errors.ts is loaded (the broker
 * and the `@runnel/client/codec` entry always load it).
 *
 * Numbers follow Apache Kafka's error codes where Kafka has the same concept
 * (so a Kafka-protocol listener can reuse them later); Runnel-only codes start
 * at 1000. Invariant: every code on the wire or in an HTTP body is listed
 * here and documented in docs/protocol.md.
 */
import { VERBOSE } from '#verbose';

export const ErrorCode = {
  UNKNOWN_SERVER_ERROR: -1,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  INVALID_TOPIC_EXCEPTION: 17,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  ILLEGAL_GENERATION: 22,
  UNKNOWN_MEMBER_ID: 25,
  REBALANCE_IN_PROGRESS: 27,
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REQUEST: 42,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  KAFKA_STORAGE_ERROR: 56,
  SASL_AUTHENTICATION_FAILED: 58,
  UNKNOWN_PRODUCER_ID: 59,
  FENCED_LEADER_EPOCH: 74,
  UNKNOWN_LEADER_EPOCH: 75,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  INVALID_RECORD: 87,
  THROTTLING_QUOTA_EXCEEDED: 89,
  INCONSISTENT_TOPIC_ID: 103,
  INVALID_FRAME: 1000,
  LIMIT_EXCEEDED: 1001,
  SLOW_CONSUMER: 1002,
  SHUTTING_DOWN: 1003,
  SCHEMA_VALIDATION_FAILED: 1004,
  OUTBOX_FULL: 1005,
  NOT_CONNECTED: 1006,
  ABORTED: 1007,
  UNKNOWN_GROUP: 1008,
  TOKEN_EXPIRED: 1009,
  ORIGIN_NOT_ALLOWED: 1010,
  BROKER_ID_IN_USE: 1011,
  CLUSTER_UNAVAILABLE: 1012,
  OFFSET_COMMIT_BACKWARDS: 1013,
} as const;

export type ErrorName = keyof typeof ErrorCode;

/** Codes for which resending the same request can succeed. */
const retryableNames: ReadonlySet<string> = new Set<ErrorName>(['NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'REQUEST_TIMED_OUT', 'NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'FENCED_LEADER_EPOCH', 'UNKNOWN_LEADER_EPOCH', 'CLUSTER_UNAVAILABLE', 'REBALANCE_IN_PROGRESS', 'KAFKA_STORAGE_ERROR', 'LIMIT_EXCEEDED', 'THROTTLING_QUOTA_EXCEEDED', 'SLOW_CONSUMER', 'SHUTTING_DOWN', 'OUTBOX_FULL', 'NOT_CONNECTED']);

/** Whether resending the same request can succeed. */
export function isRetryable(name: ErrorName): boolean {
  return retryableNames.has(name);
}

const byCode = new Map<number, ErrorName>(
  (Object.keys(ErrorCode) as ErrorName[]).map((name) => [ErrorCode[name], name]),
);

/** Look up an error name by its numeric wire code; unknown codes map to UNKNOWN_SERVER_ERROR. */
export function errorNameOf(code: number): ErrorName {
  return byCode.get(code) ?? 'UNKNOWN_SERVER_ERROR';
}

let describe: (name: ErrorName) => string = (name) => name;

/** Installs the long default messages (errors.ts does, on load). */
export function setErrorMessages(messages: (name: ErrorName) => string): void {
  describe = messages;
}

/** An expected, operating error with a documented code. Programmer errors use `assert` instead. */
export class RunnelError extends Error {
  override readonly name = 'RunnelError';
  readonly errorName: ErrorName;
  readonly code: number;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(name: ErrorName, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message || describe(name), options?.cause === undefined ? undefined : { cause: options.cause });
    this.errorName = name;
    this.code = ErrorCode[name];
    this.retryable = retryableNames.has(name);
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
  throw new AssertionError(VERBOSE ? `unexpected ${what}: ${JSON.stringify(value)}` : '');
}

/** Result of a decoder: never throws on bad bytes. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; code: ErrorName; message: string };
