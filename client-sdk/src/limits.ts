/**
 * Every client-side limit and timeout, named, with its default and what it
 * bounds (the broker's own limits live in server/src/limits.ts). The user
 * sets `ClientLimits`, `requestTimeoutMs`, `pingIntervalMs` and `reconnect`;
 * `validateClientSettings()` runs in createClient and rejects values and
 * combinations that cannot work, naming the fix. The constants below it are
 * fixed retry delays and fallbacks.
 */
import { RunnelError } from './codec/error-codes.ts';
import type { ReconnectOptions } from './reconnect-policy.ts';
import { VERBOSE } from '#verbose';

export interface ClientLimits {
  /** Records wait this long for more to join their batch. 0 = send at once; larger = bigger batches, more latency. */
  lingerMs: number;
  /**
   * A batch is frozen at this size (bytes). Must stay <= the broker's maxBatchBytes (announced in helloOk, not
   * applied here): a larger batch is refused MESSAGE_TOO_LARGE and its records fail.
   */
  maxBatchBytes: number;
  /** A batch is frozen at this many records. */
  maxBatchRecords: number;
  /** Unacknowledged records the outbox holds; `send` beyond it rejects with OUTBOX_FULL (memory/IndexedDB quota). */
  maxOutboxRecords: number;
  /** Unacknowledged bytes the outbox holds; `send` beyond it rejects with OUTBOX_FULL. */
  maxOutboxBytes: number;
  /**
   * Produce requests in flight per partition (Kafka's max.in.flight for idempotence is 5). In effect at most
   * PRODUCER_BATCHES_RETAINED minus the partition's acknowledged batches whose delete from storage is pending.
   */
  maxInflightPerPartition: number;
  /**
   * Wait before resending a partition's batches after a retryable error (a leader election, NOT_ENOUGH_REPLICAS,
   * a timeout); doubled per consecutive error of the partition up to retryBackoffMaxMs, ±20 % jitter (KIP-580).
   */
  retryBackoffMs: number;
  /** Ceiling of that backoff. Too low hammers a cluster that is electing; too high adds latency after it recovered. */
  retryBackoffMaxMs: number;
  /**
   * A batch the brokers keep answering with retryable errors is retried for this long after its first such
   * answer (Kafka's delivery.timeout.ms); then its records fail with the last error (outcome unknown: it may
   * be in the log). Time disconnected does not count: the outbox holds records until a broker is reachable.
   */
  deliveryTimeoutMs: number;
  /**
   * A record whose topic the broker does not know (auto-creation off, or the topic created a moment later
   * through another broker) waits this long for it to appear (Kafka's max.block.ms, also 60 s): a metadata
   * answer still without it after this long since the send fails it UNKNOWN_TOPIC_OR_PARTITION (offline, it
   * waits for an answer). (A produce refused UNKNOWN_TOPIC_OR_PARTITION is retried up to deliveryTimeoutMs.)
   * Too low fails sends racing a topic's creation; too high
   * holds records for a topic that will never exist (in the outbox, against its bounds).
   */
  unknownTopicWaitMs: number;
  /**
   * Base credit window per partition subscription (bytes the broker may send ahead of the handler), topped up
   * at half; never below two of the broker's largest batches. The window starts here and adapts between it and
   * maxCreditWindowBytes (partition-stream.ts). Too low: a catch-up waits on a credit round trip per window.
   */
  creditWindowBytes: number;
  /**
   * Ceiling of one partition's adaptive credit window: it doubles while credit round trips hold a catch-up back
   * and halves under a slow handler. Each byte may sit in the page's memory; set it to creditWindowBytes for a
   * fixed window. Must stay <= the broker's maxCreditBytes (64 MiB by default), or the grant is refused.
   */
  maxCreditWindowBytes: number;
  /**
   * Growth above the base window of all of a client's partition subscriptions together (bytes): with many
   * partitions catching up at once, memory stays within about partitions × creditWindowBytes + this.
   */
  maxCreditTotalBytes: number;
  /** A beacon flush sends at most this many bytes (browsers cap keepalive/beacon bodies at 64 KiB). */
  maxBeaconBytes: number;
  /** How often the client looks for outboxes left by clients that are gone (closed tabs without a SharedWorker) to drain them. */
  orphanCheckMs: number;
}

export const defaultClientLimits: ClientLimits = {
  lingerMs: 5,
  maxBatchBytes: 512 * 1024,
  maxBatchRecords: 10_000,
  maxOutboxRecords: 100_000,
  maxOutboxBytes: 64 * 1024 * 1024,
  maxInflightPerPartition: 5,
  retryBackoffMs: 100,
  retryBackoffMaxMs: 1_000,
  deliveryTimeoutMs: 120_000,
  unknownTopicWaitMs: 60_000,
  creditWindowBytes: 1024 * 1024,
  maxCreditWindowBytes: 8 * 1024 * 1024,
  maxCreditTotalBytes: 32 * 1024 * 1024,
  maxBeaconBytes: 64 * 1024,
  orphanCheckMs: 10_000,
};

/** The connection's timeouts: `requestTimeoutMs` and `pingIntervalMs` are ClientOptions of the same names. */
export interface ConnectionTimeouts {
  /**
   * A request without an answer after this long rejects with REQUEST_TIMED_OUT (retryable: produces are resent,
   * subscribes retried). Too low fails slow produces (fsync, replication) only to resend them; too high leaves a
   * partition waiting this long behind a lost answer.
   */
  requestTimeoutMs: number;
  /** Dial + hello must finish within this long, else the next URL is tried. Too low never connects over slow links. */
  connectTimeoutMs: number;
  /**
   * Ping after this much silence; the link is dropped after twice this without any frame. Too low flaps on slow
   * links and keeps mobile radios awake; too high notices a dead link (network gone, NAT expiry) late.
   */
  pingIntervalMs: number;
}

export const defaultConnectionTimeouts: ConnectionTimeouts = { requestTimeoutMs: 30_000, connectTimeoutMs: 10_000, pingIntervalMs: 15_000 };

/** Reconnect backoff (full jitter): the first retry within 100 ms, so a quick broker restart costs little; the 10 s ceiling spreads thousands of tabs out. */
export const defaultReconnect: ReconnectOptions = { initialDelayMs: 100, maxDelayMs: 10_000, multiplier: 2 };

/** Largest delay timers honour: browsers and Node fire a longer setTimeout at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Token refresh over the open connection: the provider is asked for a fresh token and `authenticate` is sent
 * this long before the token expires (helloOk/authenticateOk `tokenExpiresAtMs`), or 10 % of the remaining
 * lifetime if that is larger — time for a provider that fetches from an auth server, and a round trip. A token
 * with less than twice this left is refreshed halfway through what is left (never in the past). The client's
 * clock is compared with the broker's expiry: a clock ahead refreshes early (not at all when ahead by more than
 * the remaining lifetime), one behind too late; the broker then closes TOKEN_EXPIRED (4909) and the client
 * reconnects with the provider's next token.
 */
export const TOKEN_REFRESH_MARGIN_MS = 5_000;

/**
 * Batches per partition that may be in the broker's log while still in the outbox (sent and unanswered, or
 * acknowledged with the delete from storage not yet committed): the broker remembers the last 5 batches of a
 * producer per partition (Kafka's NUM_BATCHES_TO_RETAIN, the server's PRODUCER_BATCHES_RETAINED), so a resend
 * after a reload or crash is always one it recognises and answers with the original offsets. The i-th stored
 * batch of a partition is (re)sent only while i plus the pending deletes is below this (Outbox.sendable); it
 * also caps maxInflightPerPartition.
 */
export const PRODUCER_BATCHES_RETAINED = 5;

/**
 * A partition with nothing in flight freezes its batch once it holds this many bytes, not at the end of the tick:
 * what a burst sends beyond it waits for that batch's ack, so two batches alternate, the producer preparing one
 * while the broker writes the other (issue 13: +8–17 % acked records/s with 1,024 sends in flight; one batch per
 * tick left the producer idle a third of the time, waiting for the broker).
 */
export const IDLE_BATCH_BYTES = 32 * 1024;

/** A partition's credit window grows by this factor when credit round trips are the limit, and shrinks by it under a slow handler. */
export const CREDIT_GROWTH_FACTOR = 2;

/**
 * A credit window shrinks only after the readers went this many windows' worth of bytes without running dry
 * (and a whole window waits unhandled): one full window alone is also what a handler-bound catch-up looks like,
 * and shrinking it then would bring the credit round trips back.
 */
export const CREDIT_SHRINK_AFTER_WINDOWS = 8;

/** A subscribe that got no answer (REQUEST_TIMED_OUT) is sent again after this long. */
export const SUBSCRIBE_RETRY_MS = 1000;

/**
 * A consumer of a topic that does not exist yet asks again this often (metadata never creates topics
 * for consumers, so it waits for a producer or an admin to create it, as Kafka consumers do).
 */
export const UNKNOWN_TOPIC_RETRY_MS = 1000;

/**
 * A subscribe the broker refused for now (a retryable code: SLOW_CONSUMER, LIMIT_EXCEEDED, NOT_LEADER_OR_FOLLOWER,
 * LEADER_NOT_AVAILABLE, CLUSTER_UNAVAILABLE, …) is sent again
 * after this long: the cause (a leader election, a freed slot) is usually gone by then, and a loaded broker is
 * not asked again at once.
 */
export const SUBSCRIBE_REFUSED_RETRY_MS = 500;

/**
 * After a failover, a stored offset a broker refuses as above its high watermark, though a high watermark at or
 * past it was shown before, is asked for again (every SUBSCRIBE_REFUSED_RETRY_MS) for this long before it is
 * reported not recovered: a new leader or a follower learns the high watermark within a fetch or two, and a
 * cluster restarted after a whole-cluster crash needs its brokers up and its followers caught up. Too low reports
 * a loss that is not one (and resets the consumer); too high delays reporting a real one (a single broker that
 * lost data: flushIntervalMs > 0, a lost disk).
 */
export const LAGGING_BROKER_WAIT_MS = 20_000;

/** Produce requests in flight per connection until helloOk announces the broker's maxInflightProducePerConnection (its default). */
export const DEFAULT_MAX_INFLIGHT_PRODUCE = 256;

/** Group join that failed retryably (e.g. REBALANCE_IN_PROGRESS) is tried again after this long. */
export const GROUP_JOIN_RETRY_MS = 1000;

/**
 * A group member's offsetFetch refused retryably (the coordinator moving after a broker loss, a timeout) is
 * sent again after this long, doubled per attempt up to GROUP_JOIN_RETRY_MS, while the member still owns the
 * partitions. Too low hammers a coordinator that is being elected; too high delays consumption after it is.
 */
export const OFFSET_FETCH_RETRY_MS = 100;

/** Default group session timeout (the broker clamps it to its [minGroupSessionTimeoutMs, maxGroupSessionTimeoutMs]). */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;

/** Default heartbeats per session timeout (Kafka: heartbeat.interval.ms = session.timeout.ms / 3), so two may be lost. */
export const HEARTBEATS_PER_SESSION = 3;

/** Shortest heartbeat interval: below it a member spends its connection on heartbeats. */
export const MIN_HEARTBEAT_INTERVAL_MS = 10;

/** What createClient runs on: limits, connection timeouts and reconnect backoff, all checked. */
export interface ClientSettings { limits: ClientLimits; timeouts: ConnectionTimeouts; reconnect: ReconnectOptions }

/** `defaults` overridden by the values `input` defines (an undefined value keeps the default). */
function withDefaults<T extends object>(defaults: T, input: Partial<T> = {}): T {
  const out = { ...defaults };
  for (const name in input) if (input[name] !== undefined) out[name] = input[name]!;
  return out;
}

/**
 * Smallest value of each setting that can work (unlisted: 0): a number, or the setting it may not be below.
 * Every `…Ms` is also at most MAX_TIMER_MS.
 */
const MIN_SETTING: Partial<Record<string, number | string>> = {
  maxBatchRecords: 1, maxOutboxRecords: 1, maxInflightPerPartition: 1, creditWindowBytes: 1024,
  maxCreditWindowBytes: 'creditWindowBytes',
  // NB: an outbox smaller than one batch never holds a full batch.
  maxOutboxBytes: 'maxBatchBytes',
  requestTimeoutMs: 1, pingIntervalMs: 1, retryBackoffMaxMs: 'retryBackoffMs', deliveryTimeoutMs: 1,
  // NB: a zero first delay or a multiplier below 1 never backs off: every tab redials at once after a restart.
  initialDelayMs: 1, multiplier: 1, maxDelayMs: 'initialDelayMs',
};

/**
 * Merges user settings over the defaults and rejects values and combinations that cannot work
 * (INVALID_REQUEST; the message names every problem and the bound that fixes it).
 */
export function validateClientSettings(input: { limits?: Partial<ClientLimits>; timeouts?: Partial<ConnectionTimeouts>; reconnect?: Partial<ReconnectOptions> } = {}): ClientSettings {
  const limits = withDefaults(defaultClientLimits, input.limits);
  const timeouts = withDefaults(defaultConnectionTimeouts, input.timeouts);
  const reconnect = withDefaults(defaultReconnect, input.reconnect);
  const settings: Record<string, number> = { ...limits, ...timeouts, ...reconnect };
  const problems: string[] = [];
  for (const name in settings) {
    const value = settings[name], bound = MIN_SETTING[name] ?? 0, min = settings[bound] ?? bound;
    const isTimer = name.endsWith('Ms');
    if (!(value >= min && value <= (isTimer ? MAX_TIMER_MS : Number.MAX_VALUE))) {
      problems.push(VERBOSE ? `${name} must be >= ${bound === min ? min : `${bound} (${min})`}${isTimer ? ` and <= ${MAX_TIMER_MS}` : ''}, got ${value}` : '');
    }
  }
  if (problems.length > 0) throw new RunnelError('INVALID_REQUEST', VERBOSE ? `createClient: ${problems.join('; ')}` : '');
  return { limits, timeouts, reconnect };
}

/** validateClientSettings for the limits alone. */
export function validateClientLimits(input: Partial<ClientLimits> = {}): ClientLimits {
  return validateClientSettings({ limits: input }).limits;
}

/**
 * A group member's session timeout and heartbeat interval (createGroupConsumer options), defaults filled in.
 * Rejects (INVALID_REQUEST) a heartbeat that does not come within the session, or too often.
 */
export function validateGroupTimeouts(sessionTimeoutMs = DEFAULT_SESSION_TIMEOUT_MS, heartbeatIntervalMs?: number): { sessionTimeoutMs: number; heartbeatIntervalMs: number } {
  const problems: string[] = [];
  if (!(Number.isInteger(sessionTimeoutMs) && sessionTimeoutMs > 0 && sessionTimeoutMs <= MAX_TIMER_MS)) problems.push(VERBOSE ? `sessionTimeoutMs must be an integer in 1..${MAX_TIMER_MS}, got ${sessionTimeoutMs}` : '');
  if (heartbeatIntervalMs !== undefined) {
    if (!(heartbeatIntervalMs >= MIN_HEARTBEAT_INTERVAL_MS && heartbeatIntervalMs <= MAX_TIMER_MS)) problems.push(VERBOSE ? `heartbeatIntervalMs must be in ${MIN_HEARTBEAT_INTERVAL_MS}..${MAX_TIMER_MS}, got ${heartbeatIntervalMs}` : '');
    if (!(heartbeatIntervalMs < sessionTimeoutMs)) problems.push(VERBOSE ? `heartbeatIntervalMs (${heartbeatIntervalMs}) must be < sessionTimeoutMs (${sessionTimeoutMs}), or the broker expires the member between heartbeats; leave it out for sessionTimeoutMs / ${HEARTBEATS_PER_SESSION}` : '');
  }
  if (problems.length > 0) throw new RunnelError('INVALID_REQUEST', VERBOSE ? `createGroupConsumer: ${problems.join('; ')}` : '');
  return { sessionTimeoutMs, heartbeatIntervalMs: heartbeatIntervalMs ?? Math.max(MIN_HEARTBEAT_INTERVAL_MS, Math.floor(sessionTimeoutMs / HEARTBEATS_PER_SESSION)) };
}
