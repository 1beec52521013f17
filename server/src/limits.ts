/**
 * Every limit of the broker and log engine, named, with its default and what
 * it bounds. `validateLimits()` runs at start-up and rejects combinations that
 * cannot work. Invariant: no queue, buffer or frame in the broker grows past
 * one of these numbers.
 */
import { z } from 'zod';

export const LimitsSchema = z.object({
  // ---- log engine ----
  /** Largest RecordBatch accepted (bytes). Too small rejects real batches; too large lets one client pin memory. */
  maxBatchBytes: z.number().int().min(1024).default(1024 * 1024),
  /** A segment rolls when it would pass this size. Small = many files; large = coarse retention. */
  maxSegmentBytes: z.number().int().min(64 * 1024).default(128 * 1024 * 1024),
  /** A segment rolls when its first batch is older than this. */
  segmentMs: z.number().int().min(1000).default(7 * 24 * 3600 * 1000),
  /** One offset/time index entry per this many log bytes. Smaller = bigger index, faster lookup. */
  indexIntervalBytes: z.number().int().min(512).default(4096),
  /**
   * Newest batches kept in memory per partition, so reads at the tail (follower fetches, live catch-up) skip the file.
   * 0 = off, the default: holding them cost single-node ingest ~40 % more broker CPU per MB (docs/storage.md "Reads").
   */
  logTailCacheBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(0),
  /**
   * Segment writes and fdatasyncs run on the event loop (one synchronous call, no thread-pool hand-offs) while their
   * moving mean stays at most this many ms, else on the thread pool with an inline probe per second (log/inline-io.ts).
   * 0 = always the thread pool. Measured (docs/storage.md "Inline writes"): 16 % less broker CPU in a 3-broker cluster at 10,000 records/s.
   */
  inlineIoMaxMs: z.number().min(0).max(10).default(0.25),
  /** Open segment file handles per broker (LRU-closed beyond). */
  maxOpenFiles: z.number().int().min(16).default(1024),
  /** Appends waiting for one group commit; more are refused with LIMIT_EXCEEDED. */
  maxPendingAppends: z.number().int().min(1).default(10_000),
  /** Bytes read per partition read call. */
  maxReadBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
  /** Idempotent producers remembered per partition (oldest evicted). */
  maxProducersPerPartition: z.number().int().min(1).default(100_000),

  // ---- protocol / connections ----
  /** Largest WebSocket message (bytes). Must hold maxBatchBytes plus a frame header. */
  maxFrameBytes: z.number().int().min(2048).default(1024 * 1024 + 64 * 1024),
  /** Concurrent WebSocket connections. */
  maxConnections: z.number().int().min(1).default(100_000),
  /** Topic-partition subscriptions per connection. */
  maxSubscriptionsPerConnection: z.number().int().min(1).default(1024),
  /**
   * Produced batches whose base or max timestamp is further than this before the broker's clock are
   * refused INVALID_TIMESTAMP (Kafka's message.timestamp.before.max.ms). Generous by default: a browser
   * outbox may hold records for days offline and send them with their original timestamps.
   */
  maxTimestampBeforeMs: z.number().int().min(1000).default(30 * 24 * 3600 * 1000),
  /** Same, after the broker's clock (Kafka's message.timestamp.after.max.ms, 1 h by default there too). */
  maxTimestampAfterMs: z.number().int().min(1000).default(3600 * 1000),
  /**
   * Longest a produce is held to bring its client back under its rate quota (Kafka's throttle); a
   * longer wait is refused THROTTLING_QUOTA_EXCEEDED with retryAfterMs (WebSocket credit is withheld
   * until the fetch quota allows it, without this cap). Too high parks requests (and their memory) for long.
   */
  maxThrottleDelayMs: z.number().int().min(1).max(60_000).default(1000),
  /** How often idle quota buckets are dropped (each sweep inspects at most the quota config's sweepBatch). */
  quotaSweepIntervalMs: z.number().int().min(100).default(5000),
  /** Topics one metadata request may auto-create (a producer names the few it sends to); the rest are answered UNKNOWN_TOPIC_OR_PARTITION. */
  maxTopicsAutoCreatedPerRequest: z.number().int().min(0).default(16),
  /** Producer ids one connection may claim with initProducer (a tab has one, plus the outbox slots it adopts). */
  maxProducersPerConnection: z.number().int().min(1).default(64),
  /** Produce requests awaiting their ack per connection. */
  maxInflightProducePerConnection: z.number().int().min(1).default(256),
  /**
   * Other requests awaiting their answer per connection (metadata, producer ids, subscribe, group
   * offsets): over it LIMIT_EXCEEDED. Bounds what one client can make the broker hold; too low
   * refuses a client that resubscribes many partitions at once after a reconnect.
   */
  maxPendingRequestsPerConnection: z.number().int().min(1).default(512),
  /** How often paused sockets are checked for drain, slow-consumer timeout and the paused budget. Too high delays resume after a drain uWS did not report. */
  backpressureSweepMs: z.number().int().min(10).max(10_000).default(250),
  /**
   * Batch bytes accepted for produce and not yet durable, over all connections and HTTP: the
   * broker-wide bound on produce memory (per-connection limits times maxConnections is no bound).
   * Over it a produce is refused LIMIT_EXCEEDED (retryable; the SDK backs off and resends). Too low
   * throttles ingest while the disk syncs; too high lets a disk stall fill memory.
   */
  maxPendingProduceBytes: z.number().int().min(1024).default(256 * 1024 * 1024),
  /** Bytes uWS may buffer for a slow socket before it is paused from the live channel. */
  maxBackpressureBytes: z.number().int().min(64 * 1024).default(4 * 1024 * 1024),
  /** Credit a client may grant at once (bytes). */
  maxCreditBytes: z.number().int().min(1024).default(64 * 1024 * 1024),
  /** Idle seconds before a silent connection is closed (uWS idleTimeout). */
  idleTimeoutSec: z.number().int().min(8).max(960).default(120),

  /**
   * Bytes that paused sockets (over maxBackpressureBytes) may hold together, broker-wide. Over it the
   * most-buffered paused sockets are closed with SLOW_CONSUMER at the next sweep (backpressureSweepMs) instead of after
   * slowConsumerTimeoutMs. Too low cuts consumers that would have caught up after a short stall; too high
   * lets many stalled clients fill memory.
   */
  maxPausedBufferedBytes: z.number().int().min(64 * 1024).default(256 * 1024 * 1024),
  /** A paused (over maxBackpressureBytes) socket that has not drained within this time is closed with SLOW_CONSUMER. */
  slowConsumerTimeoutMs: z.number().int().min(100).default(10_000),
  /** Catch-up log reads in flight over the whole broker (each up to catchUpReadBytes): bounds read memory. */
  maxConcurrentCatchUpReads: z.number().int().min(1).default(16),
  /** Bytes read from the log per catch-up step of one subscription (also capped by its credit). */
  catchUpReadBytes: z.number().int().min(1024).default(1024 * 1024),
  /**
   * Payload bytes per records frame a catch-up step sends (whole batches; a larger batch goes alone): one read
   * goes out as several frames, so a browser's WebSocket receives the next frame while the page handles this one
   * (Chromium reads a socket's data on the page's main thread; with 1 MiB frames the page idled between them).
   */
  catchUpFrameBytes: z.number().int().min(1024).default(128 * 1024),
  /** Undecodable frames tolerated per connection before it is closed with INVALID_FRAME. */
  maxInvalidFramesPerConnection: z.number().int().min(1).default(100),
  /** How often retention (bytes/time) is enforced on every partition. */
  retentionCheckIntervalMs: z.number().int().min(100).default(60_000),

  // ---- consumer groups ----
  /** Session timeouts asked by group members are clamped to [min, max]. */
  minGroupSessionTimeoutMs: z.number().int().min(10).default(1000),
  maxGroupSessionTimeoutMs: z.number().int().min(10).default(300_000),
  /** How often member session timeouts are checked. */
  groupTickMs: z.number().int().min(10).default(250),
  /**
   * A group's membership change is pushed to the other members at once unless the group had a push
   * within this time; then it waits in a window that later changes extend by this much, and the
   * window is one push (Kafka's group.initial.rebalance.delay.ms, for every rebalance): a burst of N
   * joins costs O(N) assignment frames, not N²/2. Members not yet pushed are fenced (ILLEGAL_GENERATION).
   * Too low brings back a push per join in a burst; too high keeps old owners fenced and consuming longer.
   */
  groupRebalanceDelayMs: z.number().int().min(0).max(60_000).default(100),
  /** A window that changes keep extending is still pushed this long after the change that opened it. Too high, as above. */
  groupRebalanceMaxDelayMs: z.number().int().min(0).max(300_000).default(1000),
  /**
   * runnel_consumer_lag series in one /metrics scrape (the largest lags kept): bounds the label
   * cardinality that throwaway groups add. Too low hides small lags; too high lets a client bloat scrapes.
   */
  maxLagSeries: z.number().int().min(0).default(1000),

  // ---- cluster (docs/cluster.md; used only with --cluster) ----
  /** A follower that has not caught up to the leader's log end for this long leaves the ISR (Kafka's replica.lag.time.max.ms). Too low flaps the ISR under load; too high stalls acks=all behind a dead follower. */
  replicaLagTimeMs: z.number().int().min(100).default(10_000),
  /** Batch bytes one follower fetch answer carries (Kafka's replica.fetch.max.bytes). */
  replicaFetchMaxBytes: z.number().int().min(64 * 1024).default(8 * 1024 * 1024),
  /** How long a leader holds a follower fetch with nothing new (Kafka's replica.fetch.wait.max.ms); answers come at once on data. */
  replicaFetchMaxWaitMs: z.number().int().min(1).default(500),
  /** Longest an acks=all produce waits for its records to be replicated before REQUEST_TIMED_OUT. */
  replicationTimeoutMs: z.number().int().min(100).default(30_000),
  /** TTL of a broker's etcd registration: a paused or partitioned broker is declared gone this long after its last keep-alive (whole seconds, at least etcd's minimum). */
  brokerLeaseTtlMs: z.number().int().min(1000).default(2000),
  /** TTL of the controller's campaign lease: a paused controller blocks the next one this long. */
  controllerLeaseTtlMs: z.number().int().min(1000).default(2000),
  /** The controller's heartbeats to every broker over the internal links, this often. */
  controllerHeartbeatMs: z.number().int().min(10).default(200),
  /** No heartbeat answered for this long: the controller declares the broker down and moves its leaderships (a SIGKILLed broker is seen at once: its connection is refused). Too low flaps leadership on a loaded machine. */
  brokerSessionTimeoutMs: z.number().int().min(100).default(1200),
  /** A preferred leader live and in sync this long gets its leadership back. */
  preferredLeaderDelayMs: z.number().int().min(0).default(10_000),
  /** A produce for a partition in an election waits this long for its new leader before LEADER_NOT_AVAILABLE. */
  leaderWaitMs: z.number().int().min(0).default(5000),
  /** A broker starting waits this long for etcd before it gives up. */
  clusterStartWaitMs: z.number().int().min(0).default(60_000),

  // ---- names and records ----
  maxTopicNameLength: z.number().int().min(1).max(249).default(249),
  maxPartitionsPerTopic: z.number().int().min(1).default(1024),
  maxTopics: z.number().int().min(1).default(10_000),
  maxHeadersPerRecord: z.number().int().min(0).default(64),
  maxRecordsPerBatch: z.number().int().min(1).default(100_000),
  maxGroupNameLength: z.number().int().min(1).default(255),
  maxGroupMembers: z.number().int().min(1).default(10_000),
  /** Groups the broker holds (live or with committed offsets); joining or committing to one more answers LIMIT_EXCEEDED. */
  maxGroups: z.number().int().min(1).default(10_000),
  /** Group memberships one connection may hold at once. */
  maxGroupMembershipsPerConnection: z.number().int().min(1).default(64),

  // ---- HTTP ----
  /** Largest HTTP request body (bytes). */
  maxHttpBodyBytes: z.number().int().min(1024).default(1024 * 1024),
  /** Records per HTTP produce request. */
  maxHttpRecords: z.number().int().min(1).default(10_000),
  /**
   * Deepest array/object nesting of one record value over HTTP: a deeper value in a JSON, NDJSON or
   * beacon produce body is 400 INVALID_RECORD (checked on the bytes before parsing); a deeper stored
   * value (WebSocket, binary producers) is read back as text (`valueEncoding: "text"`). Bounds the
   * recursion of JSON.stringify, which overflows the stack a few thousand levels down (hence max 1000).
   * Too low refuses real documents.
   */
  maxJsonDepth: z.number().int().min(1).max(1000).default(64),
  /**
   * Longest JSON string in an HTTP produce body, in bytes as written (escapes included): record keys,
   * header names and values, strings and member names inside values; longer is 400 INVALID_RECORD. A
   * stored value holding a longer string is read back as text. Too low refuses large text values; too
   * high lets one string take a whole batch.
   */
  maxJsonStringBytes: z.number().int().min(64).default(256 * 1024),
  /** Longest long-poll wait. */
  maxLongPollMs: z.number().int().min(0).default(30_000),
  /** Open Server-Sent Events streams. */
  maxSseStreams: z.number().int().min(1).default(10_000),
  /** Idle SSE streams get a comment line this often, so proxies and browsers keep them open. */
  sseKeepAliveMs: z.number().int().min(100).default(15_000),
  /** Records per SSE event burst and default long-poll `maxRecords` (bounds one response's JSON work). */
  httpFetchRecords: z.number().int().min(1).default(500),
});

export type Limits = z.infer<typeof LimitsSchema>;

/** Frame header overhead budget (kind, topic name, partition, ids). */
export const FRAME_HEADER_BYTES = 1024;

/**
 * Frames up to this many times maxFrameBytes are still read and answered MESSAGE_TOO_LARGE (a clear
 * error); beyond it uWS cuts the connection unread, so a client cannot make the broker buffer more.
 */
export const OVERSIZE_FRAME_READ_FACTOR = 2;

/**
 * A socket whose uWS buffer reaches this many times maxBackpressureBytes is closed SLOW_CONSUMER at
 * once (a send past the pause point: publishes already in flight, pings); paused sockets are closed
 * by the sweep after slowConsumerTimeoutMs.
 */
export const SLOW_CONSUMER_CLOSE_FACTOR = 2;

/**
 * File-descriptor budget (fd-budget.ts): at start-up maxConnections + maxOpenFiles + the reserve
 * must fit the process's soft RLIMIT_NOFILE, else they are lowered to fit (and the line says so).
 * The reserve is what neither limit counts: stdio and libuv's own descriptors (epoll, eventfd,
 * signal pipes: ~26 at idle), the listen socket, metadata and group-offset files, atomic writes and
 * directory fsyncs in flight, etcd clients, HTTP connections (health checks, scrapes, long polls,
 * SSE), handshakes being refused, and reads pinned past maxOpenFiles. At least FD_RESERVE_MIN, and
 * 1/FD_RESERVE_DIVISOR of the limit (HTTP grows with the deployment). Too small: EMFILE under HTTP
 * load (an accept that fails with EMFILE spins uWS's loop); too large: fewer WebSocket connections.
 */
export const FD_RESERVE_MIN = 64;
export const FD_RESERVE_DIVISOR = 16;
/** A derived maxOpenFiles takes at most 1/FD_OPEN_FILES_DIVISOR of the descriptors left after the reserve; connections get the rest. */
export const FD_OPEN_FILES_DIVISOR = 4;
/** The soft RLIMIT_NOFILE assumed where /proc/self/limits cannot be read (not Linux): the usual Linux default (Node raises macOS's 256 to the hard limit at start). */
export const FALLBACK_FD_LIMIT = 1024;
/** At most one "out of file descriptors" line per this interval; the refusals in between are counted in the next one (the metric counts each). */
export const FD_EXHAUSTED_LOG_INTERVAL_MS = 10_000;
/**
 * A segment roll, or a write whose handle must be reopened, that gets EMFILE/ENFILE after the idle
 * handles were closed retries after ROLL_OPEN_RETRY_MS, doubling up to ROLL_OPEN_RETRY_MAX_MS, for at
 * most ROLL_OPEN_RETRY_LIMIT_MS, then fails the log (its appends have offsets: they cannot be refused).
 * Too short fails a partition in a passing descriptor shortage; too long delays close() by as much.
 */
export const ROLL_OPEN_RETRY_MS = 10;
export const ROLL_OPEN_RETRY_MAX_MS = 1000;
export const ROLL_OPEN_RETRY_LIMIT_MS = 30_000;

export const oversizeFrameReadBytes = (l: Limits): number => OVERSIZE_FRAME_READ_FACTOR * l.maxFrameBytes;
export const slowConsumerCloseBytes = (l: Limits): number => SLOW_CONSUMER_CLOSE_FACTOR * l.maxBackpressureBytes;

/**
 * uWS's own per-socket cap, above the broker's close threshold plus a whole oversize frame, so uWS
 * never silently drops a published frame for a subscriber the broker still counts as live.
 */
export const uwsMaxBackpressureBytes = (l: Limits): number => slowConsumerCloseBytes(l) + oversizeFrameReadBytes(l);

export const defaultLimits: Limits = LimitsSchema.parse({});

/** Reject limit combinations that cannot work; returns the parsed limits. */
export function validateLimits(input: Partial<Limits> = {}): Limits {
  const limits = LimitsSchema.parse(input);
  const problems: string[] = [];
  if (limits.maxFrameBytes < limits.maxBatchBytes + FRAME_HEADER_BYTES) {
    problems.push(`maxFrameBytes (${limits.maxFrameBytes}) must be >= maxBatchBytes + ${FRAME_HEADER_BYTES} (${limits.maxBatchBytes + FRAME_HEADER_BYTES})`);
  }
  if (limits.maxSegmentBytes < limits.maxBatchBytes) {
    problems.push(`maxSegmentBytes (${limits.maxSegmentBytes}) must be >= maxBatchBytes (${limits.maxBatchBytes})`);
  }
  if (limits.maxReadBytes < limits.maxBatchBytes) {
    problems.push(`maxReadBytes (${limits.maxReadBytes}) must be >= maxBatchBytes (${limits.maxBatchBytes}) so any stored batch can be read`);
  }
  if (limits.maxPendingProduceBytes < limits.maxBatchBytes) {
    problems.push(`maxPendingProduceBytes (${limits.maxPendingProduceBytes}) must be >= maxBatchBytes (${limits.maxBatchBytes}) so any batch can be accepted`);
  }
  if (limits.maxPausedBufferedBytes < limits.maxBackpressureBytes) {
    problems.push(`maxPausedBufferedBytes (${limits.maxPausedBufferedBytes}) must be >= maxBackpressureBytes (${limits.maxBackpressureBytes}), or one paused socket is over budget alone`);
  }
  if (limits.maxBackpressureBytes < limits.maxFrameBytes) {
    problems.push(`maxBackpressureBytes (${limits.maxBackpressureBytes}) must be >= maxFrameBytes (${limits.maxFrameBytes})`);
  }
  if (limits.groupRebalanceMaxDelayMs < limits.groupRebalanceDelayMs) {
    problems.push(`groupRebalanceMaxDelayMs (${limits.groupRebalanceMaxDelayMs}) must be >= groupRebalanceDelayMs (${limits.groupRebalanceDelayMs})`);
  }
  if (problems.length > 0) throw new Error(`invalid limits:\n  - ${problems.join('\n  - ')}`);
  return limits;
}
